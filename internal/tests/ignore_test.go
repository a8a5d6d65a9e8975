package tests

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// errNoise is the error the ignore tests tell errmon to leave out.
var errNoise = errors.New("noise")

// ignoreCase is one request through a monitor with ignore rules: what the
// handler does, and what is stored and counted.
type ignoreCase struct {
	name        string
	tweak       func(*errmon.Config)
	cancelled   bool // the request's context is done before the handler runs
	handler     ignoreHandler
	wantStored  int
	wantIgnored int64
	wantGone    int64
}

// ignoreHandler is a test handler that may call its monitor.
type ignoreHandler func(m *errmon.Monitor, c *gin.Context)

// withMonitor makes h a gin handler of m.
func (h ignoreHandler) withMonitor(m *errmon.Monitor) gin.HandlerFunc {
	return func(c *gin.Context) { h(m, c) }
}

// failWith attaches err with c.Error and answers status.
func failWith(status int, err error) ignoreHandler {
	return func(_ *errmon.Monitor, c *gin.Context) {
		_ = c.Error(err)
		c.AbortWithStatus(status)
	}
}

// runIgnoreCases serves each case's request on a fresh monitor (SQLite
// file) and checks the stored errors and the Stats counters.
func runIgnoreCases(t *testing.T, cases []ignoreCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, tc.tweak)
			r := tm.engine(false)
			r.GET("/x", tc.handler.withMonitor(tm.Monitor))
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tc.cancelled {
				ctx, cancel := context.WithCancel(req.Context())
				cancel()
				req = req.WithContext(ctx)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)

			recs := tm.records(t)
			if len(recs) != tc.wantStored {
				t.Errorf("%d errors stored, want %d: %+v", len(recs), tc.wantStored, recs)
			}
			s := tm.Stats()
			if s.Ignored != tc.wantIgnored || s.ClientGone != tc.wantGone {
				t.Errorf("Stats.Ignored = %d, ClientGone = %d; want %d, %d", s.Ignored, s.ClientGone, tc.wantIgnored, tc.wantGone)
			}
			if s.Recorded != int64(tc.wantStored) || s.Stored != int64(tc.wantStored) {
				t.Errorf("Stats.Recorded = %d, Stored = %d; want %d", s.Recorded, s.Stored, tc.wantStored)
			}
			if id := w.Header().Get("X-Errmon-Id"); tc.wantStored == 0 && id != "" {
				t.Errorf("X-Errmon-Id = %q, but nothing was stored", id)
			}
		})
	}
}

// TestIgnoreRules: IgnoreErrors (errors.Is, on every kind of error value),
// IgnoreStatus (c.Errors by final status only) and Ignore keep errors out
// of the database, counted in Stats.Ignored.
func TestIgnoreRules(t *testing.T) {
	ignoreNoise := func(c *errmon.Config) { c.IgnoreErrors = []error{errNoise} }
	ignore503 := func(c *errmon.Config) { c.IgnoreStatus = []int{503} }
	runIgnoreCases(t, []ignoreCase{
		{name: "IgnoreErrors c.Error wrapped", tweak: ignoreNoise,
			handler: failWith(500, fmt.Errorf("upstream: %w", errNoise)), wantIgnored: 1},
		{name: "IgnoreErrors c.Error other", tweak: ignoreNoise,
			handler: failWith(500, errors.New("real failure")), wantStored: 1},
		{name: "IgnoreErrors panic value", tweak: ignoreNoise,
			handler: func(*errmon.Monitor, *gin.Context) { panic(fmt.Errorf("job: %w", errNoise)) }, wantIgnored: 1},
		{name: "IgnoreErrors panic not an error", tweak: ignoreNoise,
			handler: func(*errmon.Monitor, *gin.Context) { panic("noise") }, wantStored: 1},
		{name: "IgnoreErrors Record", tweak: ignoreNoise,
			handler: func(m *errmon.Monitor, c *gin.Context) { m.Record(c, errNoise); c.Status(200) }, wantIgnored: 1},
		{name: "IgnoreErrors Record then c.Error counted once", tweak: ignoreNoise,
			handler: func(m *errmon.Monitor, c *gin.Context) { m.Record(c, errNoise); failWith(500, errNoise)(m, c) }, wantIgnored: 1},
		{name: "IgnoreErrors several", tweak: ignoreNoise,
			handler: func(m *errmon.Monitor, c *gin.Context) {
				_ = c.Error(errNoise)
				failWith(500, errors.New("kept"))(m, c)
			}, wantStored: 1, wantIgnored: 1},
		{name: "IgnoreStatus matching", tweak: ignore503,
			handler: func(m *errmon.Monitor, c *gin.Context) {
				_ = c.Error(errors.New("first"))
				failWith(503, errors.New("second"))(m, c)
			}, wantIgnored: 2},
		{name: "IgnoreStatus other status", tweak: ignore503,
			handler: failWith(500, errors.New("boom")), wantStored: 1},
		{name: "IgnoreStatus below RecordStatus not counted", tweak: func(c *errmon.Config) { c.IgnoreStatus = []int{404} },
			handler: failWith(404, errors.New("not found"))},
		{name: "IgnoreStatus does not apply to panics",
			tweak: func(c *errmon.Config) {
				ignore503(c)
				c.RecoveryHandler = func(c *gin.Context, _ any) { c.AbortWithStatus(503) }
			},
			handler: func(*errmon.Monitor, *gin.Context) { panic("overloaded") }, wantStored: 1},
		{name: "IgnoreStatus does not apply to Record", tweak: ignore503,
			handler: func(m *errmon.Monitor, c *gin.Context) { m.Record(c, errors.New("by hand")); c.Status(503) }, wantStored: 1},
		{name: "Ignore true",
			tweak: func(c *errmon.Config) {
				c.Ignore = func(o *errmon.Occurrence) bool { return o.Route == "/x" && o.Kind == errmon.KindError }
			},
			handler: failWith(500, errors.New("boom")), wantIgnored: 1},
		{name: "Ignore false",
			tweak:   func(c *errmon.Config) { c.Ignore = func(*errmon.Occurrence) bool { return false } },
			handler: failWith(500, errors.New("boom")), wantStored: 1},
		{name: "Ignore on a panic",
			tweak: func(c *errmon.Config) {
				c.Ignore = func(o *errmon.Occurrence) bool {
					return o.Kind == errmon.KindPanic && strings.Contains(o.Message, "flaky")
				}
			},
			handler: func(*errmon.Monitor, *gin.Context) { panic("flaky dependency") }, wantIgnored: 1},
	})
}

// TestClientGone: a cancellation while the request's context is done is
// counted in Stats.ClientGone and not stored, unless RecordClientGone; a
// cancellation of something else, while the request goes on, is stored.
func TestClientGone(t *testing.T) {
	recordGone := func(c *errmon.Config) { c.RecordClientGone = true }
	runIgnoreCases(t, []ignoreCase{
		{name: "c.Error Canceled, request cancelled", cancelled: true,
			handler: failWith(500, context.Canceled), wantGone: 1},
		{name: "c.Error wrapped DeadlineExceeded, request cancelled", cancelled: true,
			handler: failWith(500, fmt.Errorf("query: %w", context.DeadlineExceeded)), wantGone: 1},
		{name: "panic Canceled, request cancelled", cancelled: true,
			handler: func(*errmon.Monitor, *gin.Context) { panic(fmt.Errorf("read: %w", context.Canceled)) }, wantGone: 1},
		{name: "Record Canceled, request cancelled", cancelled: true,
			handler: func(m *errmon.Monitor, c *gin.Context) { m.Record(c, context.Canceled) }, wantGone: 1},
		{name: "RecordClientGone", cancelled: true, tweak: recordGone,
			handler: failWith(500, context.Canceled), wantStored: 1},
		{name: "Canceled, request not done",
			handler: failWith(500, context.Canceled), wantStored: 1},
		{name: "other error, request cancelled", cancelled: true,
			handler: failWith(500, errors.New("boom")), wantStored: 1},
		{name: "client gone counted before IgnoreErrors", cancelled: true,
			tweak:   func(c *errmon.Config) { c.IgnoreErrors = []error{context.Canceled} },
			handler: failWith(500, context.Canceled), wantGone: 1},
		{name: "IgnoreStatus counted before client gone", cancelled: true,
			tweak:   func(c *errmon.Config) { c.IgnoreStatus = []int{503} },
			handler: failWith(503, context.Canceled), wantIgnored: 1},
		{name: "IgnoreErrors still applies with RecordClientGone", cancelled: true,
			tweak: func(c *errmon.Config) {
				c.RecordClientGone = true
				c.IgnoreErrors = []error{context.Canceled}
			},
			handler: failWith(500, context.Canceled), wantIgnored: 1},
	})
}

// TestIgnoreGoroutinePanic: IgnoreErrors applies to a goroutine's panic.
func TestIgnoreGoroutinePanic(t *testing.T) {
	tm := sqliteMonitor(t, func(c *errmon.Config) { c.IgnoreErrors = []error{errNoise} })
	for _, v := range []any{fmt.Errorf("consumer: %w", errNoise), "kept"} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer tm.Recover()
			panic(v)
		}()
		<-done
	}
	recs := tm.records(t)
	if len(recs) != 1 || recs[0].Message != "kept" {
		t.Errorf("stored %+v, want only the panic \"kept\"", recs)
	}
	if s := tm.Stats(); s.Ignored != 1 || s.Recorded != 1 {
		t.Errorf("Stats.Ignored = %d, Recorded = %d; want 1, 1", s.Ignored, s.Recorded)
	}
}

// TestIgnoreSeesTheBuiltOccurrence: Ignore receives the occurrence complete
// (kind, value, masked message, route, fingerprint, request context).
func TestIgnoreSeesTheBuiltOccurrence(t *testing.T) {
	var got *errmon.Occurrence
	tm := sqliteMonitor(t, func(c *errmon.Config) {
		c.Ignore = func(o *errmon.Occurrence) bool { got = o; return true }
	})
	r := tm.engine(false)
	r.GET("/orders/:id", failWith(500, errors.New("password=hunter2 refused")).withMonitor(tm.Monitor))
	serve(r, http.MethodGet, "/orders/7?page=2", nil, nil)
	if got == nil {
		t.Fatal("Ignore was not called")
	}
	if got.Kind != errmon.KindError || got.Route != "/orders/:id" || got.Path != "/orders/7" || len(got.Hash) != 64 ||
		got.RequestData == "" || strings.Contains(got.Message, "hunter2") || got.Value == nil {
		t.Errorf("Ignore got an incomplete occurrence: %+v", got)
	}
	if n := len(tm.records(t)); n != 0 {
		t.Errorf("%d errors stored, want 0", n)
	}
}

// TestIgnorePanicking: an Ignore func that panics does not break the
// request; the occurrence is recorded, and the panic is logged once.
func TestIgnorePanicking(t *testing.T) {
	var calls atomic.Int32
	tm := sqliteMonitor(t, func(c *errmon.Config) {
		c.Ignore = func(*errmon.Occurrence) bool { calls.Add(1); panic("ignore hook exploded") }
	})
	r := tm.engine(false)
	r.GET("/err", failWith(500, errors.New("boom")).withMonitor(tm.Monitor))
	r.GET("/panic", func(*gin.Context) { panic("kaboom") })
	for _, path := range []string{"/err", "/panic", "/err"} {
		if w := serve(r, http.MethodGet, path, nil, nil); w.Code != 500 {
			t.Errorf("GET %s = %d, want 500", path, w.Code)
		}
	}
	if calls.Load() != 3 {
		t.Errorf("Ignore called %d times, want 3", calls.Load())
	}
	recs := tm.records(t)
	if len(recs) != 2 {
		t.Errorf("%d errors stored, want 2 (boom, kaboom)", len(recs))
	}
	if s := tm.Stats(); s.Recorded != 3 || s.Ignored != 0 {
		t.Errorf("Stats.Recorded = %d, Ignored = %d; want 3, 0", s.Recorded, s.Ignored)
	}
	if n := strings.Count(tm.logs.String(), "Config.Ignore panicked"); n != 1 {
		t.Errorf("the Ignore panic was logged %d times, want once:\n%s", n, tm.logs.String())
	}
}

// TestIgnoreExpvar: Ignored and ClientGone are published with the other
// counters.
func TestIgnoreExpvar(t *testing.T) {
	tm := sqliteMonitor(t, func(c *errmon.Config) { c.IgnoreErrors = []error{errNoise} })
	_, before := expvarRead(t)
	tm.Record(nil, errNoise)
	r := tm.engine(false)
	r.GET("/x", failWith(500, context.Canceled).withMonitor(tm.Monitor))
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	ctx, cancel := context.WithCancel(req.Context())
	cancel()
	r.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx))
	_, after := expvarRead(t)
	if after.Ignored-before.Ignored != 1 || after.ClientGone-before.ClientGone != 1 {
		t.Errorf("expvar Ignored %d→%d, ClientGone %d→%d; want one more of each",
			before.Ignored, after.Ignored, before.ClientGone, after.ClientGone)
	}
}

// TestIgnoreHappyPathAllocs: ignore rules add no allocation to a request
// that does not fail. Each count is the least of a few runs: the monitor's
// background goroutines (and the race detector) allocate now and then.
func TestIgnoreHappyPathAllocs(t *testing.T) {
	withGinMode(t, gin.ReleaseMode)
	allocs := func(tweak func(*errmon.Config)) float64 {
		tm := sqliteMonitor(t, tweak)
		// Each measured as the default monitor: a monitor that is not the
		// default leaves itself in the gin.Context, which both would pay.
		prev := errmon.Default()
		errmon.SetDefault(tm.Monitor)
		defer errmon.SetDefault(prev)
		r := tm.engine(false)
		r.GET("/ok", func(c *gin.Context) { c.Status(200) })
		req := httptest.NewRequest(http.MethodGet, "/ok", nil)
		w := httptest.NewRecorder()
		return leastAllocs(100, func() { r.ServeHTTP(w, req) })
	}
	plain := allocs(nil)
	ruled := allocs(func(c *errmon.Config) {
		c.IgnoreErrors = []error{errNoise, context.Canceled}
		c.IgnoreStatus = []int{502, 503}
		c.Ignore = func(*errmon.Occurrence) bool { return true }
	})
	if ruled > plain {
		t.Errorf("a request that does not fail allocates %v times with ignore rules, %v without", ruled, plain)
	}
}
