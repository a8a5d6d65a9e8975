package errmon

import (
	"errors"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// newTestContext is a gin.Context for one GET request, in gin's test mode.
func newTestContext(t testing.TB) *gin.Context {
	withGinMode(t, gin.TestMode)
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("GET", "/", nil)
	return c
}

// codeError is a comparable error type with a field, to check that Error
// hands c.Error the value itself.
type codeError struct{ code int }

func (e codeError) Error() string { return "code error" }

//go:noinline
func attachWithError(c *gin.Context, err error) (*gin.Error, int) {
	_, _, line, _ := runtime.Caller(0)
	return Error(c, err), line + 1
}

// TestErrorAttachesAsCErrorDoes: Error leaves in c.Errors what c.Error
// would have left: the same *gin.Error it returns, holding the very error
// value, of type gin.ErrorTypePrivate with no meta; the caller's stack is
// kept aside, its first frame the calling function at the line of the
// call.
func TestErrorAttachesAsCErrorDoes(t *testing.T) {
	sentinel := codeError{code: 7}
	plain, viaError := newTestContext(t), newTestContext(t)
	want := plain.Error(sentinel)
	got, line := attachWithError(viaError, sentinel)

	if len(viaError.Errors) != 1 || viaError.Errors[0] != got {
		t.Fatalf("c.Errors %v, want the returned *gin.Error only", viaError.Errors)
	}
	if got.Err != error(sentinel) || !errors.Is(got, sentinel) {
		t.Errorf("Err %#v, want the value given", got.Err)
	}
	if got.Type != want.Type || got.Meta != want.Meta || got.Error() != want.Error() {
		t.Errorf("got %+v, c.Error gives %+v", *got, *want)
	}
	if viaError.Errors.String() != plain.Errors.String() {
		t.Errorf("c.Errors reads %q, c.Error's %q", viaError.Errors.String(), plain.Errors.String())
	}

	frames := callSiteFrames(viaError, got)
	if len(frames) == 0 {
		t.Fatal("no call site kept")
	}
	if fn := frames[0].Function; fn != selfPkg+".attachWithError" {
		t.Errorf("first frame %q, want attachWithError", fn)
	}
	if !strings.HasSuffix(frames[0].File, "ginerror_test.go") || frames[0].Line != line {
		t.Errorf("first frame at %s:%d, want ginerror_test.go:%d", frames[0].File, frames[0].Line, line)
	}
	if len(frames) > callSiteDepth {
		t.Errorf("%d frames kept, at most %d", len(frames), callSiteDepth)
	}
	if f := callSiteFrames(plain, want); f != nil {
		t.Errorf("plain c.Error has a call site: %v", f)
	}
}

// TestErrorCallSitesByError: each error's call site is its own, found by
// its *gin.Error; errors attached with c.Error in between have none, and
// past maxCallSites errors no more are kept.
func TestErrorCallSitesByError(t *testing.T) {
	c := newTestContext(t)
	first, firstLine := attachWithError(c, errors.New("one"))
	plain := c.Error(errors.New("two"))
	_, _, line, _ := runtime.Caller(0)
	third := Error(c, errors.New("three"))
	for _, tc := range []struct {
		e    *gin.Error
		fn   string
		line int
	}{
		{first, selfPkg + ".attachWithError", firstLine},
		{third, selfPkg + ".TestErrorCallSitesByError", line + 1},
	} {
		f := callSiteFrames(c, tc.e)
		if len(f) == 0 || f[0].Function != tc.fn || f[0].Line != tc.line {
			t.Errorf("%q: call site %v, want %s at line %d", tc.e.Err, f, tc.fn, tc.line)
		}
	}
	if f := callSiteFrames(c, plain); f != nil {
		t.Errorf("c.Error's error has a call site: %v", f)
	}

	for range maxCallSites {
		Error(c, errors.New("many"))
	}
	kept := 0
	for i, e := range c.Errors {
		if callSiteFrames(c, e) != nil {
			kept++
		} else if i > 2 {
			if kept < maxCallSites {
				t.Errorf("error %d has no call site with %d kept", i, kept)
			}
		}
	}
	if kept != maxCallSites {
		t.Errorf("%d call sites kept of %d errors, want %d", kept, len(c.Errors), maxCallSites)
	}
}

// TestErrorNilPanicsAsCError: a nil error panics as c.Error's does, with
// nothing attached.
func TestErrorNilPanicsAsCError(t *testing.T) {
	c := newTestContext(t)
	defer func() {
		if r := recover(); r == nil || len(c.Errors) != 0 {
			t.Errorf("recovered %v with %d errors, want c.Error's panic and none", r, len(c.Errors))
		}
	}()
	Error(c, nil)
}

var benchErr = errors.New("bench")

// BenchmarkCError and BenchmarkErrmonError compare one error attached to a
// fresh request (gin resets its contexts: c.Keys and c.Errors start empty).
func BenchmarkCError(b *testing.B) {
	c := newTestContext(b)
	b.ReportAllocs()
	for b.Loop() {
		c.Keys, c.Errors = nil, c.Errors[:0]
		_ = c.Error(benchErr)
	}
}

func BenchmarkErrmonError(b *testing.B) {
	c := newTestContext(b)
	b.ReportAllocs()
	for b.Loop() {
		c.Keys, c.Errors = nil, c.Errors[:0]
		_ = Error(c, benchErr)
	}
}

// benchRequest serves GET /fail through gin with attach as the handler's
// way to attach an error (the response is a 200: nothing is recorded).
func benchRequest(b *testing.B, attach func(*gin.Context, error) *gin.Error) {
	withGinMode(b, gin.TestMode)
	r := gin.New()
	r.Use(func(c *gin.Context) { c.Next() })
	r.GET("/fail", func(c *gin.Context) { _ = attach(c, benchErr) })
	req := httptest.NewRequest("GET", "/fail", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r.ServeHTTP(w, req)
	}
}

// BenchmarkRequestCError and BenchmarkRequestErrmonError compare a whole
// request whose handler attaches one error, with the stack of a real
// handler chain above the call.
func BenchmarkRequestCError(b *testing.B) {
	benchRequest(b, (*gin.Context).Error)
}

func BenchmarkRequestErrmonError(b *testing.B) {
	benchRequest(b, Error)
}
