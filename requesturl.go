package errmon

// The request's URL as errmon stores and logs it: the path with the values
// of secret-named parameters and key=value segments masked, and the query
// decoded, masked by name and as text, and encoded again ('&' and ';'
// separate pairs).

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

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
// to maxPathBytes, and every segment masked as text (password=X,
// secret:X, a URL's password).
func maskedPath(c *gin.Context, bm builderMask) string {
	path := requestPath(c.Request)
	total := len(path)
	// Only the start is kept: what a secret value starting there needs,
	// and room for the cut to back off.
	limit := store.MaxPathBytes + cutSlack
	for _, p := range c.Params {
		limit = max(limit, store.MaxPathBytes+len(p.Value))
	}
	if len(path) > limit {
		path = path[:limit]
	}
	p := maskPathParams(path, c.FullPath(), c.Params, bm)
	return maskSegments(cutTextOf(p, store.MaxPathBytes, len(p)+total-len(path)), bm.text)
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
