package tests

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	pkgerrors "github.com/pkg/errors"
)

// errOrderMissing is the error the errmon.Error tests attach.
var errOrderMissing = errors.New("order missing")

// errLine is the line of the errmon.Error call in loadOrder.
var errLine int

// loadOrder is a handler's helper that attaches errOrderMissing with
// errmon.Error: the function the stored traceback must start with.
//
//go:noinline
func loadOrder(c *gin.Context) *gin.Error {
	_, _, line, _ := runtime.Caller(0)
	errLine = line + 2
	return errmon.Error(c, errOrderMissing)
}

// otherLoad attaches the same error from another function.
//
//go:noinline
func otherLoad(c *gin.Context) *gin.Error { return errmon.Error(c, errOrderMissing) }

// attachChecked is a handler that attaches with errmon.Error through
// loadOrder, checks that c.Errors holds what c.Error would have held and
// answers 500; a mismatch is reported as the response body.
func attachChecked(c *gin.Context) {
	ge := loadOrder(c)
	if len(c.Errors) != 1 || c.Errors[0] != ge || ge.Err != errOrderMissing ||
		ge.Type != gin.ErrorTypePrivate || ge.Meta != nil || c.Errors.Last() != ge || !errors.Is(ge, errOrderMissing) {
		c.String(http.StatusInternalServerError, "c.Errors changed: %#v", c.Errors)
		return
	}
	c.Status(http.StatusInternalServerError)
}

// wantCallSite checks that tb starts with loadOrder at the line of its
// errmon.Error call, followed by the handler that called loadOrder.
func wantCallSite(t *testing.T, tb, culprit string) {
	t.Helper()
	lines := strings.Split(tb, "\n")
	if len(lines) < 4 || lines[0] != pkgPath+"loadOrder" {
		t.Fatalf("traceback does not start with loadOrder:\n%s", tb)
	}
	if want := fmt.Sprintf("cerror_test.go:%d", errLine); !strings.HasSuffix(lines[1], want) {
		t.Errorf("first frame at %q, want …%s", lines[1], want)
	}
	if lines[2] != pkgPath+"attachChecked" {
		t.Errorf("second frame %q, want the handler attachChecked:\n%s", lines[2], tb)
	}
	if culprit != pkgPath+"loadOrder" {
		t.Errorf("culprit %q, want loadOrder", culprit)
	}
}

// TestErrmonErrorStoresCallSite: an error attached with errmon.Error and
// recorded by the monitor's middleware is stored with the stack of that
// call (newest first: the calling function and its file:line, then the
// handler), its culprit the calling function; c.Errors holds what c.Error
// would have held, seen from the handler and from a middleware after it.
func TestErrmonErrorStoresCallSite(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		withGinMode(t, gin.TestMode)
		tm := newTestMonitor(t, tdb.DB, nil)
		r := tm.engine(false)
		var after []*gin.Error
		r.Use(func(c *gin.Context) { c.Next(); after = append(after, c.Errors...) })
		r.GET("/orders/:id", attachChecked)
		if w := serve(r, "GET", "/orders/7", nil, nil); w.Body.Len() > 0 {
			t.Fatal(w.Body.String())
		}
		if len(after) != 1 || after[0].Err != errOrderMissing {
			t.Errorf("c.Errors after the handler: %v", after)
		}
		recs := tm.records(t)
		if len(recs) != 1 {
			t.Fatalf("%d records, want 1", len(recs))
		}
		if recs[0].Message != "order missing" || recs[0].ExceptionName != "*errors.errorString" {
			t.Errorf("stored %q of %s", recs[0].Message, recs[0].ExceptionName)
		}
		wantCallSite(t, recs[0].Traceback, recs[0].Culprit)
	})
}

// TestErrmonErrorEveryWay: the call site is stored whichever monitor
// records the error: the default monitor's middleware, a non-default
// monitor's, the package-level Track (with no middleware, and under a
// non-default monitor's middleware) and a monitor's Track.
func TestErrmonErrorEveryWay(t *testing.T) {
	withGinMode(t, gin.TestMode)
	prev := errmon.Default()
	t.Cleanup(func() { errmon.SetDefault(prev) })
	for _, tc := range []struct {
		name       string
		asDefault  bool
		middleware bool
		track      func(*testMonitor, gin.HandlerFunc) gin.HandlerFunc
	}{
		{name: "default middleware", asDefault: true, middleware: true},
		{name: "monitor middleware", middleware: true},
		{name: "package Track, default", asDefault: true,
			track: func(_ *testMonitor, h gin.HandlerFunc) gin.HandlerFunc { return errmon.Track(h) }},
		{name: "package Track under a monitor's middleware", middleware: true,
			track: func(_ *testMonitor, h gin.HandlerFunc) gin.HandlerFunc { return errmon.Track(h) }},
		{name: "monitor Track", track: (*testMonitor).Track},
		{name: "monitor Track under its middleware", middleware: true, track: (*testMonitor).Track},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, nil)
			errmon.SetDefault(nil)
			if tc.asDefault {
				errmon.SetDefault(tm.Monitor)
			}
			r := tm.engine(!tc.middleware)
			h := gin.HandlerFunc(attachChecked)
			if tc.track != nil {
				h = tc.track(tm, h)
			}
			r.GET("/orders/:id", h)
			if w := serve(r, "GET", "/orders/7", nil, nil); w.Body.Len() > 0 {
				t.Fatal(w.Body.String())
			}
			recs := tm.records(t)
			if len(recs) != 1 || recs[0].Count != 1 {
				t.Fatalf("records %+v, want one, counted once", recs)
			}
			wantCallSite(t, recs[0].Traceback, recs[0].Culprit)
		})
	}
}

// stackedLookup returns an error with a stack of its own (pkg/errors).
//
//go:noinline
func stackedLookup() error { return pkgerrors.New("stacked lookup failed") }

// TestErrmonErrorOwnStackAndPlainCError: in one request, an error with its
// own stack attached with errmon.Error keeps its own stack (made in
// stackedLookup); a plain c.Error still gets its handler's frame; an
// errmon.Error of a plain error gets its call site.
func TestErrmonErrorOwnStackAndPlainCError(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		withGinMode(t, gin.TestMode)
		var culprits = map[string]string{}
		tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) {
			c.Ignore = func(o *errmon.Occurrence) bool { culprits[o.Message] = o.Culprit; return false }
		})
		r := tm.engine(false)
		r.GET("/orders/:id", func(c *gin.Context) {
			errmon.Error(c, stackedLookup())
			failingOrderHandler(c) // c.Error(errors.New("order lookup failed"))
			attachChecked2(c)
		})
		serve(r, "GET", "/orders/7", nil, nil)
		recs := tm.records(t)
		if len(recs) != 3 {
			t.Fatalf("%d records, want 3", len(recs))
		}
		byMsg := map[string]errmon.ErrorRecord{}
		for _, rec := range recs {
			byMsg[rec.Message] = rec
		}
		own := byMsg["stacked lookup failed"].Traceback
		if topFunction(own) != pkgPath+"stackedLookup" {
			t.Errorf("an error with its own stack is stored with another:\n%s", own)
		}
		plain := byMsg["order lookup failed"].Traceback
		if !strings.HasPrefix(topFunction(plain), pkgPath+"TestErrmonErrorOwnStackAndPlainCError.func") || strings.Count(plain, "\n") != 2 {
			// the handler's frame: the closure registered for the route
			t.Errorf("plain c.Error's traceback is not its handler's one frame:\n%s", plain)
		}
		if got := topFunction(byMsg["order missing"].Traceback); got != pkgPath+"loadOrder" {
			t.Errorf("errmon.Error's traceback starts with %q", got)
		}
		if culprits["stacked lookup failed"] != pkgPath+"stackedLookup" || culprits["order missing"] != pkgPath+"loadOrder" ||
			!strings.HasPrefix(culprits["order lookup failed"], pkgPath+"TestErrmonErrorOwnStackAndPlainCError.func1") {
			t.Errorf("culprits %q", culprits)
		}
	})
}

// attachChecked2 attaches errOrderMissing through loadOrder.
//
//go:noinline
func attachChecked2(c *gin.Context) { loadOrder(c); c.Status(http.StatusInternalServerError) }

// TestErrmonErrorGroupsByCallSite: the call site's stack groups the error
// as a panic's stack does: its functions, not its lines, so one call site
// hit twice is one error counted twice, and the same error attached from
// two functions on one route is two errors (a plain c.Error of it on that
// route is one, grouped by method and route).
func TestErrmonErrorGroupsByCallSite(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, nil)
	r := tm.engine(false)
	r.GET("/orders/:id", func(c *gin.Context) {
		switch c.Param("id") {
		case "a":
			loadOrder(c)
		case "b":
			otherLoad(c)
		default:
			_ = c.Error(errOrderMissing)
		}
		c.Status(http.StatusInternalServerError)
	})
	for _, id := range []string{"a", "a", "b", "c", "d"} {
		serve(r, "GET", "/orders/"+id, nil, nil)
	}
	counts := map[string]int64{}
	for _, rec := range tm.records(t) {
		counts[topFunction(rec.Traceback)] += rec.Count
		if rec.Count == 0 {
			t.Errorf("a row counted 0: %+v", rec)
		}
	}
	plainTop := pkgPath + "TestErrmonErrorGroupsByCallSite.func1"
	want := map[string]int64{pkgPath + "loadOrder": 2, pkgPath + "otherLoad": 1, plainTop: 2}
	if len(counts) != len(want) {
		t.Fatalf("rows by top function %v, want %v", counts, want)
	}
	for fn, n := range want {
		if counts[fn] != n {
			t.Errorf("rows by top function %v, want %v", counts, want)
			break
		}
	}
}
