package errmon

import (
	"io"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
)

// bodyCapture stands in for a request body: the handler reads the whole
// body through it, and it keeps the first limit bytes for the error's
// context. Captures are pooled, so a request that does not fail costs no
// allocation.
type bodyCapture struct {
	orig      io.ReadCloser
	buf       []byte
	limit     int
	truncated bool
	eof       bool
}

var capturePool = sync.Pool{New: func() any { return new(bodyCapture) }}

// Read implements io.Reader.
func (b *bodyCapture) Read(p []byte) (int, error) {
	n, err := b.orig.Read(p)
	if n > 0 {
		b.keep(p[:n])
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *bodyCapture) keep(p []byte) {
	room := b.limit - len(b.buf)
	if room <= 0 {
		b.truncated = true
		return
	}
	if len(p) > room {
		p = p[:room]
		b.truncated = true
	}
	if need := len(b.buf) + len(p); need > cap(b.buf) {
		// Grow by doubling but never past the limit, so that a pooled
		// buffer stays reusable (see release) whatever the body's size.
		grown := make([]byte, len(b.buf), min(max(need, 2*cap(b.buf), minCaptureBuffer), b.limit))
		copy(grown, b.buf)
		b.buf = grown
	}
	b.buf = append(b.buf, p...)
}

const (
	// minCaptureBuffer is the smallest buffer a capture allocates.
	minCaptureBuffer = 512
	// maxPooledBuffer is the largest buffer kept in the pool: a capture
	// whose limit (Config.MaxBodyBytes) is larger gives its buffer back to
	// the garbage collector instead, so the pool never pins big buffers.
	maxPooledBuffer = 64 << 10
)

// Close implements io.Closer.
func (b *bodyCapture) Close() error { return b.orig.Close() }

// captureBody puts a capture in front of the request body, when there is
// one to capture. release must be called when the request is done.
//
// captureBody is small enough to be inlined, so that a request without a
// body (a GET) pays only these comparisons.
func captureBody(r *http.Request, limit int64) *bodyCapture {
	if limit <= 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	return startCapture(r, limit)
}

// startCapture takes a capture from the pool and puts it in front of r.Body.
// It is kept out of line so that captureBody stays inlinable.
//
//go:noinline
func startCapture(r *http.Request, limit int64) *bodyCapture {
	b := capturePool.Get().(*bodyCapture)
	b.orig, b.limit = r.Body, int(limit)
	r.Body = b
	return b
}

// release gives the request its own body back and returns the capture to
// the pool.
func (b *bodyCapture) release(r *http.Request) {
	if r.Body == b {
		r.Body = b.orig
	}
	if cap(b.buf) > maxPooledBuffer {
		b.buf = nil
	}
	*b = bodyCapture{buf: b.buf[:0]}
	capturePool.Put(b)
}

// RequestBody returns the first bytes of the request body (up to
// Config.MaxBodyBytes), whether or not the handler has read it, and whether
// it was cut short. It is meant for custom ContextBuilders; the slice is
// valid until the request ends. While the handler is still running (an
// error recorded with Record), it returns only what the handler has read
// so far, never taking bytes the handler has yet to read; the body then
// counts as cut short unless it was read to its end.
func RequestBody(c *gin.Context) (body []byte, truncated bool) {
	if c == nil || c.Request == nil {
		return nil, false
	}
	b, ok := c.Request.Body.(*bodyCapture)
	if !ok {
		if v, ok := c.Get(gin.BodyBytesKey); ok {
			if p, ok := v.([]byte); ok {
				return p, false
			}
		}
		if b = captureOf(c); b == nil {
			return nil, false
		}
	}
	if !c.GetBool(midRequestKey) {
		b.fill()
	}
	return b.buf, b.truncated || !b.eof
}

// midRequestKey marks, in a request's gin.Context, a capture made while
// the handler runs (Record): the body must not be read on its behalf.
const midRequestKey = "github.com/errmon/errmon.midrequest"

// fill reads what the handler left unread, up to the limit, so that the
// context holds the body even when the handler failed before reading it.
func (b *bodyCapture) fill() {
	var chunk [4096]byte
	// One byte past the limit tells whether the body goes on: keep then
	// marks the capture truncated.
	for !b.eof && !b.truncated {
		n, err := b.orig.Read(chunk[:min(len(chunk), b.limit-len(b.buf)+1)])
		if n > 0 {
			b.keep(chunk[:n])
		}
		if err != nil {
			b.eof = true
		}
	}
}

// captureKey is where the middleware notes its capture when the handler
// replaced c.Request.Body (set only on the error path).
const captureKey = "github.com/errmon/errmon.capture"

func captureOf(c *gin.Context) *bodyCapture {
	if v, ok := c.Get(captureKey); ok {
		b, _ := v.(*bodyCapture)
		return b
	}
	return nil
}
