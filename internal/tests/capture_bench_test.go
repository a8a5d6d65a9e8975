package tests

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// Benchmarks of a failing request's capture: a small request against one
// with 100 headers of 8 KiB each (800 KiB, under net/http's 1 MiB header
// limit). The context budget makes the second cost about as much as a
// request that just fills the budget, not 800 KiB of masking. Run with:
//
//	go test -run XXX -bench Capture -benchmem ./internal/tests/

// benchHeaderRequest returns a GET with n headers of size bytes each (one
// of them secret-named) besides the usual few.
func benchHeaderRequest(target string, n, size int) *http.Request {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("User-Agent", "bench/1.0")
	req.Header.Set("Accept", "*/*")
	for i := 0; i < n; i++ {
		v := strings.Repeat("v", size)
		if i == 0 {
			v = "password=" + v // text for the masker to find
		}
		req.Header["X-Filler-"+strconv.Itoa(i)] = []string{v}
	}
	return req
}

// benchCaptureEngine is a monitor on SQLite behind a gin engine whose route
// panics; the panic log is silenced.
func benchCaptureEngine(b *testing.B) *gin.Engine {
	b.Helper()
	tm := sqliteMonitor(b, func(c *errmon.Config) { c.Output = io.Discard })
	withGinMode(b, gin.ReleaseMode)
	r := tm.engine(false)
	r.GET("/bench/:id", func(*gin.Context) { panic("bench failure") })
	return r
}

// BenchmarkCaptureFailingRequest: one failing request through the
// middleware, small or with 100 headers of 8 KiB.
func BenchmarkCaptureFailingRequest(b *testing.B) {
	for _, bc := range []struct {
		name string
		req  *http.Request
	}{
		{"small", benchHeaderRequest("/bench/7?page=2&password=x", 0, 0)},
		{"100x8KiB-headers", benchHeaderRequest("/bench/7?page=2&password=x", 100, 8<<10)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := benchCaptureEngine(b)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				r.ServeHTTP(w, bc.req)
			}
		})
	}
}
