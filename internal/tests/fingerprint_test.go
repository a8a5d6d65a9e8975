package tests

import (
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	pkgerrors "github.com/pkg/errors"
)

//go:noinline
func sameMessageA() { panic("same message") }

//go:noinline
func sameMessageB() { panic("same message") }

func TestFingerprintThroughMiddleware(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, nil)
	r := tm.engine(false)
	r.GET("/idx/:i", func(c *gin.Context) {
		i, _ := strconv.Atoi(c.Param("i"))
		panicIndex(i)
	})
	r.GET("/a", func(c *gin.Context) { sameMessageA() })
	r.GET("/b", func(c *gin.Context) { sameMessageB() })
	r.GET("/hand/:id", func(c *gin.Context) {
		tm.Record(c, fmt.Errorf("user %s not found at 0xc000%s", c.Param("id"), c.Param("id")))
	})
	r.POST("/hand/:id", func(c *gin.Context) {
		tm.Record(c, fmt.Errorf("user %s not found at 0xc000%s", c.Param("id"), c.Param("id")))
	})
	for _, p := range []string{"/idx/5", "/idx/7", "/idx/4", "/a", "/b", "/a", "/hand/1", "/hand/22", "/hand/333"} {
		serve(r, "GET", p, nil, nil)
	}
	serve(r, "POST", "/hand/4", nil, nil)
	recs := tm.records(t)
	counts := map[string]int64{}
	for _, rec := range recs {
		counts[rec.Route+" "+rec.Method+" "+topFunction(rec.Traceback)] += rec.Count
		if n := counts[rec.Route+" "+rec.Method+" "+topFunction(rec.Traceback)]; n != rec.Count {
			t.Errorf("two rows for %s %s", rec.Method, rec.Route)
		}
	}
	// index 5, 7 and 4 are one bug.
	want := map[string]int64{
		"/idx/:i GET " + pkgPath + "panicIndex":                                3,
		"/a GET " + pkgPath + "sameMessageA":                                   2,
		"/b GET " + pkgPath + "sameMessageB":                                   1,
		"/hand/:id GET " + pkgPath + "TestFingerprintThroughMiddleware.func4":  3,
		"/hand/:id POST " + pkgPath + "TestFingerprintThroughMiddleware.func5": 1,
	}
	if len(recs) != len(want) {
		t.Errorf("%d rows, want %d: %v", len(recs), len(want), counts)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: count %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
}

//go:noinline
func newPkgError() error { return pkgerrors.New("pkg error with its own stack") }

//go:noinline
func newPkgErrorElsewhere() error { return pkgerrors.New("pkg error with its own stack") }

//go:noinline
func wrapPkgErrorAgain() error { return pkgerrors.Wrap(newPkgErrorElsewhere(), "again") }

//go:noinline
func wrapPkgError() error {
	return pkgerrors.Wrap(fs.ErrNotExist, "loading config")
}

func TestFingerprintErrorsWithTheirOwnStack(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, nil)
	r := tm.engine(false)
	r.GET("/one", func(c *gin.Context) { _ = c.Error(newPkgErrorElsewhere()); c.Status(500) })
	// One handler on two routes: the error's own stack groups them, the
	// route does not split them.
	handler := func(c *gin.Context) { tm.Record(c, newPkgError()) }
	r.GET("/two", handler)
	r.GET("/two-b", handler)
	r.GET("/three", func(c *gin.Context) { tm.Record(c, newPkgErrorElsewhere()) })
	// Wrapped on the way up: the innermost stack, where it was born.
	r.GET("/three-wrapped", func(c *gin.Context) { tm.Record(c, wrapPkgErrorAgain()) })
	r.GET("/wrapped", func(c *gin.Context) { tm.Record(c, fmt.Errorf("outer: %w", wrapPkgError())) })
	for _, p := range []string{"/one", "/two", "/two-b", "/three", "/three-wrapped", "/wrapped"} {
		serve(r, "GET", p, nil, nil)
	}
	recs := tm.records(t)
	byTop := map[string]errmon.ErrorRecord{}
	for _, rec := range recs {
		byTop[topFunction(rec.Traceback)] = rec
	}
	// The same pkg/errors value created at one place groups by its stack,
	// whatever the route; another creation site is another bug.
	if rec, ok := byTop[pkgPath+"newPkgError"]; !ok || rec.Count != 2 {
		t.Errorf("newPkgError row %+v, want count 2 (traceback from errors.New's call site)", rec)
	}
	if rec, ok := byTop[pkgPath+"newPkgErrorElsewhere"]; !ok || rec.Count != 1 {
		t.Errorf("newPkgErrorElsewhere row %+v, want count 1", rec)
	}
	if rec, ok := byTop[pkgPath+"wrapPkgError"]; !ok {
		t.Errorf("wrapped pkg error: no row whose traceback starts at wrapPkgError; rows: %v", keys(byTop))
	} else if rec.ExceptionName != "*fs.PathError" && rec.ExceptionName != "*errors.errorString" {
		t.Errorf("wrapped pkg error ExceptionName %q, want the cause's type", rec.ExceptionName)
	}
	for _, rec := range recs {
		if rec.Path == "/three-wrapped" && topFunction(rec.Traceback) != pkgPath+"newPkgErrorElsewhere" {
			t.Errorf("wrapped pkg error: traceback starts at %q, want the innermost stack", topFunction(rec.Traceback))
		}
	}
	if len(recs) != 5 {
		t.Errorf("%d rows, want 5: %v", len(recs), keys(byTop))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestFingerprintCustomHook: through a monitor, Config.Fingerprint decides
// the groups (here: every error of one route becomes one row), and runs
// before the hash is set. The hook's own rules (a "" key keeps the
// default, a panicking hook falls back to it) are the root package's
// TestFingerprintCustomHook.
func TestFingerprintCustomHook(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, func(c *errmon.Config) {
		c.Fingerprint = func(o *errmon.Occurrence) string {
			if o.Hash != "" {
				t.Errorf("Hash set while the hook runs: %q", o.Hash)
			}
			return o.Route
		}
	})
	r := tm.engine(false)
	r.GET("/a", func(c *gin.Context) { panicWithString() })
	r.GET("/b", func(c *gin.Context) { panicIndex(9) })
	r.GET("/b2", func(c *gin.Context) { panicIndex(9) })
	for _, p := range []string{"/a", "/b", "/b", "/b2"} {
		serve(r, "GET", p, nil, nil)
	}
	recs := tm.records(t)
	if len(recs) != 3 {
		t.Fatalf("%d rows, want 3 (one per route)", len(recs))
	}
}

type myErr struct{ code int }

func (e *myErr) Error() string { return "my error " + strconv.Itoa(e.code) }

// TestExceptionName: the exception name of an error made or wrapped by
// github.com/pkg/errors is the type of its cause, pkg/errors' wrappers
// looked through (as fmt's and errors.Join's are). The other cases are the
// root package's TestExceptionName; these need pkg/errors, which errmon's
// module does not require. The name is read from the occurrence
// Config.Ignore receives, and from the stored row.
func TestExceptionName(t *testing.T) {
	var mu sync.Mutex
	var got []string
	tm := sqliteMonitor(t, func(c *errmon.Config) {
		c.Ignore = func(o *errmon.Occurrence) bool {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, o.ExceptionName)
			return false
		}
	})
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"pkg/errors New", pkgerrors.New("x"), "*errors.fundamental"},
		{"pkg/errors Wrap", pkgerrors.Wrap(&myErr{3}, "ctx"), "*tests.myErr"},
		{"pkg/errors WithStack", pkgerrors.WithStack(&myErr{3}), "*tests.myErr"},
		{"pkg/errors WithMessage", pkgerrors.WithMessage(&myErr{3}, "ctx"), "*tests.myErr"},
		{"pkg/errors Wrapf of Errorf %w", pkgerrors.Wrapf(fmt.Errorf("x: %w", &myErr{4}), "ctx %d", 1), "*tests.myErr"},
		{"fmt.Errorf %w of pkg/errors Wrap", fmt.Errorf("outer: %w", pkgerrors.Wrap(&myErr{5}, "ctx")), "*tests.myErr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			before := len(allRecords(t, tm.db))
			tm.Record(nil, tc.err)
			mu.Lock()
			seen := slices.Clone(got)
			mu.Unlock()
			if len(seen) != 1 || seen[0] != tc.want {
				t.Errorf("ExceptionName %q, want [%q]", seen, tc.want)
			}
			recs := tm.records(t)
			if len(recs) != before+1 || recs[len(recs)-1].ExceptionName != tc.want {
				t.Errorf("stored rows %+v, want a new one named %q", recs, tc.want)
			}
		})
	}
}
