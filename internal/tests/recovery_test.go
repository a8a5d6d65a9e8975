package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

//go:noinline
func panicNil() { panic(nil) }

//go:noinline
func panicInDefer() {
	defer func() { panic("from defer") }()
}

//go:noinline
func panicWithError() { panic(errors.New("an error value")) }

// fileOfFunc returns the base name and a colon of the file that declares
// the function fn ("monitor_test.go:"), as a stack trace shows it.
func fileOfFunc(fn any) string {
	file, _ := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).FileLine(reflect.ValueOf(fn).Pointer())
	return filepath.Base(file) + ":"
}

// ---- drop-in for gin's recovery ----

func TestRecoveryOutputLog(t *testing.T) {
	const secretQuery = "query-secret-111"
	headers := map[string]string{
		"Authorization":       "Bearer auth-secret-222",
		"Proxy-Authorization": "Basic proxy-secret-333",
		"Cookie":              "sid=cookie-secret-444; theme=dark-cookie-555",
		"X-Api-Key":           "apikey-secret-666",
		"X-My-Secret":         "header-secret-777",
		"X-Plain":             "visible-header-888",
	}
	secrets := []string{secretQuery, "auth-secret-222", "proxy-secret-333", "cookie-secret-444",
		"dark-cookie-555", "apikey-secret-666", "header-secret-777"}
	target := "/p?password=" + secretQuery + "&q=visible-query"
	for _, tc := range []struct {
		mode     string
		wantDump bool
	}{
		{gin.DebugMode, true},
		{gin.ReleaseMode, false},
		{gin.TestMode, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			withGinMode(t, tc.mode)
			tm := sqliteMonitor(t, nil)
			r := tm.engine(false)
			r.GET("/p", func(c *gin.Context) { panicWithString() })
			if w := serve(r, "GET", target, nil, headers); w.Code != 500 {
				t.Fatalf("status %d, want 500", w.Code)
			}
			log := tm.out.String()
			// The stack shows the panic site's file and the handler's.
			for _, want := range []string{"panic recovered", "boom-value", pkgPath + "panicWithString",
				fileOfFunc(panicWithString), "recovery_test.go:"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			// gin's own recovery, for the same request: same shape.
			var ginOut bytes.Buffer
			g := gin.New()
			g.Use(gin.RecoveryWithWriter(&ginOut))
			g.GET("/p", func(c *gin.Context) { panicWithString() })
			serve(g, "GET", target, nil, headers)
			if got := strings.Contains(ginOut.String(), "GET /p?"); got != tc.wantDump {
				t.Fatalf("gin dumps the request: %v, the test expects %v", got, tc.wantDump)
			}
			hasDump := strings.Contains(log, "GET /p?") && strings.Contains(log, "X-Plain: visible-header-888")
			if hasDump != tc.wantDump {
				t.Errorf("request dump in log: %v, want %v:\n%s", hasDump, tc.wantDump, log)
			}
			if tc.wantDump {
				for _, want := range []string{"q=visible-query", "Cookie: sid=", "theme="} {
					if !strings.Contains(log, want) {
						t.Errorf("dump lacks %q:\n%s", want, log)
					}
				}
			}
			for _, s := range secrets {
				if strings.Contains(log, s) {
					t.Errorf("log leaks %q:\n%s", s, log)
				}
			}
		})
	}
}

// TestRecoveryOutputDefault: a nil Output means gin's default error
// writer, as gin.Recovery writes; io.Discard silences the panic log. Either
// way the panic is recorded.
func TestRecoveryOutputDefault(t *testing.T) {
	withGinMode(t, gin.DebugMode)
	for _, tc := range []struct {
		name   string
		output io.Writer
		logged bool
	}{
		{"nil is gin.DefaultErrorWriter", nil, true},
		{"io.Discard silences", io.Discard, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var defaultOut syncBuffer
			prev := gin.DefaultErrorWriter
			gin.DefaultErrorWriter = &defaultOut
			t.Cleanup(func() { gin.DefaultErrorWriter = prev })

			tm := sqliteMonitor(t, func(c *errmon.Config) { c.Output = tc.output })
			r := tm.engine(false)
			r.GET("/p", func(c *gin.Context) { panicWithString() })
			r.GET("/pipe", func(c *gin.Context) {
				panic(&net.OpError{Op: "write", Err: &os.SyscallError{Syscall: "write", Err: syscall.EPIPE}})
			})
			if w := serve(r, "GET", "/p", nil, nil); w.Code != 500 {
				t.Fatalf("status %d, want 500", w.Code)
			}
			serve(r, "GET", "/pipe", nil, nil)
			got := defaultOut.String()
			if logged := strings.Contains(got, "panic recovered") && strings.Contains(got, "broken pipe"); logged != tc.logged {
				t.Errorf("gin.DefaultErrorWriter got the panic log: %v, want %v:\n%s", logged, tc.logged, got)
			}
			if !tc.logged && got != "" {
				t.Errorf("silenced, but logged:\n%s", got)
			}
			if recs := tm.records(t); len(recs) != 1 {
				t.Errorf("%d rows, want 1 (the panic is still recorded)", len(recs))
			}
		})
	}
}

func TestRecoveryStatus(t *testing.T) {
	withGinMode(t, gin.TestMode)
	teapot := func(c *gin.Context, rec any) {
		c.AbortWithStatusJSON(http.StatusTeapot, gin.H{"panic": fmt.Sprint(rec)})
	}
	for _, tc := range []struct {
		name     string
		handler  gin.HandlerFunc
		recovery gin.RecoveryFunc
		want     int
		wantBody string
	}{
		{"plain panic", func(c *gin.Context) { panicWithString() }, nil, 500, ""},
		{"abort 400 then panic", func(c *gin.Context) { c.AbortWithStatus(400); panicWithString() }, nil, 400, ""},
		{"written 201 then panic", func(c *gin.Context) { c.String(201, "half"); panicWithString() }, nil, 201, "half"},
		{"custom handler", func(c *gin.Context) { panicWithString() }, teapot, 418, `{"panic":"boom-value"}`},
		{"custom handler, runtime error", func(c *gin.Context) { panicIndex(7) }, teapot, 418, "index out of range [7]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, func(c *errmon.Config) { c.RecoveryHandler = tc.recovery })
			r := tm.engine(false)
			r.GET("/p", tc.handler)
			w := serve(r, "GET", "/p", nil, nil)

			g := gin.New()
			if tc.recovery != nil {
				g.Use(gin.CustomRecoveryWithWriter(io.Discard, tc.recovery))
			} else {
				g.Use(gin.RecoveryWithWriter(io.Discard))
			}
			g.GET("/p", tc.handler)
			gw := serve(g, "GET", "/p", nil, nil)

			if w.Code != tc.want || gw.Code != tc.want {
				t.Errorf("status errmon %d, gin %d, want %d", w.Code, gw.Code, tc.want)
			}
			if !strings.Contains(w.Body.String(), tc.wantBody) || w.Body.String() != gw.Body.String() {
				t.Errorf("body errmon %q, gin %q, want it to contain %q", w.Body, gw.Body, tc.wantBody)
			}
			if recs := tm.records(t); len(recs) != 1 || recs[0].Count != 1 {
				t.Errorf("rows %+v, want one with count 1", recs)
			}
		})
	}
}

func TestRecoveryHandlerThatPanics(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, func(c *errmon.Config) {
		c.RecoveryHandler = func(c *gin.Context, rec any) { panic("handler bug password=rh-secret") }
	})
	r := tm.engine(false)
	r.GET("/p", func(c *gin.Context) { panicWithString() })
	if w := serve(r, "GET", "/p", nil, nil); w.Code != 500 {
		t.Errorf("status %d, want 500", w.Code)
	}
	if !strings.Contains(tm.logs.String(), "RecoveryHandler panicked") || strings.Contains(tm.logs.String(), "rh-secret") {
		t.Errorf("log:\n%s", tm.logs)
	}
	if recs := tm.records(t); len(recs) != 1 || recs[0].Message != "boom-value" {
		t.Errorf("rows %+v, want the original panic", recs)
	}
}

type panickingWriter struct{}

func (panickingWriter) Write([]byte) (int, error) { panic("writer bug") }

func TestRecoveryOutputThatPanics(t *testing.T) {
	withGinMode(t, gin.DebugMode)
	tm := sqliteMonitor(t, func(c *errmon.Config) { c.Output = panickingWriter{} })
	r := tm.engine(false)
	r.GET("/p", func(c *gin.Context) { panicWithString() })
	r.GET("/pipe", func(c *gin.Context) {
		panic(&net.OpError{Op: "write", Err: &os.SyscallError{Syscall: "write", Err: syscall.EPIPE}})
	})
	if w := serve(r, "GET", "/p", nil, nil); w.Code != 500 {
		t.Errorf("status %d, want 500", w.Code)
	}
	serve(r, "GET", "/pipe", nil, nil)
	if !strings.Contains(tm.logs.String(), "Config.Output panicked") {
		t.Errorf("log:\n%s", tm.logs)
	}
	if recs := tm.records(t); len(recs) != 1 {
		t.Errorf("rows %+v, want the panic recorded", recs)
	}
}

func TestRecoveryBrokenConnection(t *testing.T) {
	withGinMode(t, gin.TestMode)
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "write", Net: "tcp", Err: &os.SyscallError{Syscall: "write", Err: errno}}
	}
	for _, tc := range []struct {
		name  string
		err   error
		track bool // handler wrapped in Track as well
		pre   func(c *gin.Context)
	}{
		{"EPIPE", opErr(syscall.EPIPE), false, nil},
		{"ECONNRESET", opErr(syscall.ECONNRESET), false, nil},
		{"wrapped EPIPE", fmt.Errorf("writing the answer: %w", opErr(syscall.EPIPE)), false, nil},
		{"EPIPE in Track", opErr(syscall.EPIPE), true, nil},
		{"EPIPE after status 500, in Track", opErr(syscall.EPIPE), true, func(c *gin.Context) { c.Status(500) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, nil)
			var errs []*gin.Error
			r := gin.New()
			r.Use(func(c *gin.Context) { c.Next(); errs = c.Errors }, tm.Middleware())
			h := func(c *gin.Context) {
				if tc.pre != nil {
					tc.pre(c)
				}
				panic(tc.err)
			}
			if tc.track {
				h = tm.Track(h)
			}
			r.GET("/p", h)
			w := serve(r, "GET", "/p", nil, nil)
			if w.Code == 500 && tc.pre == nil {
				t.Errorf("a broken connection got a 500")
			}
			if len(errs) != 1 || !errors.Is(errs[0], tc.err) || errs[0].Meta != nil {
				t.Errorf("c.Errors = %v, want the connection error, as gin does", errs)
			} else if got := errs[0].JSON(); fmt.Sprint(got) != fmt.Sprint(gin.H{"error": tc.err.Error()}) {
				t.Errorf("c.Errors[0].JSON() = %v, want gin's", got)
			}
			if !strings.Contains(tm.out.String(), "broken pipe") && !strings.Contains(tm.out.String(), "connection reset") {
				t.Errorf("broken connection not logged:\n%s", tm.out)
			}
			if strings.Contains(tm.out.String(), "panic recovered") {
				t.Errorf("broken connection logged as a panic:\n%s", tm.out)
			}
			if recs := tm.records(t); len(recs) != 0 {
				t.Errorf("a broken connection was recorded: %+v", recs)
			}
			if s := tm.Stats(); s.Recorded != 0 {
				t.Errorf("Stats.Recorded = %d, want 0", s.Recorded)
			}
		})
	}
}

func TestRecoveryAbortHandler(t *testing.T) {
	withGinMode(t, gin.TestMode)
	for _, tc := range []struct {
		name  string
		value any
		track bool
	}{
		{"ErrAbortHandler", http.ErrAbortHandler, false},
		{"wrapped ErrAbortHandler", fmt.Errorf("stop: %w", http.ErrAbortHandler), false},
		{"ErrAbortHandler in Track", http.ErrAbortHandler, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, nil)
			r := tm.engine(false)
			h := func(c *gin.Context) { panic(tc.value) }
			if tc.track {
				h = tm.Track(h)
			}
			r.GET("/p", h)
			got := func() (rec any) {
				defer func() { rec = recover() }()
				serve(r, "GET", "/p", nil, nil)
				return nil
			}()
			if got != tc.value {
				t.Errorf("re-panicked with %v, want %v", got, tc.value)
			}
			if recs := tm.records(t); len(recs) != 0 {
				t.Errorf("ErrAbortHandler was recorded: %+v", recs)
			}
		})
	}
}

// ---- what is recorded ----

func TestPanicStackCapturedAtPanicSite(t *testing.T) {
	withGinMode(t, gin.TestMode)
	for _, tc := range []struct {
		name     string
		handler  gin.HandlerFunc
		top      string
		excName  string
		inMsg    string
		viaTrack bool
	}{
		{"panic(string)", func(c *gin.Context) { panicWithString() }, "panicWithString", "string", "boom-value", false},
		{"panic(error)", func(c *gin.Context) { panicWithError() }, "panicWithError", "*errors.errorString", "an error value", false},
		{"index out of range", func(c *gin.Context) { panicIndex(5) }, "panicIndex", "runtime.boundsError", "index out of range [5] with length 3", false},
		{"nil map", func(c *gin.Context) { panicNilMap() }, "panicNilMap", "runtime.plainError", "assignment to entry in nil map", false},
		{"nil pointer", func(c *gin.Context) { panicNilPointer(nil) }, "panicNilPointer", "runtime.errorString", "nil pointer dereference", false},
		{"index out of range in Track", func(c *gin.Context) { panicIndex(5) }, "panicIndex", "runtime.boundsError", "index out of range", true},
		{"panic(pkg/errors error): the error's own stack", func(c *gin.Context) { panic(newPkgError()) }, "newPkgError", "*errors.fundamental", "pkg error with its own stack", false},
		{"panic(nil)", func(c *gin.Context) { panicNil() }, "panicNil", "*runtime.PanicNilError", "panic called with nil argument", false},
		{"panic in a deferred call", func(c *gin.Context) { panicInDefer() }, "panicInDefer.func1", "string", "from defer", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, nil)
			r := tm.engine(false)
			h := tc.handler
			if tc.viaTrack {
				h = tm.Track(h)
			}
			r.GET("/p/:id", h)
			serve(r, "GET", "/p/1", nil, nil)
			recs := tm.records(t)
			if len(recs) != 1 {
				t.Fatalf("%d rows, want 1", len(recs))
			}
			rec := recs[0]
			if got := topFunction(rec.Traceback); got != pkgPath+tc.top {
				t.Errorf("top frame %q, want %q; traceback:\n%s", got, pkgPath+tc.top, rec.Traceback)
			}
			if rec.ExceptionName != tc.excName {
				t.Errorf("ExceptionName %q, want %q", rec.ExceptionName, tc.excName)
			}
			if !strings.Contains(rec.Message, tc.inMsg) {
				t.Errorf("Message %q lacks %q", rec.Message, tc.inMsg)
			}
			if rec.Method != "GET" || rec.Path != "/p/1" || rec.Route != "/p/:id" || rec.Host != "example.com" || rec.Count != 1 {
				t.Errorf("row %+v", rec)
			}
			if rec.CreatedOn.IsZero() || rec.LastSeen.Before(rec.CreatedOn) {
				t.Errorf("CreatedOn %v LastSeen %v", rec.CreatedOn, rec.LastSeen)
			}
		})
	}
}

func TestContextErrorsRecordedByStatus(t *testing.T) {
	withGinMode(t, gin.TestMode)
	for _, tc := range []struct {
		name         string
		recordStatus int
		status       int
		nErrors      int
		wantRows     int
	}{
		{"500 records", 0, 500, 1, 1},
		{"503 records", 0, 503, 1, 1},
		{"two errors at 500", 0, 500, 2, 2},
		{"404 does not", 0, 404, 1, 0},
		{"400 does not", 0, 400, 1, 0},
		{"200 does not", 0, 200, 1, 0},
		{"RecordStatus 400 widens to 400", 400, 400, 1, 1},
		{"RecordStatus 400 widens to 404", 400, 404, 1, 1},
		{"RecordStatus 400, 399 does not", 400, 399, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, func(c *errmon.Config) { c.RecordStatus = tc.recordStatus })
			r := tm.engine(false)
			r.GET("/e", func(c *gin.Context) {
				for i := 0; i < tc.nErrors; i++ {
					_ = c.Error(fmt.Errorf("failure kind %c", 'a'+i))
				}
				c.Status(tc.status)
			})
			if w := serve(r, "GET", "/e", nil, nil); w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			recs := tm.records(t)
			if len(recs) != tc.wantRows {
				t.Fatalf("%d rows, want %d: %+v", len(recs), tc.wantRows, recs)
			}
			for _, rec := range recs {
				if rec.ExceptionName != "*errors.errorString" || !strings.HasPrefix(rec.Message, "failure kind") || rec.Route != "/e" {
					t.Errorf("row %+v", rec)
				}
			}
		})
	}
}

//go:noinline
func recordHere(m *errmon.Monitor, c *gin.Context, err error) { m.Record(c, err) }

//go:noinline
func recordDefaultHere(c *gin.Context, err error) { errmon.Record(c, err) }

func TestRecordByHand(t *testing.T) {
	withGinMode(t, gin.TestMode)
	t.Run("in a request", func(t *testing.T) {
		tm := sqliteMonitor(t, nil)
		r := tm.engine(true) // no middleware needed
		r.POST("/orders/:id", func(c *gin.Context) {
			recordHere(tm.Monitor, c, errors.New("order 12 could not be charged"))
			c.Status(202)
		})
		if w := serve(r, "POST", "/orders/12?x=1", nil, nil); w.Code != 202 {
			t.Fatalf("status %d", w.Code)
		}
		recs := tm.records(t)
		if len(recs) != 1 {
			t.Fatalf("%d rows", len(recs))
		}
		rec := recs[0]
		if rec.Method != "POST" || rec.Path != "/orders/12" || rec.Route != "/orders/:id" || rec.Message != "order 12 could not be charged" {
			t.Errorf("row %+v", rec)
		}
		if got := topFunction(rec.Traceback); got != pkgPath+"recordHere" {
			t.Errorf("top frame %q, want the caller of Record; traceback:\n%s", got, rec.Traceback)
		}
		if !strings.Contains(rec.RequestData, `"x":"1"`) {
			t.Errorf("request data %s", rec.RequestData)
		}
	})
	t.Run("without a request", func(t *testing.T) {
		tm := sqliteMonitor(t, nil)
		recordHere(tm.Monitor, nil, errors.New("cron job 7 failed"))
		recordHere(tm.Monitor, nil, errors.New("cron job 8 failed"))
		tm.Record(nil, nil) // nothing
		recs := tm.records(t)
		if len(recs) != 1 || recs[0].Count != 2 {
			t.Fatalf("rows %+v, want one with count 2", recs)
		}
		rec := recs[0]
		if rec.Method != "" || rec.Path != "" || rec.RequestData != "" {
			t.Errorf("row without request has request fields: %+v", rec)
		}
		if got := topFunction(rec.Traceback); got != pkgPath+"recordHere" {
			t.Errorf("top frame %q; traceback:\n%s", got, rec.Traceback)
		}
	})
	t.Run("gin context without request", func(t *testing.T) {
		tm := sqliteMonitor(t, nil)
		c := &gin.Context{}
		recordHere(tm.Monitor, c, errors.New("no request"))
		if recs := tm.records(t); len(recs) != 1 {
			t.Fatalf("rows %+v", recs)
		}
	})
	t.Run("request without URL", func(t *testing.T) {
		tm := sqliteMonitor(t, nil)
		recordHere(tm.Monitor, &gin.Context{Request: &http.Request{Method: "GET"}}, errors.New("odd context"))
		if recs := tm.records(t); len(recs) != 1 || recs[0].Method != "GET" {
			t.Fatalf("rows %+v", recs)
		}
	})
	t.Run("Record and c.Error of the same error count once", func(t *testing.T) {
		tm := sqliteMonitor(t, nil)
		r := tm.engine(false)
		type uncomparable struct {
			error
			parts []string
		}
		r.GET("/both", func(c *gin.Context) {
			err := errors.New("charged twice?")
			tm.Record(c, err)
			_ = c.AbortWithError(500, err)
		})
		r.GET("/other", func(c *gin.Context) {
			tm.Record(c, uncomparable{errors.New("first"), []string{"a"}})
			_ = c.AbortWithError(500, uncomparable{errors.New("second"), []string{"b"}})
		})
		serve(r, "GET", "/both", nil, nil)
		serve(r, "GET", "/other", nil, nil)
		recs := tm.records(t)
		if len(recs) != 3 {
			t.Fatalf("rows %+v, want 3", recs)
		}
		for _, rec := range recs {
			if rec.Count != 1 {
				t.Errorf("%s %q counted %d times", rec.Path, rec.Message, rec.Count)
			}
		}
	})
	t.Run("nil monitor", func(t *testing.T) {
		var m *errmon.Monitor
		m.Record(nil, errors.New("x")) // must not panic
	})
}

func TestTrackExactlyOnce(t *testing.T) {
	withGinMode(t, gin.TestMode)
	handlers := []struct {
		name   string
		h      gin.HandlerFunc
		status int
	}{
		{"panic", func(c *gin.Context) { panicWithString() }, 500},
		{"c.Error with 500", func(c *gin.Context) { _ = c.Error(errors.New("tracked failure")); c.Status(500) }, 500},
		{"c.Error then AbortWithError 503", func(c *gin.Context) {
			_ = c.AbortWithError(503, errors.New("tracked unavailable"))
		}, 503},
	}
	for _, h := range handlers {
		for _, withMiddleware := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/middleware=%v", h.name, withMiddleware), func(t *testing.T) {
				tm := sqliteMonitor(t, nil)
				r := tm.engine(!withMiddleware)
				r.GET("/t", tm.Track(h.h))
				const n = 3
				for i := 0; i < n; i++ {
					if w := serve(r, "GET", "/t", nil, nil); w.Code != h.status {
						t.Fatalf("status %d, want %d", w.Code, h.status)
					}
				}
				recs := tm.records(t)
				if len(recs) != 1 || recs[0].Count != n {
					t.Fatalf("rows %+v, want one row with count %d", recs, n)
				}
				if s := tm.Stats(); s.Recorded != n {
					t.Errorf("Stats.Recorded %d, want %d", s.Recorded, n)
				}
			})
		}
	}
	t.Run("error before Track, status set after", func(t *testing.T) {
		// An error attached by a handler before the tracked one is recorded
		// by Middleware, once, with the final status.
		tm := sqliteMonitor(t, nil)
		r := tm.engine(false)
		r.GET("/t", func(c *gin.Context) { _ = c.Error(errors.New("early")); c.Next() },
			tm.Track(func(c *gin.Context) { _ = c.Error(errors.New("tracked")); c.Status(500) }))
		serve(r, "GET", "/t", nil, nil)
		recs := tm.records(t)
		if len(recs) != 2 || recs[0].Count != 1 || recs[1].Count != 1 {
			t.Fatalf("rows %+v, want two rows with count 1", recs)
		}
	})
}

func TestPackageLevelDefaultMonitor(t *testing.T) {
	withGinMode(t, gin.TestMode)
	t.Cleanup(func() { errmon.SetDefault(nil) })
	tdb := openSQLite(t)
	out := &syncBuffer{}
	cfg := errmon.DefaultConfig()
	cfg.DB = tdb.DB
	cfg.Output = out
	cfg.FlushInterval = time.Hour
	mw := errmon.Middleware(cfg)
	m := errmon.Default()
	if m == nil {
		t.Fatal("Middleware did not set the default monitor")
	}
	tm := &testMonitor{Monitor: m, db: tdb.DB, out: out}
	t.Cleanup(func() { m.Close() })

	r := gin.New()
	r.Use(mw)
	r.GET("/panic", func(c *gin.Context) { panicWithString() })
	r.GET("/tracked", errmon.Track(func(c *gin.Context) { _ = c.Error(errors.New("tracked")); c.Status(500) }))
	r.GET("/record", func(c *gin.Context) { recordDefaultHere(c, errors.New("by hand")); c.Status(200) })
	for _, p := range []string{"/panic", "/tracked", "/record"} {
		serve(r, "GET", p, nil, nil)
	}
	recs := tm.records(t)
	if len(recs) != 3 {
		t.Fatalf("rows %+v, want 3", recs)
	}
	for _, rec := range recs {
		if rec.Count != 1 {
			t.Errorf("row %s %q count %d, want 1", rec.Path, rec.Message, rec.Count)
		}
		if rec.Path == "/record" && topFunction(rec.Traceback) != pkgPath+"recordDefaultHere" {
			t.Errorf("package Record traceback starts at %q", topFunction(rec.Traceback))
		}
	}

	errmon.SetDefault(nil)
	// Without a default monitor, Track runs the handler as it is and Record
	// does nothing.
	ran := false
	bare := gin.New()
	bare.GET("/x", errmon.Track(func(c *gin.Context) { ran = true; errmon.Record(c, errors.New("lost")) }))
	serve(bare, "GET", "/x", nil, nil)
	if !ran {
		t.Error("Track without a default monitor did not run the handler")
	}
	if recs := tm.records(t); len(recs) != 3 {
		t.Errorf("rows %d after SetDefault(nil), want 3", len(recs))
	}

	t.Run("invalid config panics", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil {
				t.Error("Middleware with no DB did not panic")
			} else if !strings.Contains(fmt.Sprint(r), "Config.DB") {
				t.Errorf("panic %v does not name Config.DB", r)
			}
		}()
		errmon.Middleware(errmon.Config{})
	})
}
