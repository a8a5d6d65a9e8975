package errmon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// ContextBuilder builds the request context stored with an error. It runs
// on the request path, after a failure, while the request is still valid.
// mask reports whether a key (a header, cookie, parameter or JSON key) must
// be hidden and the value to show instead. errmon cuts the result to the
// context budget (see [MaxRequestDataBytes]) and masks it again before
// storing it, so a builder cannot leak a configured secret by mistake nor
// make masking cost more than the budget; a builder that panics is
// recovered and its error recorded. A value of a type other than string,
// bool, number, map[string]any, []any, []string and the string maps of
// net/http and net/url (a struct, say) is stored as its JSON encoding,
// decoded, and so cut and masked like the rest.
type ContextBuilder interface {
	BuildContext(c *gin.Context, mask func(key string) (masked bool, value string)) map[string]any
}

// DefaultContextBuilder records the request's method, URL (with a masked
// path and query string), route and parameters, host, client IP, headers
// (with credentials and every cookie value hidden), query parameters, form
// fields, uploaded file names and the body: decoded and masked at any depth
// when it is JSON or a form, as text when it is other text, and as a size
// when it is binary.
//
// It keeps within the context budget as it builds, section by section (see
// [MaxRequestDataBytes]): past its share a string is cut with a
// "… [N bytes cut]" marker, a map gets a "[cut]" entry saying what it left
// out ("[N entries, M bytes cut]", "[N bytes cut]" for a query or form),
// a list a last item "[N items cut]", a body past the budget a
// "body_cut" entry, and a level nested deeper than the limit is the string
// "[deeper levels cut]". So a request costs no more to capture than one
// that just fills the budget, whatever its size.
type DefaultContextBuilder struct {
	maskWith string // set by New; "" means DefaultMaskWith
}

// Shares of the context budget the default builder gives each section, in
// bytes of JSON before masking; the body (JSON, form, text, multipart
// values) has what the others leave, at least a seventh of the budget.
const (
	paramsShare  = 4 << 10
	queryShare   = 8 << 10 // the query map; the url has its own cap
	headersShare = 16 << 10
	cookiesShare = 2 << 10
	// smallField caps method, host, client IP and protocol.
	smallField = 1 << 10
)

// textMaskKey holds, in a request's gin.Context while errmon captures it,
// the monitor's masker, so that DefaultContextBuilder can mask free text
// (query values, path segments, keys) even when a custom builder calls it.
const textMaskKey = "github.com/errmon/errmon.textmask"

// builderMask is what the context code masks with: the key test handed to
// a ContextBuilder, the mask, and free-text masking (the identity when
// DefaultContextBuilder runs outside errmon's capture).
type builderMask struct {
	fn   func(string) (bool, string)
	with string
	text func(string) string
}

// secret reports whether key names a secret, and the value to show instead.
func (bm builderMask) secret(key string) (bool, string) {
	if secret, with := bm.fn(key); secret {
		if with == "" {
			with = bm.with
		}
		return true, with
	}
	return false, ""
}

// monitorMask is the builderMask of m's masker.
func (m *Monitor) monitorMask() builderMask {
	return builderMask{fn: m.mask.fn, with: m.mask.with, text: m.mask.text}
}

// keepText is the free-text masking of a builder run outside a capture.
func keepText(s string) string { return s }

// BuildContext implements ContextBuilder.
func (d DefaultContextBuilder) BuildContext(c *gin.Context, mask func(key string) (bool, string)) map[string]any {
	bm := builderMask{fn: mask, with: d.maskWith, text: keepText}
	if bm.with == "" {
		bm.with = DefaultMaskWith
	}
	if v, ok := c.Get(textMaskKey); ok {
		if mk, ok := v.(*masker); ok && mk != nil {
			bm.text = mk.text
		}
	}
	return buildContext(c, bm)
}

// buildContext is the default builder's work, within contextBudget.
func buildContext(c *gin.Context, bm builderMask) map[string]any {
	r := c.Request
	ct := &cutter{left: contextBudget, key: bm.text}
	ctx := make(map[string]any, 16)
	put := func(k string, v any) {
		ct.left -= len(k) + 4
		ctx[k] = v
	}
	put("method", ct.text(r.Method, smallField))
	if r.URL != nil {
		put("url", ct.text(maskedURL(c, bm), maxContextString))
		if raw := r.URL.RawQuery; raw != "" {
			ct.within(queryShare, func() {
				put("query", maskTree(pairMap(ct, raw, "&;", queryShare, false), bm.fn, bm.with, nil))
			})
		}
	}
	put("host", ct.text(r.Host, smallField))
	put("route", ct.text(c.FullPath(), MaxPathBytes))
	put("client_ip", ct.text(c.ClientIP(), smallField))
	put("proto", ct.text(r.Proto, smallField))
	if len(c.Params) > 0 {
		ct.within(paramsShare, func() {
			params := make(map[string]any, len(c.Params))
			cut := 0
			for _, p := range c.Params {
				if ct.left <= 0 {
					cut++
					continue
				}
				params[ct.keyText(p.Key)] = ct.text(p.Value, maxContextString)
			}
			if cut > 0 {
				params[cutKey] = ct.text(fmt.Sprintf("[%d entries cut]", cut), smallField)
			}
			put("params", maskTree(params, bm.fn, bm.with, nil))
		})
	}
	if len(r.Header) > 0 {
		ct.within(headersShare, func() {
			h := cutMap(ct, r.Header, 1, ct.values, valuesSize)
			put("headers", maskTree(headerTree(h, bm.with), bm.fn, bm.with, nil))
		})
	}
	if cookies := r.Header["Cookie"]; len(cookies) > 0 {
		ct.within(cookiesShare, func() {
			if names := cookieNameMap(ct, cookies, bm.with); len(names) > 0 {
				put("cookies", names)
			}
		})
	}
	addBody(ctx, c, bm, ct)
	return ctx
}

// cookieNameMap maps the cookie names of Cookie headers to with, within
// the budget; the values are never read, and once the budget is spent the
// cookies left are only counted.
func cookieNameMap(ct *cutter, headers []string, with string) map[string]any {
	names := map[string]any{}
	cut := 0
	for _, h := range headers {
		for h != "" {
			if ct.left <= 0 {
				cut += strings.Count(h, ";") + 1
				break
			}
			part, next, _ := strings.Cut(h, ";")
			if name, _, _ := strings.Cut(strings.TrimSpace(part), "="); name != "" {
				names[ct.keyText(name)] = with
				ct.left -= len(with) + 2
			}
			h = next
		}
	}
	if cut > 0 {
		names[cutKey] = ct.text(fmt.Sprintf("[%d cookies cut]", cut), smallField)
	}
	return names
}

// addBody adds the decoded request body to ctx, within what the budget
// has left.
func addBody(ctx map[string]any, c *gin.Context, bm builderMask, ct *cutter) {
	r := c.Request
	put := func(k string, v any) {
		ct.left -= len(k) + 4
		ctx[k] = v
	}
	if r.MultipartForm != nil {
		put("form", maskTree(ct.value(r.MultipartForm.Value, 1), bm.fn, bm.with, nil))
		if len(r.MultipartForm.File) > 0 {
			files := cutMap(ct, r.MultipartForm.File, 1, func(fhs []*multipart.FileHeader, depth int) any {
				return cutList(ct, fhs, depth, func(fh *multipart.FileHeader, _ int) any {
					ct.left -= 30
					return map[string]any{"filename": ct.text(fh.Filename, smallField), "size": fh.Size}
				})
			}, nil)
			put("files", maskTree(files, bm.fn, bm.with, nil))
		}
		return
	}
	body, truncated := RequestBody(c)
	if len(body) == 0 {
		if len(r.PostForm) > 0 {
			put("form", maskTree(ct.value(r.PostForm, 1), bm.fn, bm.with, nil))
		}
		return
	}
	// Past the budget, a JSON or form body is decoded from what fits, as a
	// body cut short; a text body is cut as any string is.
	full, room := body, max(ct.left-64, 0)
	if len(body) > room {
		body, truncated = body[:room], true
	}
	if truncated {
		put("body_truncated", true)
	}
	noteCut := func() {
		if len(full) > len(body) {
			put("body_cut", fmt.Sprintf("[%d bytes cut]", len(full)-len(body)))
		}
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	trimmed := bytes.TrimSpace(body)
	switch {
	case strings.Contains(mediaType, "json") || (mediaType == "" && len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')):
		if !truncated && jsonDepth(body) < maxContextDepth {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			var v any
			if dec.Decode(&v) == nil {
				put("json", maskTree(ct.value(v, 1), bm.fn, bm.with, nil))
				return
			}
		}
		// Nested too deep, cut short or malformed: keep what could be read,
		// in its structure (deeper levels replaced by a marker), so that
		// secret keys are masked at any depth.
		if v, complete := partialJSON(body, maxContextDepth-1); v != nil {
			noteCut()
			put("json", maskTree(ct.value(v, 1), bm.fn, bm.with, nil))
			if !complete {
				put("json_incomplete", true)
			}
			return
		}
	case mediaType == "application/x-www-form-urlencoded":
		if validText(body, truncated) {
			noteCut()
			put("form", maskTree(pairMap(ct, string(body), "&", len(body), truncated), bm.fn, bm.with, nil))
			return
		}
	case strings.HasPrefix(mediaType, "multipart/"):
		put("body", fmt.Sprintf("<multipart body, %d bytes not parsed by the handler>", len(full)))
		return
	}
	if !validText(body, truncated) {
		put("body", fmt.Sprintf("<%d bytes of binary data>", len(full)))
		return
	}
	// Free text (or JSON that could not be read): kept, and masked as text
	// before it is stored.
	head := full[:min(len(full), maxContextString+utf8.UTFMax)]
	put("body", ct.textOf(string(head), len(full), maxContextString))
}

// validText reports whether b is UTF-8 text without NUL bytes; a body cut
// short may end in the middle of a character.
func validText(b []byte, cut bool) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	if cut {
		for i := 0; i < utf8.UTFMax && i < len(b); i++ {
			if utf8.RuneStart(b[len(b)-1-i]) {
				if !utf8.FullRune(b[len(b)-1-i:]) {
					b = b[:len(b)-1-i]
				}
				break
			}
		}
	}
	return utf8.Valid(b)
}

// partialJSON decodes a JSON document that may be cut short, reading it
// token by token: the values read before the cut, in their structure, with
// what nests deeper than depth container levels replaced by "[deeper
// levels cut]" (read past, not decoded). A string or number cut in the
// middle is left out. It returns nil when not even the start could be
// read, and whether the document was read to its end.
func partialJSON(body []byte, depth int) (v any, complete bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := readPartial(dec, depth)
	return v, err == nil
}

// jsonDepth returns how deeply containers nest in a JSON text, counting no
// further than maxContextDepth, without decoding it.
func jsonDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b) && deepest < maxContextDepth; i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ']', '}':
			depth--
		}
	}
	return deepest
}

// readPartial reads one value; left is the number of container levels it
// may still open.
func readPartial(dec *json.Decoder, left int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if left <= 0 {
		return deeperMarker, skipValue(dec)
	}
	switch d {
	case '{':
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return obj, err
			}
			k, _ := kt.(string)
			v, err := readPartial(dec, left-1)
			if v != nil || err == nil {
				obj[k] = v
			}
			if err != nil {
				return obj, err
			}
		}
		_, err := dec.Token()
		return obj, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := readPartial(dec, left-1)
			if v != nil || err == nil {
				arr = append(arr, v)
			}
			if err != nil {
				return arr, err
			}
		}
		_, err := dec.Token()
		return arr, err
	}
	return nil, errors.New("unexpected delimiter")
}

// skipValue reads past the rest of a container whose opening delimiter was
// just read, without recursion.
func skipValue(dec *json.Decoder) error {
	for open := 1; open > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			open++
		case json.Delim('}'), json.Delim(']'):
			open--
		}
	}
	return nil
}

// requestLine returns "METHOD /masked/path?masked-query PROTO", for logs.
func requestLine(c *gin.Context, bm builderMask) string {
	r := c.Request
	target := ""
	if r.URL != nil {
		target = maskedURL(c, bm)
	}
	return cutText(r.Method, smallField) + " " + target + " " + cutText(r.Proto, smallField)
}

// maskedURL returns the request's path and query string, masked (see
// maskedPath and maskQuery) and within maxContextString.
func maskedURL(c *gin.Context, bm builderMask) string {
	u := maskedPath(c, bm)
	if raw := c.Request.URL.RawQuery; raw != "" {
		u += "?" + maskQuery(raw, maxContextString-len(u), bm)
	}
	return cutText(u, maxContextString)
}

// requestPath returns the request's path, or "" when it has no URL.
func requestPath(r *http.Request) string {
	if r == nil || r.URL == nil {
		return ""
	}
	return r.URL.Path
}

// queryPair is one name=value pair of a query string or form body,
// decoded.
type queryPair struct {
	name, value string
	hasValue    bool   // name=value rather than a bare name
	sep         string // the separators (and empty pairs) before the pair, raw
}

// wholePairs returns the start of raw that holds whole pairs only, at most
// limit bytes, and how many bytes it leaves out. When raw is longer, or cut
// is set (raw is the start of a longer text), the last pair, which may be
// cut in the middle, is left out: half a value may no longer look like the
// secret it is.
func wholePairs(raw, seps string, limit int, cut bool) (kept string, rest int) {
	if limit = max(limit, 0); len(raw) > limit {
		raw, rest, cut = raw[:limit], len(raw)-limit, true
	}
	if cut {
		last := strings.LastIndexAny(raw, seps)
		rest += len(raw) - (last + 1)
		raw = raw[:last+1]
	}
	return raw, rest
}

// eachPair calls f with each non-empty pair of raw (split at any byte of
// seps), decoded as url.ParseQuery does but leniently (an invalid escape is
// kept as it is), then with a pair holding only the trailing separators,
// if any. It stops when f returns false and returns how many bytes of raw
// it did not reach.
func eachPair(raw, seps string, f func(queryPair) bool) (rest int) {
	sepFrom := 0 // where the separators before the next pair start
	for i := 0; ; {
		end := len(raw)
		if j := strings.IndexAny(raw[i:], seps); j >= 0 {
			end = i + j
		}
		if end > i {
			k, v, hasValue := strings.Cut(raw[i:end], "=")
			if !f(queryPair{name: unescapeLenient(k), value: unescapeLenient(v), hasValue: hasValue, sep: raw[sepFrom:i]}) {
				return len(raw) - i
			}
			sepFrom = end
		}
		if end == len(raw) {
			break
		}
		i = end + 1
	}
	if sepFrom < len(raw) {
		f(queryPair{sep: raw[sepFrom:]})
	}
	return 0
}

// pairMap decodes the pairs of raw into a map as url.ParseQuery makes it
// (a name with one value maps to it, with several to the list), in their
// order while the budget lasts, with names cut and masked as text and
// values cut; a "[cut]" entry counts the bytes left out. It reads at most
// limit bytes of raw; cut tells that raw is the start of a longer text.
func pairMap(ct *cutter, raw, seps string, limit int, cut bool) map[string]any {
	raw, rest := wholePairs(raw, seps, limit, cut)
	out := map[string]any{}
	ct.left -= 2
	rest += eachPair(raw, seps, func(p queryPair) bool {
		if p.name == "" && !p.hasValue {
			return true // separators only
		}
		if ct.left <= 0 {
			return false
		}
		k := ct.keyText(p.name)
		v := ct.text(p.value, maxContextString)
		switch old := out[k].(type) {
		case nil:
			out[k] = v
		case []any:
			out[k] = append(old, v)
		default:
			out[k] = []any{old, v}
		}
		ct.left--
		return true
	})
	if rest > 0 {
		out[cutKey] = ct.text(fmt.Sprintf("[%d bytes cut]", rest), smallField)
	}
	return out
}

// maskQuery rebuilds at most limit bytes of a raw query string, masked: a
// name is masked as text, a value is the mask when its name is secret and
// masked as text otherwise, so that a secret written encoded
// (cb=password%3DX, next=https%3A%2F%2Fu%3Apw%40host) is found. The
// separators (& and ;) are kept; names and values are encoded again,
// leaving readable what needs no escape. What is left out is counted by
// a "… [N bytes cut]" marker.
func maskQuery(raw string, limit int, bm builderMask) string {
	raw, rest := wholePairs(raw, "&;", limit, false)
	var b strings.Builder
	eachPair(raw, "&;", func(p queryPair) bool {
		b.WriteString(p.sep)
		if p.name == "" && !p.hasValue {
			return true
		}
		writeEscaped(&b, bm.text(p.name), true)
		if !p.hasValue {
			return true
		}
		b.WriteByte('=')
		v := p.value
		if secret, with := bm.secret(p.name); secret {
			v = with
		} else {
			v = bm.text(v)
		}
		writeEscaped(&b, v, false)
		return true
	})
	if rest > 0 {
		fmt.Fprintf(&b, "… [%d bytes cut]", rest)
	}
	return b.String()
}

// writeEscaped writes s percent-encoded for a query string: the bytes that
// would change its meaning (% & ; # + and, in a name, =), control bytes
// and invalid UTF-8; a space becomes +.
func writeEscaped(b *strings.Builder, s string, name bool) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || n > 1 {
				b.WriteString(s[i : i+n])
				i += n
				continue
			}
		}
		switch {
		case c == ' ':
			b.WriteByte('+')
		case c < 0x20 || c >= 0x7f || c == '%' || c == '&' || c == ';' || c == '#' || c == '+' || (name && c == '='):
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
		i++
	}
}

// unescapeLenient decodes + and %XX escapes; an invalid escape is kept.
func unescapeLenient(s string) string {
	if strings.IndexAny(s, "%+") < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex returns the value of the hexadecimal digit c.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// maskedPath returns the request path as errmon stores and logs it: the
// value of a path parameter whose name is secret replaced by the mask, cut
// to MaxPathBytes, and every segment masked as text (password=X,
// secret:X, a URL's password).
func maskedPath(c *gin.Context, bm builderMask) string {
	path := requestPath(c.Request)
	total := len(path)
	// Only the start is kept: what a secret value starting there needs,
	// and room for the cut to back off.
	limit := MaxPathBytes + cutSlack
	for _, p := range c.Params {
		limit = max(limit, MaxPathBytes+len(p.Value))
	}
	if len(path) > limit {
		path = path[:limit]
	}
	p := maskPathParams(path, c.FullPath(), c.Params, bm)
	return maskSegments(cutTextOf(p, MaxPathBytes, len(p)+total-len(path)), bm.text)
}

// maskPathParams replaces, in path, the values of the parameters whose
// names are secret. It follows route segment by segment; when path does
// not follow route (a raw path, say), every occurrence of a secret value
// is replaced.
func maskPathParams(path, route string, params gin.Params, bm builderMask) string {
	secrets := 0
	for _, p := range params {
		if secret, _ := bm.secret(p.Key); secret {
			secrets++
		}
	}
	if secrets == 0 {
		return path
	}
	if out, ok := alignParams(path, route, bm); ok {
		return out
	}
	for _, p := range params {
		if secret, with := bm.secret(p.Key); secret && p.Value != "" {
			path = strings.ReplaceAll(path, p.Value, with)
		}
	}
	return path
}

// alignParams walks route (":name" and "*name" wildcards, as gin writes
// them) and path together and masks the segments of secret parameters. It
// reports false when path does not follow route.
func alignParams(path, route string, bm builderMask) (string, bool) {
	if route == "" || strings.Contains(route, `\`) {
		return "", false
	}
	var b strings.Builder
	ri, pi := 0, 0
	for {
		rEnd, pEnd := segmentEnd(route, ri), segmentEnd(path, pi)
		rs, ps := route[ri:rEnd], path[pi:pEnd]
		switch j := strings.IndexAny(rs, ":*"); {
		case j < 0:
			if rs != ps {
				return "", false
			}
			b.WriteString(ps)
		case rs[j] == '*':
			// A catch-all takes the rest of the path.
			if secret, with := bm.secret(rs[j+1:]); secret {
				b.WriteString(with)
			} else {
				b.WriteString(path[pi:])
			}
			return b.String(), true
		default:
			if len(ps) < j || ps[:j] != rs[:j] {
				return "", false
			}
			if secret, with := bm.secret(rs[j+1:]); secret {
				b.WriteString(ps[:j] + with)
			} else {
				b.WriteString(ps)
			}
		}
		ri, pi = rEnd, pEnd
		if ri == len(route) {
			b.WriteString(path[pi:]) // a trailing slash gin let through
			return b.String(), true
		}
		if pi == len(path) {
			return "", false
		}
		b.WriteByte('/')
		ri, pi = ri+1, pi+1
	}
}

// segmentEnd returns the index of the next '/' in s from i, or len(s).
func segmentEnd(s string, i int) int {
	if j := strings.IndexByte(s[i:], '/'); j >= 0 {
		return i + j
	}
	return len(s)
}

// maskSegments masks each segment of path as text; "scheme:" followed by
// "//" and an authority is masked as one, so that a URL's password is
// found.
func maskSegments(path string, text func(string) string) string {
	segs := strings.Split(path, "/")
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(segs); i++ {
		if i > 0 {
			b.WriteByte('/')
		}
		s := segs[i]
		if strings.HasSuffix(s, ":") && i+2 < len(segs) && segs[i+1] == "" {
			s += "//" + segs[i+2]
			i += 2
		}
		b.WriteString(text(s))
	}
	return b.String()
}
