package tests

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon/internal/store"
)

// boundedCase is stored context text the dashboard must show within
// bounds, whoever wrote it.
type boundedCase struct {
	name string
	data string
}

// dashNested returns n levels of open, then close.
func dashNested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

// hostileContexts are request_data values a row may hold: written before
// capture capped depth, or by another process.
func hostileContexts() []boundedCase {
	list := func(item string, size int) string {
		n := size / (len(item) + 1)
		return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
	}
	wrap := func(body string) string { return `{"method":"POST","url":"/upload","json":` + body + `}` }
	return []boundedCase{
		{"18KB arrays 9000 deep", wrap(dashNested("[", "]", 9000))},
		{"45KB arrays 22500 deep", wrap(dashNested("[", "]", 22500))},
		{"45KB objects 7500 deep", wrap(dashNested(`{"a":`, "}", 7500))},
		{"45KB objects 64 deep, wide", wrap(dashNested(`{"k":`, "}", 60)[:60*5] + list("1", 45<<10) + strings.Repeat("}", 60))},
		{"45KB of empty strings", wrap(list(`""`, 45<<10))},
		{"45KB of quotes in a string", wrap(`"` + strings.Repeat(`\"`, 22<<10) + `"`)},
		{"45KB table of quotes", `{"headers":{` + strings.TrimSuffix(strings.Repeat(`"a":"\"\"\"\"\"\"",`, 45<<10/20), ",") + `}}`},
		{"45KB not JSON", strings.Repeat("<&", 22<<10)},
		{"45KB arrays, not closed", `{"json":` + strings.Repeat("[", 45<<10)},
		{"60KB of tiny keys", `{` + strings.TrimSuffix(strings.Repeat(`"k":1,`, 60<<10/6), ",") + `}`},
		{"60KB key of quotes", `{"` + strings.Repeat(`\"`, 30<<10) + `":1}`},
		{"2MB string", `{"body":"` + strings.Repeat("x", 2<<20) + `"}`},
		{"2MB of many keys", `{` + strings.TrimSuffix(strings.Repeat(`"k":[1,[2,[3]]],`, 2<<20/16), ",") + `}`},
	}
}

// Bounds of one detail page and one API answer, whatever is stored. The
// API answers the stored objects whole (up to maxReadContext each, for the
// error and its samples); the page shows a budget of each.
const (
	dashMaxPageBytes  = 400 << 10
	dashMaxAPIBytes   = 1 << 20
	dashMaxAllocBytes = 16 << 20
)

// TestDashboardBoundedContext stores hostile request_data in app_errors
// and in each of the samples, straight into the tables, and checks the
// size of the detail page and of the API's answer and the bytes allocated
// to serve each (runtime.MemStats.TotalAlloc, not time).
func TestDashboardBoundedContext(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		for i, tc := range hostileContexts() {
			rec := dashRecord(fmt.Sprintf("bounded-%d", i), 1, time.Minute)
			rec.RequestData = tc.data
			d.seed(t, rec)
			d.seedSamples(t, rec, 1)
			for j := 1; j < store.OccurrenceHistory; j++ {
				occ := store.ErrorOccurrence{Hash: rec.Hash, SeenAt: rec.LastSeen, Host: rec.Host, Path: rec.Path,
					Method: rec.Method, Message: rec.Message, RequestData: rec.RequestData}
				if err := d.db.Create(&occ).Error; err != nil {
					t.Fatalf("seed occurrence: %v", err)
				}
			}
			for _, target := range []string{"/" + rec.Hash, "/api/errors/" + rec.Hash} {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				w := d.do("GET", dashPrefix+target, nil)
				runtime.ReadMemStats(&after)
				alloc := after.TotalAlloc - before.TotalAlloc
				what, maxBytes := "page", dashMaxPageBytes
				if strings.Contains(target, "/api/") {
					what, maxBytes = "API", dashMaxAPIBytes
				}
				t.Logf("%-28s %-4s stored %7d B: %7d B answered, %9d B allocated", tc.name, what, len(tc.data), w.Body.Len(), alloc)
				if w.Code != http.StatusOK {
					t.Errorf("%s: %s: %d", tc.name, what, w.Code)
				}
				if w.Body.Len() > maxBytes {
					t.Errorf("%s: %s of %d bytes, want at most %d", tc.name, what, w.Body.Len(), maxBytes)
				}
				if alloc > dashMaxAllocBytes {
					t.Errorf("%s: %s allocated %d bytes, want at most %d", tc.name, what, alloc, dashMaxAllocBytes)
				}
			}
		}
	})
}

// TestDashboardBoundedTexts stores an error whose message, traceback and
// path are far longer than errmon writes (another process's row) and
// checks that the list, the detail page and the API read and show them
// cut.
func TestDashboardBoundedTexts(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		rec := dashRecord("long-texts", 1, time.Minute)
		rec.Message = strings.Repeat("m", 2<<20)
		rec.Traceback = strings.Repeat("main.f\n\t/app/main.go:1\n", 1<<16)
		rec.Path = "/" + strings.Repeat("p", 1<<20)
		d.seed(t, rec)
		d.seedSamples(t, rec, 1)
		for _, target := range []string{"/", "/?q=mmm", "/api/errors", "/api/errors?q=mmm", "/" + rec.Hash, "/api/errors/" + rec.Hash} {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			w := d.do("GET", dashPrefix+target, nil)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("GET %-20s %7d B answered, %9d B allocated", target, w.Body.Len(), alloc)
			if w.Code != 200 || w.Body.Len() > dashMaxPageBytes || alloc > dashMaxAllocBytes {
				t.Errorf("GET %s: %d, %d bytes, %d allocated", target, w.Code, w.Body.Len(), alloc)
			}
			if !strings.Contains(w.Body.String(), "… [cut]") {
				t.Errorf("GET %s does not mark the cut", target)
			}
		}
	})
}
