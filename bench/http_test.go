package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/getsentry/sentry-go"
	sentrygin "github.com/getsentry/sentry-go/gin"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// The request-path benchmarks: one gin engine per middleware variant, all in
// the same run, so that benchstat compares them side by side
// (benchstat -col /mw). Each serves the same route with the same request
// through a reusable ResponseWriter, so every allocation counted is the
// engine's and the middleware's.

func init() { gin.SetMode(gin.ReleaseMode) }

// nopTransport is a sentry.Transport that sends nothing: it measures the
// SDK's own cost on the request path, not the network.
type nopTransport struct{}

func (nopTransport) Flush(time.Duration) bool              { return true }
func (nopTransport) FlushWithContext(context.Context) bool { return true }
func (nopTransport) Configure(sentry.ClientOptions)        {}
func (nopTransport) SendEvent(*sentry.Event)               {}
func (nopTransport) Close()                                {}
func (nopTransport) String() string                        { return "nop" }

var _ sentry.Transport = nopTransport{}

// fakeDSN enables the SDK; with nopTransport nothing is ever sent there.
const fakeDSN = "https://public@127.0.0.1/1"

func initSentry(b testing.TB) {
	b.Helper()
	if err := sentry.Init(sentry.ClientOptions{Dsn: fakeDSN, Transport: nopTransport{}}); err != nil {
		b.Fatalf("sentry.Init: %v", err)
	}
	if sentry.CurrentHub().Client() == nil {
		b.Fatal("sentry SDK not enabled")
	}
}

// discardLogger silences errmon's own log.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newMonitor opens an errmon Monitor on a fresh SQLite file, with its panic
// log discarded. The writer runs only when flushed (FlushInterval 1h), so
// the database stays off the timed request path.
func newMonitor(b testing.TB, tune func(*errmon.Config)) *errmon.Monitor {
	b.Helper()
	return newMonitorOn(b, openSQLite(b), tune)
}

// newMonitorOn is newMonitor on a given database.
func newMonitorOn(b testing.TB, db *gorm.DB, tune func(*errmon.Config)) *errmon.Monitor {
	b.Helper()
	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard
	cfg.Logger = discardLogger()
	cfg.FlushInterval = time.Hour
	cfg.MaxPending = 1 << 20
	if tune != nil {
		tune(&cfg)
	}
	m, err := errmon.New(cfg)
	if err != nil {
		b.Fatalf("errmon.New: %v", err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// cpuClock measures the process's CPU time (user and system, all threads,
// the GC's included) over a benchmark loop. On a shared machine, other work
// stretches wall-clock time (ns/op) but not the CPU time the code itself
// uses, so cpu-ns/op is the steadier figure to compare middlewares by.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{start: processCPU()} }

// report adds cpu-ns/op; call it right after the loop (b.N is then the
// number of iterations).
func (c cpuClock) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
	}
}

// responseWriter is a reusable http.ResponseWriter that keeps nothing.
type responseWriter struct {
	h    http.Header
	code int
}

func (w *responseWriter) Header() http.Header         { return w.h }
func (w *responseWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *responseWriter) WriteString(s string) (int, error) {
	return len(s), nil
}
func (w *responseWriter) WriteHeader(code int) { w.code = code }

// variant is one middleware set-up.
type variant struct {
	name string
	mw   func(b *testing.B) []gin.HandlerFunc
}

var happyVariants = []variant{
	{"none", func(*testing.B) []gin.HandlerFunc { return nil }},
	{"gin", func(*testing.B) []gin.HandlerFunc {
		return []gin.HandlerFunc{gin.RecoveryWithWriter(io.Discard)}
	}},
	{"errmon", func(b *testing.B) []gin.HandlerFunc {
		return []gin.HandlerFunc{newMonitor(b, nil).Middleware()}
	}},
	{"sentry", func(b *testing.B) []gin.HandlerFunc {
		initSentry(b)
		return []gin.HandlerFunc{sentrygin.New(sentrygin.Options{})}
	}},
}

type payload struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Age   int    `json:"age"`
}

const smallJSON = `{"name":"Ada Lovelace","email":"ada@example.com","age":36}`

// BenchmarkHappy is a GET that returns 200: what every request pays.
func BenchmarkHappy(b *testing.B) {
	for _, v := range happyVariants {
		b.Run("mw="+v.name, func(b *testing.B) {
			e := gin.New()
			e.Use(v.mw(b)...)
			e.GET("/ok", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
			req := httptest.NewRequest(http.MethodGet, "/ok", nil)
			w := &responseWriter{h: http.Header{}}
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				e.ServeHTTP(w, req)
			}
			cpu.report(b)
			if w.code != http.StatusOK {
				b.Fatalf("status %d, want 200", w.code)
			}
		})
	}
}

// BenchmarkHappyPOST is a POST with a small JSON body that the handler
// binds: the body capture's cost when nothing fails.
func BenchmarkHappyPOST(b *testing.B) {
	for _, v := range happyVariants {
		b.Run("mw="+v.name, func(b *testing.B) {
			e := gin.New()
			e.Use(v.mw(b)...)
			e.POST("/users", func(c *gin.Context) {
				var p payload
				if err := c.ShouldBindJSON(&p); err != nil || p.Age != 36 {
					c.Status(http.StatusBadRequest)
					return
				}
				c.Status(http.StatusOK)
			})
			body := bytes.NewReader([]byte(smallJSON))
			req := httptest.NewRequest(http.MethodPost, "/users", nil)
			req.Header.Set("Content-Type", "application/json")
			req.ContentLength = int64(len(smallJSON))
			rc := io.NopCloser(body)
			w := &responseWriter{h: http.Header{}}
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				body.Reset([]byte(smallJSON))
				req.Body = rc
				w.code = 0
				e.ServeHTTP(w, req)
			}
			cpu.report(b)
			if w.code != http.StatusOK {
				b.Fatalf("status %d, want 200", w.code)
			}
		})
	}
}

// BenchmarkPanic is a request whose handler panics: gin's Recovery against
// errmon's middleware (which also fingerprints the panic and queues it; the
// database write happens later, off the request path, and is not timed).
// Sentry's usual set-up (sentrygin with Repanic under gin's Recovery) is
// shown for reference.
func BenchmarkPanic(b *testing.B) {
	variants := []variant{
		{"gin", func(*testing.B) []gin.HandlerFunc {
			return []gin.HandlerFunc{gin.RecoveryWithWriter(io.Discard)}
		}},
		{"errmon", func(b *testing.B) []gin.HandlerFunc {
			return []gin.HandlerFunc{newMonitor(b, nil).Middleware()}
		}},
		{"sentry+gin", func(b *testing.B) []gin.HandlerFunc {
			initSentry(b)
			return []gin.HandlerFunc{gin.RecoveryWithWriter(io.Discard), sentrygin.New(sentrygin.Options{Repanic: true})}
		}},
	}
	for _, v := range variants {
		b.Run("mw="+v.name, func(b *testing.B) {
			e := gin.New()
			e.Use(v.mw(b)...)
			e.GET("/boom/:id", func(c *gin.Context) { panic("something broke") })
			req := httptest.NewRequest(http.MethodGet, "/boom/42?q=1", nil)
			req.Header.Set("User-Agent", "bench")
			w := &responseWriter{h: http.Header{}}
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				w.code = 0
				e.ServeHTTP(w, req)
			}
			cpu.report(b)
			if w.code != http.StatusInternalServerError {
				b.Fatalf("status %d, want 500", w.code)
			}
		})
	}
}

// BenchmarkHappyUpload is a POST of a 1 MiB body that the handler reads to
// the end: errmon keeps its first Config.MaxBodyBytes (64 KiB) in a pooled
// buffer, so even a large body costs no allocation, only the copy of those
// 64 KiB.
func BenchmarkHappyUpload(b *testing.B) {
	upload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, v := range happyVariants {
		b.Run("mw="+v.name, func(b *testing.B) {
			e := gin.New()
			e.Use(v.mw(b)...)
			e.POST("/upload", func(c *gin.Context) {
				n, err := io.Copy(io.Discard, c.Request.Body)
				if err != nil || n != int64(len(upload)) {
					c.Status(http.StatusBadRequest)
					return
				}
				c.Status(http.StatusOK)
			})
			body := bytes.NewReader(upload)
			req := httptest.NewRequest(http.MethodPost, "/upload", nil)
			req.Header.Set("Content-Type", "application/octet-stream")
			req.ContentLength = int64(len(upload))
			// A bare Reader, as a server's request body is: without it,
			// io.Copy would skip the reading through bytes.Reader.WriteTo.
			rc := io.NopCloser(struct{ io.Reader }{body})
			w := &responseWriter{h: http.Header{}}
			b.SetBytes(int64(len(upload)))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				body.Reset(upload)
				req.Body = rc
				w.code = 0
				e.ServeHTTP(w, req)
			}
			cpu.report(b)
			if w.code != http.StatusOK {
				b.Fatalf("status %d, want 200", w.code)
			}
		})
	}
}
