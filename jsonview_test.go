package errmon

import (
	"encoding/json"
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

// nested returns n levels of open, then close.
func nested(open, close string, n int) string {
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
		{"18KB arrays 9000 deep", wrap(nested("[", "]", 9000))},
		{"45KB arrays 22500 deep", wrap(nested("[", "]", 22500))},
		{"45KB objects 7500 deep", wrap(nested(`{"a":`, "}", 7500))},
		{"45KB objects 64 deep, wide", wrap(nested(`{"k":`, "}", 60)[:60*5] + list("1", 45<<10) + strings.Repeat("}", 60))},
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
	maxPageBytes  = 400 << 10
	maxAPIBytes   = 1 << 20
	maxAllocBytes = 16 << 20
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
				what, maxBytes := "page", maxPageBytes
				if strings.Contains(target, "/api/") {
					what, maxBytes = "API", maxAPIBytes
				}
				t.Logf("%-28s %-4s stored %7d B: %7d B answered, %9d B allocated", tc.name, what, len(tc.data), w.Body.Len(), alloc)
				if w.Code != http.StatusOK {
					t.Errorf("%s: %s: %d", tc.name, what, w.Code)
				}
				if w.Body.Len() > maxBytes {
					t.Errorf("%s: %s of %d bytes, want at most %d", tc.name, what, w.Body.Len(), maxBytes)
				}
				if alloc > maxAllocBytes {
					t.Errorf("%s: %s allocated %d bytes, want at most %d", tc.name, what, alloc, maxAllocBytes)
				}
			}
		}
	})
}

// TestShownJSONMatchesIndent checks that, within its bounds, the page's
// view of a context is what indentJSON gave before: the same text.
func TestShownJSONMatchesIndent(t *testing.T) {
	docs := []string{
		`{}`, `[]`, `{"a":1}`, `[1,2,3]`, `{"a":[],"b":{},"c":null,"d":true,"e":-1.5}`,
		`{"body":{"user":{"id":1,"tags":["a","b"]}},"headers":{"Accept":["*/*"]},"method":"POST"}`,
		`{"s":"with \"quotes\", a \\ backslash, \n a newline, \u00e9, \u0026 and <tags>"}`,
		` { "spaced" : [ 1 , { "x" : [ ] } ] } `,
		`{"deep":` + nested("[", "]", 30) + `}`,
	}
	for _, doc := range docs {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		want, _ := indentJSON(v)
		left := 1 << 20
		if got := shownJSON(strings.TrimSpace(doc), 1, &left); got != string(want) {
			t.Errorf("shownJSON(%s) =\n%s\nwant\n%s", doc, got, want)
		}
	}
}

func TestPruneJSON(t *testing.T) {
	deep := func(n int) string { return nested("[", "]", n) }
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"shallow stays as it is", `{"a": [1, 2]}`, `{"a": [1, 2]}`, true},
		{"exactly the cap", deep(maxShownDepth), deep(maxShownDepth), true},
		{"one level more", strings.Repeat("[", maxShownDepth+1) + "1" + strings.Repeat("]", maxShownDepth+1),
			strings.Repeat("[", maxShownDepth) + `"[… 1 more level]"` + strings.Repeat("]", maxShownDepth), true},
		{"two levels more", deep(maxShownDepth + 2),
			strings.Repeat("[", maxShownDepth) + `"[… 2 more levels]"` + strings.Repeat("]", maxShownDepth), true},
		{"9000 deep", `{"j":` + deep(9000) + `}`,
			`{"j":` + strings.Repeat("[", maxShownDepth-1) + `"[… 8937 more levels]"` + strings.Repeat("]", maxShownDepth-1) + `}`, true},
		{"empty containers past the cap stay", strings.Repeat("[", maxShownDepth) + `[],{}` + strings.Repeat("]", maxShownDepth),
			strings.Repeat("[", maxShownDepth) + `[],{}` + strings.Repeat("]", maxShownDepth), true},
		{"brackets in strings do not count", `{"s":"` + strings.Repeat("[", 200) + `"}`, `{"s":"` + strings.Repeat("[", 200) + `"}`, true},
		{"not closed", strings.Repeat("[", 100), "", false},
		{"trailing text", `{"a":1} x`, "", false},
	}
	for _, tc := range tests {
		got, ok := pruneJSON(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: pruneJSON = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
		if ok && !json.Valid([]byte(got)) {
			t.Errorf("%s: pruneJSON gave invalid JSON", tc.name)
		}
	}
	for in, want := range map[string]string{
		"":                       `{}`,
		"not json":               `{"raw":"not json"}`,
		`[1]`:                    `{"raw":"[1]"}`,
		`{"a":1}`:                `{"a":1}`,
		`{"a":<}`:                `{"raw":"{\"a\":<}"}`,
		`{"a":` + deep(70) + `}`: `{"a":` + strings.Repeat("[", 63) + `"[… 7 more levels]"` + strings.Repeat("]", 63) + `}`,
	} {
		if got := string(apiContext(in, false)); got != want {
			t.Errorf("apiContext(%.40q) = %.200s, want %.200s", in, got, want)
		}
	}
	if got := string(apiContext(`{"a":"`+strings.Repeat("x", 100), true)); !strings.Contains(got, `"truncated":true`) || !strings.Contains(got, `"raw":"{\"a\":\"xxx`) {
		t.Errorf("apiContext of a cut read = %s", got)
	}
}

// TestRequestContextBudget checks that a context's entries stop at the
// budget and say so, and that a context that is not an object is shown
// as text within the budget.
func TestRequestContextBudget(t *testing.T) {
	var keys []string
	for i := 0; i < 2000; i++ {
		keys = append(keys, fmt.Sprintf(`"key%04d":"%s"`, i, strings.Repeat("v", 100)))
	}
	data := "{" + strings.Join(keys, ",") + "}"
	entries, raw := requestContext(data, false, 16<<10, true)
	if n := len(entries); n < 50 || n > 200 {
		t.Errorf("%d entries shown of a 16 KB budget", n)
	}
	last := entries[len(entries)-1]
	if last.Key != "…" || !strings.Contains(last.Text, "more keys not shown") {
		t.Errorf("last entry %+v", last)
	}
	if len(raw) > 16<<10+len(cutNote) || !strings.HasSuffix(raw, cutNote) {
		t.Errorf("raw view of %d bytes, ends %q", len(raw), raw[max(0, len(raw)-100):])
	}
	entries, _ = requestContext(strings.Repeat(`"<`, 50<<10), false, 16<<10, false)
	if len(entries) != 1 || entries[0].Key != "raw" || htmlCost(entries[0].Text) > 16<<10+htmlCost(cutNote) {
		t.Errorf("text context: %d entries, %d bytes", len(entries), len(entries[0].Text))
	}
	entries, _ = requestContext(`{"a":"`+strings.Repeat("x", 100), true, 16<<10, false)
	if len(entries) != 1 || !strings.Contains(entries[0].Text, "characters were read") {
		t.Errorf("cut context: %+v", entries)
	}
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
			if w.Code != 200 || w.Body.Len() > maxPageBytes || alloc > maxAllocBytes {
				t.Errorf("GET %s: %d, %d bytes, %d allocated", target, w.Code, w.Body.Len(), alloc)
			}
			if !strings.Contains(w.Body.String(), "… [cut]") {
				t.Errorf("GET %s does not mark the cut", target)
			}
		}
	})
}

// FuzzJSONView checks that the views never panic, that the API's view is
// always a JSON object, and that the page's view stays within its budget.
func FuzzJSONView(f *testing.F) {
	f.Add(`{"j":` + nested("[", "]", 100) + `}`)
	f.Add(`{"j":` + nested(`{"a":`, "}", 80) + `}`)
	f.Add(`{"s":"` + strings.Repeat(`\"<&`, 2000) + `"}`)
	f.Add(strings.Repeat("[", 300))
	f.Add(`{"a":[1,{"b":"c"}],"headers":{"X":["1","2"]},"k\"":"\u00e9"}`)
	f.Add(`{"a":[}`)
	f.Add(`{"a" 1}`)
	f.Add(`{1:2}`)
	f.Fuzz(func(t *testing.T, data string) {
		var obj map[string]any
		if got := apiContext(data, false); json.Unmarshal(got, &obj) != nil {
			t.Fatalf("apiContext(%q) = %q, not a JSON object", data, got)
		}
		const budget = 4 << 10
		entries, raw := requestContext(data, false, budget, true)
		size := 0
		for _, e := range entries {
			size += htmlCost(e.Key) + htmlCost(e.Text) + htmlCost(e.JSON)
			for _, r := range e.Table {
				size += htmlCost(r[0]) + htmlCost(r[1])
			}
		}
		if limit := budget + 4*htmlCost(cutNote) + 200; size > limit || htmlCost(raw) > limit {
			t.Fatalf("views of %d and %d bytes for a budget of %d", size, htmlCost(raw), budget)
		}
	})
}
