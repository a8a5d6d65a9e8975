package errmon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// Occurrence is one failure as errmon captured it, a snapshot that outlives
// the request. It is what a Config.Fingerprint hook receives.
type Occurrence struct {
	// Kind is "panic", "error" (attached with c.Error) or "record"
	// (recorded by hand).
	Kind string
	// Value is the panic value or the error.
	Value any
	// ExceptionName is the Go type of Value, e.g. "runtime.boundsError".
	ExceptionName string
	// Message is Value as text, masked, sanitized and capped.
	Message string
	// Frames is the stack that groups the occurrence, newest first: the
	// panic's, or the error's own (github.com/pkg/errors and the like). It is
	// empty for an error that carries no stack.
	Frames []Frame

	Host   string
	Path   string // the path only; the masked query is in RequestData
	Method string
	Route  string // c.FullPath()
	Time   time.Time

	// Hash is the fingerprint (sha256 hex), set once the occurrence is
	// complete: it is empty while a Fingerprint hook runs.
	Hash        string
	Traceback   string
	RequestData string // JSON of the masked request context
}

// Caps on stored text, in bytes. Longer values are cut at a character
// boundary and marked.
//
// The request context (RequestData) is kept within a budget applied before
// masking, so that capturing a request costs no more than capturing one
// that fills the budget: at most 48 KiB of text (counted as the JSON it
// makes before masking), each string at most 8 KiB and each key at most
// 1 KiB, nested at most 32 levels. The default builder shares the budget
// out: 16 KiB for the headers, 8 KiB for the query parameters, 4 KiB for
// the path parameters, 2 KiB for the cookie names, 8 KiB for the URL (its
// path at most MaxPathBytes), and the rest, at least 7 KiB, for the body.
// What is cut is marked: "… [N bytes cut]" ends a cut string, a "[cut]"
// entry says what a map left out ("[N entries, M bytes cut]"), "[N items
// cut]" ends a cut list, "body_cut" says how much of the body was left
// out, and "[deeper levels cut]" stands for a level nested too deep. A context still longer than MaxRequestDataBytes once
// masked (masks are longer than short secrets) is cut again to a budget
// that fits; failing that, only the request's method, URL, host, route and
// client IP are kept.
const (
	MaxMessageBytes     = 8 << 10
	MaxTracebackBytes   = 32 << 10
	MaxRequestDataBytes = 64 << 10
	MaxPathBytes        = 2 << 10
	MaxHostBytes        = 255
	MaxMethodBytes      = 16
	MaxNameBytes        = 512
	maxContextString    = 8 << 10  // one string inside the request context
	maxContextKey       = 1 << 10  // one map key inside the request context
	contextBudget       = 48 << 10 // the whole request context, before masking
	maxContextDepth     = 32       // container levels of the request context
)

// capture snapshots a failure: everything errmon keeps is copied out of the
// request here, on the request path, since gin reuses its contexts.
func (m *Monitor) capture(c *gin.Context, kind string, v any, frames []Frame, extra []Frame) *Occurrence {
	o := &Occurrence{
		Kind:          kind,
		Value:         v,
		ExceptionName: sanitize(exceptionName(v), MaxNameBytes),
		Message:       m.messages.get(messageOf(v), func(s string) string { return m.maskCap(s, MaxMessageBytes) }),
		Frames:        frames,
		Time:          dbTime(time.Now()),
	}
	if c != nil && c.Request != nil {
		if kind == "record" {
			// Record runs while the handler may still read the body:
			// the context takes only what was read so far.
			c.Set(midRequestKey, true)
			defer c.Set(midRequestKey, false)
		}
		o.Host = capText(c.Request.Host, MaxHostBytes)
		o.Path = capText(maskedPath(c, m.monitorMask()), MaxPathBytes)
		o.Method = capText(c.Request.Method, MaxMethodBytes)
		o.Route = capText(c.FullPath(), MaxPathBytes)
		o.RequestData = m.requestData(c)
		o.Message = m.hideRequestSecrets(c, o.Message)
	}
	tb := frames
	if len(tb) == 0 {
		tb = extra
	}
	o.Traceback = sanitize(formatTraceback(tb), MaxTracebackBytes)
	o.Hash = fingerprint(o, m.cfg.Fingerprint)
	return o
}

// requestData runs the ContextBuilder, cuts what it returns to the context
// budget, masks it once more and encodes it, within MaxRequestDataBytes.
// The default builder keeps within the budget as it builds; a custom
// builder's result is cut here, before it is masked. A builder that panics
// does not stop the error from being recorded.
func (m *Monitor) requestData(c *gin.Context) (data string) {
	defer func() {
		if r := recover(); r != nil {
			msg := m.maskCap(messageOf(r), 1024)
			m.log.Error("errmon: ContextBuilder panicked; the error is recorded without its request context",
				"panic", msg)
			b, _ := marshalJSON(map[string]any{"context_error": "ContextBuilder panicked: " + msg})
			data = string(b)
		}
	}()
	c.Set(textMaskKey, m.mask)
	raw := m.cfg.ContextBuilder.BuildContext(c, m.mask.fn)
	_, ours := m.cfg.ContextBuilder.(DefaultContextBuilder)
	b, masked := m.encodeContext(raw, contextBudget, !ours)
	if len(b) > MaxRequestDataBytes {
		// Masks longer than what they hide, escapes: cut again, to a
		// budget scaled to fit.
		b, masked = m.encodeContext(raw, contextBudget*(MaxRequestDataBytes*3/4)/len(b), true)
	}
	if len(b) > MaxRequestDataBytes {
		// Too big even so: keep what identifies the request.
		small := map[string]any{"truncated": true, "size": len(b)}
		if mm, ok := masked.(map[string]any); ok {
			for _, k := range []string{"method", "url", "host", "route", "client_ip"} {
				if v, ok := mm[k].(string); ok {
					small[k] = sanitize(v, maxContextString)
				}
			}
		}
		b, _ = marshalJSON(small)
	}
	return string(b)
}

// encodeContext cuts raw to budget (when cut is set), masks it (keys by
// name, every string as text) and encodes it.
func (m *Monitor) encodeContext(raw map[string]any, budget int, cut bool) ([]byte, any) {
	var v any = raw
	if cut {
		v = (&cutter{left: budget, key: m.mask.text}).value(raw, 0)
	}
	masked := maskTree(v, m.mask.fn, m.mask.with, func(s string) string {
		return m.maskCap(s, maxContextString)
	})
	b, err := marshalJSON(masked)
	if err != nil {
		b, _ = marshalJSON(map[string]any{"context_error": "the request context could not be encoded: " + sanitize(err.Error(), 1024)})
	}
	return b, masked
}

// marshalJSON encodes v as compact JSON without escaping &, < and > (the
// stored context is read by people; the dashboard escapes what it shows).
func marshalJSON(v any) ([]byte, error) { return encodeJSON(v, "") }

// indentJSON is marshalJSON indented by two spaces, for people to read in
// alerts and on the dashboard.
func indentJSON(v any) ([]byte, error) { return encodeJSON(v, "  ") }

// encodeJSON encodes v without HTML escapes, indented by indent.
func encodeJSON(v any, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode request context: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// maskCap masks the secrets written in s and sanitizes it to at most max
// bytes. A long s is cut before it is masked, so that masking costs no more
// for a 10 MB value than for one just past the cap.
func (m *Monitor) maskCap(s string, max int) string {
	const slack = 512 // room for a key=value pair that straddles the cut
	if len(s) <= max+slack {
		return sanitize(m.mask.text(s), max)
	}
	return sanitizeOf(m.mask.text(s[:max+slack]), max, len(s))
}

// capText is sanitize for a value that may be far longer than max: only
// its first max bytes (and a character) are looked at.
func capText(s string, max int) string {
	if len(s) <= max {
		return sanitize(s, max)
	}
	return sanitizeOf(s[:max+utf8.UTFMax], max, len(s))
}

// sanitize makes s storable in any database: valid UTF-8, no NUL bytes, at
// most max bytes (cut at a character boundary, with a marker).
func sanitize(s string, max int) string { return sanitizeOf(s, max, len(s)) }

// sanitizeOf is sanitize for s cut from a value of total bytes: the marker
// counts what was cut from the whole value.
func sanitizeOf(s string, limit, total int) string {
	whole := total <= len(s)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if len(s) <= limit && whole {
		return s
	}
	total = max(total, len(s))
	// The marker is sized for the largest count it can hold, so that the
	// result never passes limit.
	marker := len(fmt.Sprintf("… [%d bytes cut]", total))
	if marker > limit/2 {
		marker = 0 // a short column (a method, say): cut without a marker
	}
	cut := min(max(limit-marker, 0), len(s))
	for cut > 0 && cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if marker == 0 {
		return s[:cut]
	}
	return s[:cut] + fmt.Sprintf("… [%d bytes cut]", total-cut)
}

// Markers of what the context budget cut.
const (
	cutKey       = "[cut]"               // the map entry that counts what a map left out
	deeperMarker = "[deeper levels cut]" // what stands for a level nested too deep
	// sortedEntriesMax is the size up to which a map is cut in the order of
	// its keys; a larger one (only a hostile request has one) is cut in no
	// particular order, so that cutting stays linear in its size.
	sortedEntriesMax = 4096
)

// cutter cuts a request context to a budget before it is masked: strings
// to maxContextString (keys to maxContextKey) and to what the budget has
// left, maps and lists to the entries the budget holds, nesting to
// maxContextDepth. Everything kept is charged about the size it takes as
// JSON; once the budget is spent, what is left is only counted.
type cutter struct {
	left int                 // bytes the budget has left; may go below 0
	key  func(string) string // masks a kept key as free text; nil keeps it
}

// within runs f with at most limit bytes of the budget, and charges the
// budget what f spent.
func (ct *cutter) within(limit int, f func()) {
	saved := ct.left
	ct.left = min(saved, limit)
	start := ct.left
	f()
	ct.left = saved - (start - ct.left)
}

// text cuts s to limit bytes and to what the budget has left (at least 64
// bytes, room for a marker), and charges it.
func (ct *cutter) text(s string, limit int) string { return ct.textOf(s, len(s), limit) }

// textOf is text for s the start of a value of total bytes.
func (ct *cutter) textOf(s string, total, limit int) string {
	s = cutTextOf(s, min(limit, max(ct.left-2, 64)), total)
	ct.left -= len(s) + 2
	return s
}

// keyText cuts a map key to maxContextKey, masks it as text, and charges
// it.
func (ct *cutter) keyText(k string) string {
	k = cutText(k, maxContextKey)
	if ct.key != nil {
		k = ct.key(k)
	}
	ct.left -= len(k) + 4
	return k
}

// cutText returns s, or, when it is longer than limit bytes, its start and
// a "… [N bytes cut]" marker, limit bytes in all (at least the marker).
// Since masking comes after, the cut backs off to the last separator
// (space, & ; , /) within cutSlack bytes of it: a key=value pair, a URL or
// a token that the cut would split is left out whole rather than kept
// half, where masking might no longer recognize it.
func cutText(s string, limit int) string { return cutTextOf(s, limit, len(s)) }

// cutSlack is how far back a cut looks for a separator.
const cutSlack = 512

// cutTextOf is cutText for s the start of a value of total bytes.
func cutTextOf(s string, limit, total int) string {
	if total <= limit && len(s) == total {
		return s
	}
	// The marker is sized for the largest count it can hold.
	keep := min(max(limit-len(fmt.Sprintf("… [%d bytes cut]", total)), 0), len(s))
	if i := strings.LastIndexAny(s[max(keep-cutSlack, 0):keep], " \t\r\n&;,/"); i >= 0 {
		keep = max(keep-cutSlack, 0) + i + 1
	}
	for keep > 0 && keep < len(s) && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + fmt.Sprintf("… [%d bytes cut]", total-keep)
}

// value returns v cut to the budget; depth is the number of containers
// around it. It returns strings, maps of string to any, lists of any, and
// the scalars it was given; a value of another type is replaced by its
// JSON encoding, decoded.
func (ct *cutter) value(v any, depth int) any {
	switch t := v.(type) {
	case nil:
		ct.left -= 4
		return nil
	case string:
		return ct.text(t, maxContextString)
	case bool:
		ct.left -= 5
		return t
	case json.Number:
		ct.left -= len(t)
		return t
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		ct.left -= 8
		return t
	case map[string]any:
		return cutMap(ct, t, depth, ct.value, nil)
	case map[string]string:
		return cutMap(ct, t, depth, func(s string, _ int) any { return ct.text(s, maxContextString) }, stringSize)
	case map[string][]string:
		return cutMap(ct, t, depth, ct.values, valuesSize)
	case url.Values:
		return cutMap(ct, t, depth, ct.values, valuesSize)
	case http.Header:
		return cutMap(ct, t, depth, ct.values, valuesSize)
	case []any:
		return cutList(ct, t, depth, ct.value)
	case []string:
		return cutList(ct, t, depth, func(s string, _ int) any { return ct.text(s, maxContextString) })
	}
	return ct.encoded(v, depth)
}

// values cuts a list of header or form values as maskTree shows them: one
// value as itself, several as a list.
func (ct *cutter) values(vs []string, depth int) any {
	if len(vs) == 1 {
		return ct.text(vs[0], maxContextString)
	}
	return cutList(ct, vs, depth, func(s string, _ int) any { return ct.text(s, maxContextString) })
}

// encoded cuts a value of a type the cutter does not walk (a struct, say):
// its JSON encoding, decoded when it fits the budget and kept as text
// otherwise, so that it is masked like the rest.
func (ct *cutter) encoded(v any, depth int) any {
	b, err := marshalJSON(v)
	if err != nil {
		return ct.text(fmt.Sprintf("<%T: %v>", v, err), smallField)
	}
	if len(b) > ct.left {
		return ct.text(string(b), maxContextString)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var d any
	if dec.Decode(&d) != nil {
		return ct.text(string(b), maxContextString)
	}
	return ct.value(d, depth)
}

// stringSize is the size of a value, for a "[cut]" count.
func stringSize(s string) int { return len(s) }

// valuesSize is the size of a list of values, for a "[cut]" count.
func valuesSize(vs []string) int {
	n := 0
	for _, v := range vs {
		n += len(v)
	}
	return n
}

// cutMap cuts m: its entries in key order (when it has at most
// sortedEntriesMax), while the budget lasts, each key cut and masked as
// text and each value cut by conv; a "[cut]" entry counts the entries left
// out and, when size is given, their bytes. At depth maxContextDepth the
// map is replaced by "[deeper levels cut]".
func cutMap[V any](ct *cutter, m map[string]V, depth int, conv func(V, int) any, size func(V) int) any {
	if depth >= maxContextDepth {
		return ct.text(deeperMarker, smallField)
	}
	ct.left -= 2
	out := make(map[string]any, min(len(m), 16))
	cut, cutBytes := 0, 0
	add := func(k string, v V) {
		if ct.left <= 0 {
			cut++
			if size != nil {
				cutBytes += len(k) + size(v)
			}
			return
		}
		out[ct.keyText(k)] = conv(v, depth+1)
	}
	if len(m) <= sortedEntriesMax {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			add(k, m[k])
		}
	} else {
		for k, v := range m {
			add(k, v)
		}
	}
	if cut > 0 {
		marker := fmt.Sprintf("[%d entries cut]", cut)
		if size != nil {
			marker = fmt.Sprintf("[%d entries, %d bytes cut]", cut, cutBytes)
		}
		ct.left -= len(cutKey) + len(marker) + 6
		out[cutKey] = marker
	}
	return out
}

// cutList cuts xs: its items in order while the budget lasts, each cut by
// conv, then an "[N items cut]" item for the rest. At depth
// maxContextDepth the list is replaced by "[deeper levels cut]".
func cutList[E any](ct *cutter, xs []E, depth int, conv func(E, int) any) any {
	if depth >= maxContextDepth {
		return ct.text(deeperMarker, smallField)
	}
	ct.left -= 2
	out := make([]any, 0, min(len(xs), 16))
	for i, x := range xs {
		if ct.left <= 0 {
			marker := fmt.Sprintf("[%d items cut]", len(xs)-i)
			ct.left -= len(marker) + 3
			return append(out, marker)
		}
		ct.left--
		out = append(out, conv(x, depth+1))
	}
	return out
}
