package errmon

import (
	"runtime"

	"github.com/gin-gonic/gin"
)

// callSiteDepth bounds the program counters Error keeps: enough for a
// handler, its helpers and the middleware chain above them.
const callSiteDepth = 32

// maxCallSites bounds the errors of one request whose call sites Error
// keeps; later ones are recorded as c.Error's are.
const maxCallSites = 64

// callSiteKey is the gin.Context key under which Error keeps the call
// sites of the request's errors, newest first.
type callSiteKey struct{}

// callSite is where Error attached one error: the stack of its caller.
type callSite struct {
	err  *gin.Error
	next *callSite
	kept int // call sites in the list, this one included
	n    int
	pcs  [callSiteDepth]uintptr
}

// Error attaches err to c exactly as c.Error(err) does (the same *gin.Error
// is returned and appended to c.Errors, err unchanged, and a nil err
// panics as it does there) and keeps the stack of its caller, up to 32
// frames, in c (for the first 64 errors of a request). When the middleware
// or Track records that error and err carries no stack of its own, the
// stored traceback is the stack of this call, which groups it as a panic's
// stack groups a panic, and its culprit is the function that called Error. It works with any monitor: the one
// that records the error reads the stack from c.
func Error(c *gin.Context, err error) *gin.Error {
	e := c.Error(err)
	var next *callSite
	if v, ok := c.Get(callSiteKey{}); ok {
		next, _ = v.(*callSite)
	}
	if next != nil && next.kept >= maxCallSites {
		return e
	}
	s := &callSite{err: e, next: next, kept: 1}
	if next != nil {
		s.kept = next.kept + 1
	}
	s.n = runtime.Callers(2, s.pcs[:])
	c.Set(callSiteKey{}, s)
	return e
}

// callSiteFrames returns the frames of the Error call that attached e to
// c, nil when e was attached otherwise.
func callSiteFrames(c *gin.Context, e *gin.Error) []Frame {
	v, ok := c.Get(callSiteKey{})
	if !ok {
		return nil
	}
	for s, _ := v.(*callSite); s != nil; s = s.next {
		if s.err == e {
			return pcsToFrames(s.pcs[:s.n])
		}
	}
	return nil
}
