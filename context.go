package errmon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"strings"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// ContextBuilder builds the request context stored with an error. It runs
// on the request path, after a failure, while the request is still valid.
// mask reports whether a key (a header, cookie, parameter or JSON key) must
// be hidden and the value to show instead. errmon cuts the result to the
// context budget (48 KiB, see the README) and masks it again before
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
// the README): past its share a string is cut with a
// "… [N bytes cut]" marker, a map gets a "[cut]" entry saying what it left
// out ("[N entries, M bytes cut]", "[N bytes cut]" for a query or form),
// a list a last item "[N items cut]", a body past the budget a
// "body_cut" entry, and a level nested deeper than the limit is the string
// "[deeper levels cut]". So a request costs no more to capture than one
// that just fills the budget, whatever its size.
type DefaultContextBuilder struct{}

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
	return builderMask{fn: m.mask.Key, with: m.mask.With, text: m.mask.Text}
}

// keepText is the free-text masking of a builder run outside a capture.
func keepText(s string) string { return s }

// BuildContext implements ContextBuilder.
func (d DefaultContextBuilder) BuildContext(c *gin.Context, mask func(key string) (bool, string)) map[string]any {
	bm := builderMask{fn: mask, with: defaultMaskWith, text: keepText}
	// During errmon's capture, the monitor's masker is in c, whoever calls
	// BuildContext (errmon, or a custom builder that wraps this one): its
	// mask text and free-text masking are used.
	if v, ok := c.Get(textMaskKey); ok {
		if mk, ok := v.(*text.Masker); ok && mk != nil {
			bm.text, bm.with = mk.Text, mk.With
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
				put("query", text.Tree(pairMap(ct, raw, "&;", queryShare, false), bm.fn, bm.with, nil))
			})
		}
	}
	put("host", ct.text(r.Host, smallField))
	put("route", ct.text(c.FullPath(), store.MaxPathBytes))
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
			put("params", text.Tree(params, bm.fn, bm.with, nil))
		})
	}
	if len(r.Header) > 0 {
		ct.within(headersShare, func() {
			h := cutMap(ct, r.Header, 1, ct.values, valuesSize)
			put("headers", text.Tree(text.HeaderTree(h, bm.with), bm.fn, bm.with, nil))
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
		put("form", text.Tree(ct.value(r.MultipartForm.Value, 1), bm.fn, bm.with, nil))
		if len(r.MultipartForm.File) > 0 {
			files := cutMap(ct, r.MultipartForm.File, 1, func(fhs []*multipart.FileHeader, depth int) any {
				return cutList(ct, fhs, depth, func(fh *multipart.FileHeader, _ int) any {
					ct.left -= 30
					return map[string]any{"filename": ct.text(fh.Filename, smallField), "size": fh.Size}
				})
			}, nil)
			put("files", text.Tree(files, bm.fn, bm.with, nil))
		}
		return
	}
	body, truncated := RequestBody(c)
	if len(body) == 0 {
		if len(r.PostForm) > 0 {
			put("form", text.Tree(ct.value(r.PostForm, 1), bm.fn, bm.with, nil))
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
				put("json", text.Tree(ct.value(v, 1), bm.fn, bm.with, nil))
				return
			}
		}
		// Nested too deep, cut short or malformed: keep what could be read,
		// in its structure (deeper levels replaced by a marker), so that
		// secret keys are masked at any depth.
		if v, complete := partialJSON(body, maxContextDepth-1); v != nil {
			noteCut()
			put("json", text.Tree(ct.value(v, 1), bm.fn, bm.with, nil))
			if !complete {
				put("json_incomplete", true)
			}
			return
		}
	case mediaType == "application/x-www-form-urlencoded":
		if validText(body, truncated) {
			noteCut()
			put("form", text.Tree(pairMap(ct, string(body), "&", len(body), truncated), bm.fn, bm.with, nil))
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
