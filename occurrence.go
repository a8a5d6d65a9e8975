package errmon

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// Kind says how an occurrence was captured, in [Occurrence.Kind].
type Kind string

// Kinds of occurrences.
const (
	KindPanic     Kind = "panic"     // a request's panic, recovered by the middleware or Track
	KindError     Kind = "error"     // an error a handler attached with c.Error
	KindRecord    Kind = "record"    // an error given to Record
	KindGoroutine Kind = "goroutine" // a goroutine's panic, recovered by Go or Recover
	KindLog       Kind = "log"       // a log record at slog.LevelError or above (SlogHandler)
)

// Occurrence is one failure as errmon captured it, a snapshot that outlives
// the request. It is what a Config.Fingerprint hook receives.
type Occurrence struct {
	// Kind says how it was captured: KindPanic, KindError, KindRecord,
	// KindGoroutine or KindLog.
	Kind Kind
	// Value is the panic value or the error.
	Value any
	// ExceptionName is the Go type of Value, e.g. "runtime.boundsError".
	ExceptionName string
	// Message is Value as text, masked, sanitized and capped.
	Message string
	// Frames is the stack that groups the occurrence, newest first: the
	// panic's, or the error's own (github.com/pkg/errors and the like), else
	// for an error attached with [Error] the stack of that call. It is
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
	// Release, Environment and Server say where it happened:
	// Config.Release, Config.Environment and the host name (os.Hostname).
	Release, Environment, Server string
	// Status is the response status of its request: for a panic 500, unless
	// the handler had written a status before it panicked; 0 outside a
	// request.
	Status int
	// Culprit is the function to blame: the newest in-app frame of the
	// traceback (for an error attached with c.Error without a stack, the
	// request's handler), else its newest frame; "" without a traceback.
	Culprit string
	// User is the id of the user its request hit ([SetUser] or
	// Config.User), masked and cut to 255 bytes; "" when none was named.
	User string

	userKey int64 // the user's key for the count of users (user.go); valid when User != ""
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
// client IP are kept. The request's breadcrumbs (see [Monitor.SlogHandler]
// and [Monitor.GormPlugin]) take at most 16 KiB of the stored context,
// once masked, and the request context keeps within what they leave.
const (
	maxContextString = 8 << 10  // one string inside the request context
	maxContextKey    = 1 << 10  // one map key inside the request context
	contextBudget    = 48 << 10 // the whole request context, before masking
	maxContextDepth  = 32       // container levels of the request context
)

// capture snapshots a failure: everything errmon keeps is copied out of the
// request here, on the request path, since gin reuses its contexts.
func (m *Monitor) capture(c *gin.Context, kind Kind, v any, frames []Frame, extra []Frame) *Occurrence {
	o := &Occurrence{
		Kind:          kind,
		Value:         v,
		ExceptionName: sanitize(exceptionName(v), store.MaxNameBytes),
		Message:       m.messages.Get(messageOf(v), func(s string) string { return m.maskCap(s, store.MaxMessageBytes) }),
		Frames:        frames,
		Time:          store.DBTime(time.Now()),
		Release:       m.cfg.Release,
		Environment:   m.cfg.Environment,
		Server:        hostName,
	}
	if c != nil && c.Request != nil {
		if kind == KindRecord {
			// Record runs while the handler may still read the body:
			// the context takes only what was read so far.
			c.Set(midRequestKey, true)
			defer c.Set(midRequestKey, false)
		}
		if c.Writer != nil {
			o.Status = c.Writer.Status()
			if kind == KindPanic && !c.Writer.Written() {
				o.Status = http.StatusInternalServerError
			}
		}
		o.Host = capText(c.Request.Host, store.MaxHostBytes)
		o.Path = capText(maskedPath(c, m.monitorMask()), store.MaxPathBytes)
		o.Method = capText(c.Request.Method, store.MaxMethodBytes)
		o.Route = capText(c.FullPath(), store.MaxPathBytes)
		o.RequestData = m.requestData(c)
		o.Message = m.hideRequestSecrets(c, o.Message)
		m.captureUser(c, o) // user.go
	}
	tb := frames
	if len(tb) == 0 {
		tb = extra
	}
	o.Traceback = sanitize(formatTraceback(tb), store.MaxTracebackBytes)
	o.Culprit = capText(culprit(tb), store.MaxCulpritBytes)
	m.captureSource(tb) // sourcecontext.go
	o.Hash = fingerprint(o, m.cfg.Fingerprint)
	return o
}

// requestData runs the ContextBuilder, cuts what it returns to the context
// budget, masks it once more and encodes it, within maxRequestDataBytes.
// The default builder keeps within the budget as it builds; a custom
// builder's result is cut here, before it is masked. A builder that panics
// does not stop the error from being recorded. The request's breadcrumbs
// (crumbs.go) join it under "breadcrumbs" (and "breadcrumbs_dropped"),
// replacing any the builder wrote, within crumbsShare: the request context
// keeps within what they leave.
func (m *Monitor) requestData(c *gin.Context) (data string) {
	crumbs, limit := m.requestCrumbMembers(c), store.MaxRequestDataBytes
	if crumbs != "" {
		limit -= len(crumbs) + 1
	}
	defer func() {
		if r := recover(); r != nil {
			msg := m.maskCap(messageOf(r), 1024)
			m.log.Error("errmon: ContextBuilder panicked; the error is recorded without its request context",
				"panic", msg)
			b, _ := text.MarshalJSON(map[string]any{"context_error": "ContextBuilder panicked: " + msg})
			data = string(spliceMembers(b, crumbs))
		}
	}()
	c.Set(textMaskKey, m.mask)
	raw := m.cfg.ContextBuilder.BuildContext(c, m.mask.Key)
	if crumbs != "" && raw != nil {
		delete(raw, "breadcrumbs")
		delete(raw, "breadcrumbs_dropped")
	}
	_, ours := m.cfg.ContextBuilder.(DefaultContextBuilder)
	b, masked := m.encodeContext(raw, contextBudget, !ours)
	if len(b) > limit {
		// Masks longer than what they hide, escapes: cut again, to a
		// budget scaled to fit.
		b, masked = m.encodeContext(raw, contextBudget*(limit*3/4)/len(b), true)
	}
	if len(b) > limit {
		// Too big even so: keep what identifies the request.
		small := map[string]any{"truncated": true, "size": len(b)}
		if mm, ok := masked.(map[string]any); ok {
			for _, k := range []string{"method", "url", "host", "route", "client_ip"} {
				if v, ok := mm[k].(string); ok {
					small[k] = sanitize(v, maxContextString)
				}
			}
		}
		b, _ = text.MarshalJSON(small)
	}
	return string(spliceMembers(b, crumbs))
}

// encodeContext cuts raw to budget (when cut is set), masks it (keys by
// name, every string as text) and encodes it.
func (m *Monitor) encodeContext(raw map[string]any, budget int, cut bool) ([]byte, any) {
	var v any = raw
	if cut {
		v = (&cutter{left: budget, key: m.mask.Text}).value(raw, 0)
	}
	masked := text.Tree(v, m.mask.Key, m.mask.With, func(s string) string {
		return m.maskCap(s, maxContextString)
	})
	b, err := text.MarshalJSON(masked)
	if err != nil {
		b, _ = text.MarshalJSON(map[string]any{"context_error": "the request context could not be encoded: " + sanitize(err.Error(), 1024)})
	}
	return b, masked
}

// maskCap masks the secrets written in s and sanitizes it to at most max
// bytes. A long s is cut before it is masked, so that masking costs no more
// for a 10 MB value than for one just past the cap.
func (m *Monitor) maskCap(s string, max int) string {
	const slack = 512 // room for a key=value pair that straddles the cut
	if len(s) <= max+slack {
		return sanitize(m.mask.Text(s), max)
	}
	return sanitizeOf(m.mask.Text(s[:max+slack]), max, len(s))
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

// culprit is the function of the newest in-app frame, else of the newest
// frame, else "".
func culprit(frames []Frame) string {
	for _, f := range frames {
		if f.InApp {
			return f.Function
		}
	}
	if len(frames) > 0 {
		return frames[0].Function
	}
	return ""
}

// hostName is this machine's name, as every occurrence records it.
var hostName = func() string {
	h, _ := os.Hostname()
	return capText(h, store.MaxHostBytes)
}()
