package errmon

import (
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// recordedKey holds, in a request's gin.Context, how many of c.Errors were
// recorded already (by Track), so that each is recorded once.
const recordedKey = "github.com/errmon/errmon.recorded"

// Middleware returns the monitor's gin middleware, a drop-in replacement
// for gin.Recovery: it recovers panics, logs them to Config.Output as
// gin.RecoveryWithWriter does, lets Config.RecoveryHandler write the
// response, and records them; after the handlers return, it records the
// errors they attached with c.Error when the final status is at least
// Config.RecordStatus (500). The ignore rules of Config (IgnoreErrors,
// IgnoreStatus, Ignore, RecordClientGone) leave errors out, counted in
// [Stats].
//
// A broken connection (EPIPE or ECONNRESET) is logged and not recorded, and
// no status is written to it. A panic with http.ErrAbortHandler is not
// recorded and panics again, as net/http expects. A request that does not
// fail costs next to nothing: no lock, no I/O, and no allocation for the
// default monitor; a monitor that is not the default leaves itself in the
// gin.Context (one allocation), so that the package-level [Record] and
// [Track] of its requests find it.
func (m *Monitor) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		if m != defaultMonitor.Load() {
			// The package-level Record and Track find this monitor; the
			// default one they find without it, at no cost to the request.
			c.Set(monitorKey{}, m)
		}
		body := captureBody(c.Request, m.cfg.MaxBodyBytes)
		defer func() {
			if rec := recover(); rec != nil {
				m.handlePanic(c, rec, body)
			}
			if body != nil {
				body.release(c.Request)
			}
		}()
		c.Next()
		if len(c.Errors) > 0 {
			m.recordErrors(c, body, c.GetInt(recordedKey))
		}
	}
}

// Track wraps one handler so that its panics and errors are recorded
// exactly once, whether or not Middleware is installed too: a panic is
// recovered and answered here (Config.RecoveryHandler), and the errors h
// attaches are marked so that Middleware does not record them again.
func (m *Monitor) Track(h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) { m.trackCall(h, c) }
}

// trackCall runs h as Track does.
func (m *Monitor) trackCall(h gin.HandlerFunc, c *gin.Context) {
	var body *bodyCapture
	if _, captured := c.Request.Body.(*bodyCapture); !captured {
		body = captureBody(c.Request, m.cfg.MaxBodyBytes)
	}
	defer func() {
		if rec := recover(); rec != nil {
			m.handlePanic(c, rec, body)
		}
		if body != nil {
			body.release(c.Request)
		}
	}()
	h(c)
	if done := c.GetInt(recordedKey); len(c.Errors) > done {
		m.recordErrors(c, body, done)
	}
}

// recordErrors records c.Errors[from:] when the response status calls for
// it (at least Config.RecordStatus, not in Config.IgnoreStatus: those are
// counted as ignored), and marks them recorded.
func (m *Monitor) recordErrors(c *gin.Context, body *bodyCapture, from int) {
	if from >= len(c.Errors) || c.Writer.Status() < m.cfg.RecordStatus {
		return
	}
	if body != nil && c.Request.Body != body {
		c.Set(captureKey, body)
	}
	ignoreStatus := slices.Contains(m.cfg.IgnoreStatus, c.Writer.Status())
	for _, e := range c.Errors[from:] {
		var err error = e
		if e.Err != nil {
			err = e.Err
		}
		if recordedByHand(c, err) {
			continue // Record took it already, or a broken connection
		}
		if ignoreStatus {
			m.stats.ignored.Add(1) // Config.IgnoreStatus
			continue
		}
		// An error's own stack groups it, else the stack of the Error
		// call that attached it; a plain c.Error has neither and shows
		// its handler's frame.
		frames := errorFrames(err)
		if len(frames) == 0 {
			frames = callSiteFrames(c, e)
		}
		m.record(c, KindError, err, frames, handlerFrames(c))
	}
	c.Set(recordedKey, len(c.Errors))
}

// byHandKey holds, in a request's gin.Context, the errors given to Record
// and the broken connections, so that the same error attached with c.Error
// is not recorded (again).
const byHandKey = "github.com/errmon/errmon.byhand"

// markRecorded notes err as recorded (or not to record) for this request.
func markRecorded(c *gin.Context, err error) {
	if c == nil {
		return
	}
	v, _ := c.Get(byHandKey)
	list, _ := v.([]error)
	if len(list) < 16 {
		c.Set(byHandKey, append(list, err))
	}
}

// recordedByHand reports whether markRecorded noted err.
func recordedByHand(c *gin.Context, err error) bool {
	v, _ := c.Get(byHandKey)
	list, _ := v.([]error)
	for _, e := range list {
		if sameError(e, err) {
			return true
		}
	}
	return false
}

// sameError reports whether a and b are the same error value, without
// panicking on error types that cannot be compared.
func sameError(a, b error) (same bool) {
	defer func() {
		if recover() != nil { // a struct holding an incomparable value
			same = false
		}
	}()
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && ta != nil && ta.Comparable() && a == b
}

// handlePanic is called by the deferred function that recovered rec, so
// the panicking frames are still on the stack.
func (m *Monitor) handlePanic(c *gin.Context, rec any, body *bodyCapture) {
	err, isErr := rec.(error)
	if isErr && errors.Is(err, http.ErrAbortHandler) {
		if body != nil {
			body.release(c.Request)
		}
		panic(rec) // net/http's way to abort a response: not a bug
	}
	if isErr && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		if m.out != nil {
			m.logOutput("%s\n%s%s", m.hideRequestSecrets(c, m.maskCap(messageOf(rec), store.MaxMessageBytes)), m.requestDump(c), reset)
		}
		// As gin does: the error is attached for the host's loggers. It is
		// noted as taken care of, so that a status written before the write
		// failed does not make it recorded later.
		_ = c.Error(err)
		markRecorded(c, err)
		c.Abort()
		return
	}
	frames := panicFrames()
	if body != nil && c.Request.Body != body {
		c.Set(captureKey, body)
	}
	// An error that carries its own stack (github.com/pkg/errors...) is
	// grouped and stored by it: it tells where the error was made; the log
	// shows where it was thrown, as gin's does.
	stored := frames
	if isErr {
		if own := errorFrames(err); len(own) > 0 {
			stored = own
		}
	}
	m.record(c, KindPanic, rec, stored, nil)
	if m.out != nil {
		msg := m.hideRequestSecrets(c, m.maskCap(messageOf(rec), store.MaxMessageBytes))
		stack := formatTraceback(frames)
		if gin.IsDebugging() {
			m.logOutput("[Recovery] %s panic recovered:\n%s\n%s\n%s%s",
				timeFormat(time.Now()), m.requestDump(c), msg, stack, reset)
		} else {
			m.logOutput("[Recovery] %s panic recovered:\n%s\n%s%s", timeFormat(time.Now()), msg, stack, reset)
		}
	}
	m.respond(c, rec)
}

// logOutput writes one entry to Config.Output; a writer that panics does
// not take the request down with it.
func (m *Monitor) logOutput(format string, args ...any) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("errmon: Config.Output panicked", "panic", m.maskCap(messageOf(r), 1024))
		}
	}()
	m.out.Printf(format, args...)
}

// respond runs the RecoveryHandler; if it panics too, the request gets a
// plain 500 and the host app keeps running.
func (m *Monitor) respond(c *gin.Context, rec any) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("errmon: RecoveryHandler panicked", "panic", m.maskCap(messageOf(r), store.MaxMessageBytes))
			c.AbortWithStatus(http.StatusInternalServerError)
		}
	}()
	m.cfg.RecoveryHandler(c, rec)
}

// reset ends the colour the panic log starts with.
const reset = "\033[0m"

// timeFormat formats t as gin's Recovery does.
func timeFormat(t time.Time) string { return t.Format("2006/01/02 - 15:04:05") }

// newOutputLogger returns the panic log on cfg.Output, nil when silenced.
func newOutputLogger(cfg Config) *log.Logger {
	if cfg.Output == nil || cfg.Output == io.Discard {
		return nil // silenced: the log is not even formatted
	}
	return log.New(cfg.Output, "\n\n\x1b[31m", log.LstdFlags)
}

// requestDump writes the request line and headers as gin does in debug
// mode, masked as the stored context is: the path (secret parameters and
// key=value segments), the query string (decoded, masked by name and as
// text, encoded again), header names as text, credential headers, secret
// headers and every cookie value. It keeps within the headers' share of
// the context budget (16 KiB): a header value is cut to maxContextString,
// and once the share is spent the headers left are only counted.
func (m *Monitor) requestDump(c *gin.Context) string {
	r := c.Request
	bm := m.monitorMask()
	var b strings.Builder
	b.WriteString(requestLine(c, bm))
	b.WriteString("\r\nHost: ")
	b.WriteString(m.maskCap(r.Host, smallField))
	b.WriteString("\r\n")
	left := headersShare
	cut, cutBytes := 0, 0
	dump := func(k string, vs []string) {
		if left <= 0 {
			cut++
			cutBytes += len(k) + valuesSize(vs)
			return
		}
		name := m.maskCap(k, maxContextKey)
		v := joinCut(vs, ", ", maxContextString+512)
		switch {
		case strings.EqualFold(k, "Cookie"):
			v = m.maskCap(text.CookieNames(v[:min(len(v), maxContextString)], m.mask.With), maxContextString)
		case m.mask.SecretHeader(k):
			v = m.mask.With
		default:
			v = m.maskCap(v, min(maxContextString, max(left, 64)))
		}
		left -= len(name) + len(v) + 4
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	if len(r.Header) <= sortedEntriesMax {
		for _, k := range slices.Sorted(maps.Keys(r.Header)) {
			dump(k, r.Header[k])
		}
	} else {
		for k, vs := range r.Header {
			dump(k, vs)
		}
	}
	if cut > 0 {
		fmt.Fprintf(&b, "[%d headers, %d bytes cut]\r\n", cut, cutBytes)
	}
	return b.String()
}

// joinCut joins vs with sep, stopping once the result holds limit bytes:
// no more than that (and one value) is copied.
func joinCut(vs []string, sep string, limit int) string {
	if len(vs) == 1 {
		return vs[0]
	}
	var b strings.Builder
	for i, v := range vs {
		if b.Len() >= limit {
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(v[:min(len(v), limit)])
	}
	return b.String()
}

// handlerFrames is the frame of the request's handler (c.Handler(), at the
// line where its function begins): the traceback of an error attached with
// c.Error that carries no stack of its own, so that its page says which
// handler failed. It is not part of the fingerprint.
func handlerFrames(c *gin.Context) []Frame {
	h := c.Handler()
	if h == nil {
		return nil
	}
	pc := reflect.ValueOf(h).Pointer()
	fn := runtime.FuncForPC(pc)
	if fn == nil {
		return nil
	}
	file, line := fn.FileLine(pc)
	return []Frame{{Function: fn.Name(), File: file, Line: line, InApp: inApp(fn.Name(), file)}}
}
