package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/dashboard"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// Dashboard tests: every route, status code, permission case and escaping
// rule, on SQLite, PostgreSQL and MySQL. Rows are seeded directly with
// GORM, or recorded through Monitor.Record and Flush where the core's
// behaviour (regressions) matters. The helpers (newDash, dashRecord, do,
// apiList, ...) are in dash_test.go.

// checkSecurityHeaders asserts the headers every dashboard response carries.
func checkSecurityHeaders(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Robots-Tag":           "noindex",
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
	}
	for k, v := range want {
		if got := w.Header().Get(k); !strings.Contains(got, v) {
			t.Errorf("%s: header %s = %q, want %q", what, k, got, v)
		}
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "style-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("%s: CSP %q lacks %q", what, csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
		t.Errorf("%s: CSP %q allows scripts or inline code", what, csp)
	}
}

func TestDashboardRoutes(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		a := dashRecord("alpha", 5, time.Minute)
		b := dashRecord("bravo", 9, time.Hour)
		b.Resolved = true
		d.seed(t, a, b)
		d.seedSamples(t, a, 3)
		unknown := dashHash("nobody")

		tests := []struct {
			method, target string
			status         int
			contains       []string
			location       string
			ctype          string
		}{
			{"GET", dashPrefix, http.StatusMovedPermanently, nil, "error/", ""},
			{"GET", dashPrefix + "?q=x", http.StatusMovedPermanently, nil, "error/?q=x", ""},
			{"GET", dashPrefix + "/", 200, []string{"message of alpha", "message of bravo", `href="./` + a.Hash + `"`, "resolved", "<svg"}, "", "text/html"},
			{"GET", dashPrefix + "/" + a.Hash, 200, []string{"message of alpha", "main.handler", "/app/main.go", "library frame", "client_ip", "Resolve", "<svg"}, "", "text/html"},
			{"GET", dashPrefix + "/" + b.Hash, 200, []string{"message of bravo", "Reopen"}, "", "text/html"},
			{"GET", dashPrefix + "/" + unknown, 404, []string{"No such error"}, "", "text/html"},
			{"GET", dashPrefix + "/not-a-hash", 404, nil, "", ""},
			{"GET", dashPrefix + "/" + strings.ToUpper(a.Hash), 404, nil, "", ""},
			{"GET", dashPrefix + "/assets/dashboard.css", 200, []string{"prefers-color-scheme"}, "", "text/css"},
			{"GET", dashPrefix + "/api/errors", 200, []string{`"errors":[`, `"total":2`, `"page":1`}, "", "application/json"},
			{"GET", dashPrefix + "/api/errors/" + a.Hash, 200, []string{`"traceback":"main.handler`, `"request_data":{`}, "", "application/json"},
			{"GET", dashPrefix + "/api/errors/" + unknown, 404, []string{`"error"`}, "", "application/json"},
			{"GET", dashPrefix + "/api/errors/xyz", 404, []string{`"error"`}, "", "application/json"},
			// state changes only by POST
			{"GET", dashPrefix + "/" + a.Hash + "/resolve", 405, nil, "", ""},
			{"GET", dashPrefix + "/" + a.Hash + "/delete", 405, nil, "", ""},
			{"POST", dashPrefix + "/" + a.Hash + "/explode", 404, nil, "", ""},
			{"POST", dashPrefix + "/" + unknown + "/resolve", 404, nil, "", ""},
			{"POST", dashPrefix + "/bad/resolve", 404, nil, "", ""},
		}
		for _, tc := range tests {
			w := d.do(tc.method, tc.target, nil)
			what := tc.method + " " + tc.target
			if w.Code != tc.status {
				t.Errorf("%s: status %d, want %d (%s)", what, w.Code, tc.status, w.Body)
				continue
			}
			checkSecurityHeaders(t, what, w)
			for _, s := range tc.contains {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("%s: body lacks %q", what, s)
				}
			}
			if tc.location != "" && w.Header().Get("Location") != tc.location {
				t.Errorf("%s: Location %q, want %q", what, w.Header().Get("Location"), tc.location)
			}
			if tc.ctype != "" && !strings.HasPrefix(w.Header().Get("Content-Type"), tc.ctype) {
				t.Errorf("%s: Content-Type %q, want %s", what, w.Header().Get("Content-Type"), tc.ctype)
			}
		}
		if got := d.get(t, a.Hash); got == nil || got.Resolved {
			t.Errorf("GET requests changed the state of %s: %+v", a.Hash, got)
		}
	})
}

// TestDashboardGetNeverChangesState fetches every page, GETs the action
// URLs too, and compares the tables before and after.
func TestDashboardGetNeverChangesState(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		a, b := dashRecord("a", 1, time.Minute), dashRecord("b", 2, time.Minute)
		b.Resolved = true
		d.seed(t, a, b)
		d.seedSamples(t, a, 1)
		snapshot := func() string {
			var recs []errmon.ErrorRecord
			var occ, hourly int64
			d.db.Order("hash").Find(&recs)
			d.db.Model(&store.ErrorOccurrence{}).Count(&occ)
			d.db.Model(&store.ErrorHourly{}).Count(&hourly)
			var b strings.Builder
			for _, r := range recs {
				fmt.Fprintf(&b, "%s %d %v %v;", r.Hash, r.Count, r.Resolved, r.ResolvedAt)
			}
			fmt.Fprintf(&b, "occ=%d hourly=%d", occ, hourly)
			return b.String()
		}
		before := snapshot()
		for _, h := range []string{a.Hash, b.Hash} {
			for _, p := range []string{"", "/resolve", "/unresolve", "/delete"} {
				d.do("GET", dashPrefix+"/"+h+p, nil)
				d.do("HEAD", dashPrefix+"/"+h+p, nil)
			}
		}
		d.do("GET", dashPrefix+"/bulk?action=delete&hash="+a.Hash, nil)
		d.do("GET", dashPrefix+"/?action=delete&hash="+a.Hash, nil)
		d.do("GET", dashPrefix+"/api/errors", nil)
		if after := snapshot(); after != before {
			t.Errorf("GET changed state:\nbefore %s\nafter  %s", before, after)
		}
	})
}

func TestDashboardPermission(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		rec := dashRecord("perm", 1, time.Minute)
		admin := func(c *gin.Context) bool { return c.GetHeader("X-Test-Admin") == "yes" }
		cases := []struct {
			name       string
			permission func(*gin.Context) bool
			middleware []gin.HandlerFunc
			opts       []reqOpt
			status     int
		}{
			{"loopback v4", nil, nil, nil, 200},
			{"loopback v6", nil, nil, []reqOpt{fromAddr("[::1]:5000")}, 200},
			{"remote", nil, nil, []reqOpt{fromAddr("10.0.0.1:5000")}, 401},
			{"public", nil, nil, []reqOpt{fromAddr("203.0.113.9:5000")}, 401},
			{"bad remote addr", nil, nil, []reqOpt{fromAddr("garbage")}, 401},
			{"loopback via proxy X-Forwarded-For", nil, nil, []reqOpt{withHeader("X-Forwarded-For", "203.0.113.9")}, 401},
			{"loopback via proxy X-Real-IP", nil, nil, []reqOpt{withHeader("X-Real-IP", "203.0.113.9")}, 401},
			{"loopback via proxy Forwarded", nil, nil, []reqOpt{withHeader("Forwarded", "for=203.0.113.9")}, 401},
			{"custom permission denies loopback", admin, nil, nil, 401},
			{"custom permission allows remote", admin, nil, []reqOpt{fromAddr("10.0.0.1:5000"), withHeader("X-Test-Admin", "yes")}, 200},
			{"basic auth missing", nil, []gin.HandlerFunc{gin.BasicAuth(gin.Accounts{"ops": "s3cret"})}, nil, 401},
			{"basic auth wrong", nil, []gin.HandlerFunc{gin.BasicAuth(gin.Accounts{"ops": "s3cret"})},
				[]reqOpt{func(r *http.Request) { r.SetBasicAuth("ops", "nope") }}, 401},
			{"basic auth right", nil, []gin.HandlerFunc{gin.BasicAuth(gin.Accounts{"ops": "s3cret"})},
				[]reqOpt{func(r *http.Request) { r.SetBasicAuth("ops", "s3cret") }}, 200},
			{"basic auth right, remote, permission opened", func(*gin.Context) bool { return true },
				[]gin.HandlerFunc{gin.BasicAuth(gin.Accounts{"ops": "s3cret"})},
				[]reqOpt{fromAddr("10.0.0.1:5000"), func(r *http.Request) { r.SetBasicAuth("ops", "s3cret") }}, 200},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				d := newDash(t, tdb, func(c *errmon.Config) { c.ViewPermission = tc.permission }, tc.middleware...)
				d.db.Where("1 = 1").Delete(&errmon.ErrorRecord{})
				d.seed(t, rec)
				for _, target := range []string{"/", "/" + rec.Hash, "/api/errors", "/api/errors/" + rec.Hash, "/assets/dashboard.css"} {
					w := d.do("GET", dashPrefix+target, nil, tc.opts...)
					if w.Code != tc.status {
						t.Errorf("GET %s: %d, want %d", target, w.Code, tc.status)
					}
					checkSecurityHeaders(t, target, w)
					if tc.status == 401 && strings.Contains(w.Body.String(), rec.Message) {
						t.Errorf("GET %s: 401 leaks the error", target)
					}
				}
				w := d.do("POST", dashPrefix+"/"+rec.Hash+"/resolve", nil, tc.opts...)
				if tc.status == 401 {
					if w.Code != 401 {
						t.Errorf("POST resolve: %d, want 401", w.Code)
					}
					if got := d.get(t, rec.Hash); got.Resolved {
						t.Error("a refused POST resolved the error")
					}
				} else if w.Code != http.StatusSeeOther {
					t.Errorf("POST resolve: %d, want 303", w.Code)
				}
			})
		}
	})
}

func TestDashboardCrossSitePost(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		rec := dashRecord("csrf", 3, time.Minute)
		d.seed(t, rec)
		refused := []struct {
			name string
			opts []reqOpt
		}{
			{"Sec-Fetch-Site cross-site", []reqOpt{withHeader("Sec-Fetch-Site", "cross-site")}},
			{"Sec-Fetch-Site same-site", []reqOpt{withHeader("Sec-Fetch-Site", "same-site")}},
			{"Origin of another host", []reqOpt{withHeader("Origin", "https://evil.example")}},
		}
		actions := []struct {
			target string
			form   url.Values
		}{
			{"/" + rec.Hash + "/resolve", nil},
			{"/" + rec.Hash + "/delete", url.Values{"confirm": {"yes"}}},
			{"/bulk", url.Values{"action": {"delete"}, "hash": {rec.Hash}, "confirm": {"yes"}}},
		}
		for _, tc := range refused {
			for _, a := range actions {
				w := d.do("POST", dashPrefix+a.target, a.form, tc.opts...)
				if w.Code != http.StatusForbidden {
					t.Errorf("%s POST %s: %d, want 403", tc.name, a.target, w.Code)
				}
				checkSecurityHeaders(t, a.target, w)
				got := d.get(t, rec.Hash)
				if got == nil || got.Resolved {
					t.Fatalf("%s POST %s changed the error: %+v", tc.name, a.target, got)
				}
			}
		}
		// A cross-site GET is harmless and allowed (links from chat, mail).
		if w := d.do("GET", dashPrefix+"/", nil, withHeader("Sec-Fetch-Site", "cross-site")); w.Code != 200 {
			t.Errorf("cross-site GET: %d, want 200", w.Code)
		}
		// Same-origin form posts and non-browser clients work.
		w := d.do("POST", dashPrefix+"/"+rec.Hash+"/resolve", nil, withHeader("Sec-Fetch-Site", "same-origin"))
		if w.Code != http.StatusSeeOther || !d.get(t, rec.Hash).Resolved {
			t.Errorf("same-origin resolve: %d, resolved=%v", w.Code, d.get(t, rec.Hash).Resolved)
		}
		w = d.do("POST", dashPrefix+"/"+rec.Hash+"/unresolve", nil, withHeader("Origin", "http://"+dashHost))
		if w.Code != http.StatusSeeOther || d.get(t, rec.Hash).Resolved {
			t.Errorf("same-host Origin unresolve: %d, resolved=%v", w.Code, d.get(t, rec.Hash).Resolved)
		}
	})
}

func TestDashboardActions(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		a, b, c := dashRecord("a", 1, time.Minute), dashRecord("b", 2, 2*time.Minute), dashRecord("c", 3, 3*time.Minute)
		d.seed(t, a, b, c)
		for _, r := range []errmon.ErrorRecord{a, b, c} {
			d.seedSamples(t, r, 4)
		}

		// HTML form posts answer 303 with relative locations.
		w := d.do("POST", dashPrefix+"/"+a.Hash+"/resolve", nil)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "../"+a.Hash+"?notice=resolved" {
			t.Fatalf("resolve: %d Location %q", w.Code, w.Header().Get("Location"))
		}
		got := d.get(t, a.Hash)
		if !got.Resolved || got.ResolvedAt == nil || got.Count != 1 {
			t.Fatalf("after resolve: %+v", got)
		}
		page := d.do("GET", dashPrefix+"/"+a.Hash+"?notice=resolved", nil).Body.String()
		if !strings.Contains(page, "Marked as resolved") || !strings.Contains(page, "/unresolve") {
			t.Errorf("detail after resolve lacks the notice or the reopen form")
		}
		w = d.do("POST", dashPrefix+"/"+a.Hash+"/unresolve", nil)
		if w.Code != http.StatusSeeOther || d.get(t, a.Hash).Resolved || d.get(t, a.Hash).ResolvedAt != nil {
			t.Fatalf("unresolve: %d %+v", w.Code, d.get(t, a.Hash))
		}

		// JSON when asked.
		w = d.do("POST", dashPrefix+"/"+b.Hash+"/resolve", nil, withHeader("Accept", "application/json"))
		var one dashboard.APIError
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &one) != nil || !one.Resolved || one.Hash != b.Hash || one.Count != 2 {
			t.Fatalf("JSON resolve: %d %s", w.Code, w.Body)
		}
		w = d.do("POST", dashPrefix+"/"+b.Hash+"/unresolve", nil, withHeader("Accept", "application/json"))
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"resolved":false`) {
			t.Fatalf("JSON unresolve: %d %s", w.Code, w.Body)
		}

		// Delete removes the error's rows from all three tables, and only its.
		w = d.do("POST", dashPrefix+"/"+c.Hash+"/delete", url.Values{"confirm": {"yes"}})
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "../?notice=deleted" {
			t.Fatalf("delete: %d Location %q", w.Code, w.Header().Get("Location"))
		}
		countRows := func(hash string) (n [3]int64) {
			d.db.Model(&errmon.ErrorRecord{}).Where("hash = ?", hash).Count(&n[0])
			d.db.Model(&store.ErrorOccurrence{}).Where("hash = ?", hash).Count(&n[1])
			d.db.Model(&store.ErrorHourly{}).Where("hash = ?", hash).Count(&n[2])
			return n
		}
		if n := countRows(c.Hash); n != [3]int64{} {
			t.Errorf("rows left after delete (errors, occurrences, hourly): %v", n)
		}
		if n := countRows(a.Hash); n != [3]int64{1, 1, 1} {
			t.Errorf("delete touched another error: %v", n)
		}
		if w := d.do("GET", dashPrefix+"/"+c.Hash, nil); w.Code != 404 {
			t.Errorf("deleted error: GET %d, want 404", w.Code)
		}
		if w := d.do("POST", dashPrefix+"/"+c.Hash+"/delete", nil, withHeader("Accept", "application/json")); w.Code != 404 {
			t.Errorf("deleting twice: %d, want 404", w.Code)
		}

		// Bulk: resolve two, keeping the list's filter in the redirect.
		form := url.Values{"action": {"resolve"}, "hash": {a.Hash, b.Hash, "bogus"}, "q": {"message"}, "status": {"open"}, "page": {"2"}}
		w = d.do("POST", dashPrefix+"/bulk", form)
		loc, _ := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || loc == nil || loc.Path != "./" || loc.Query().Get("q") != "message" ||
			loc.Query().Get("status") != "open" || loc.Query().Get("page") != "2" || loc.Query().Get("notice") != "resolved" {
			t.Fatalf("bulk resolve: %d Location %q", w.Code, w.Header().Get("Location"))
		}
		if !d.get(t, a.Hash).Resolved || !d.get(t, b.Hash).Resolved {
			t.Error("bulk resolve did not resolve both")
		}
		w = d.do("POST", dashPrefix+"/bulk", url.Values{"action": {"unresolve"}, "hash": {a.Hash}}, withHeader("Accept", "application/json"))
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"changed":1`) || d.get(t, a.Hash).Resolved {
			t.Fatalf("bulk unresolve JSON: %d %s", w.Code, w.Body)
		}
		if w := d.do("POST", dashPrefix+"/bulk", url.Values{"action": {"drop-tables"}, "hash": {a.Hash}}); w.Code != 400 {
			t.Errorf("bulk with a bad action: %d, want 400", w.Code)
		}
		if w := d.do("POST", dashPrefix+"/bulk", url.Values{"action": {"delete"}}); w.Code != http.StatusSeeOther ||
			!strings.Contains(w.Header().Get("Location"), "notice=none") {
			t.Errorf("bulk with nothing selected: %d %q", w.Code, w.Header().Get("Location"))
		}
		w = d.do("POST", dashPrefix+"/bulk", url.Values{"action": {"delete"}, "hash": {a.Hash, b.Hash}, "confirm": {"yes"}})
		if w.Code != http.StatusSeeOther || d.get(t, a.Hash) != nil || d.get(t, b.Hash) != nil {
			t.Fatalf("bulk delete: %d", w.Code)
		}
		if n := countRows(a.Hash); n != [3]int64{} {
			t.Errorf("rows left after bulk delete: %v", n)
		}
		if list := d.apiList(t, nil); list.Total != 0 {
			t.Errorf("after deleting all: total %d", list.Total)
		}
	})
}

func TestDashboardEscaping(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		const xss = `<script>alert(1)</script>`
		rec := dashRecord("xss", 1, time.Minute)
		rec.Message = xss
		rec.Path = "/search/" + xss
		rec.Route = `/search/"><img src=x onerror=alert(2)>`
		rec.ExceptionName = "main.<b>Err</b>"
		rec.Host = `evil"host`
		rec.Traceback = "main.handler" + xss + "\n\t/app/" + xss + ".go:1\n"
		ctxJSON, _ := json.Marshal(map[string]any{
			"headers": map[string]any{"User-Agent": []string{xss}, xss: []string{"v"}},
			"url":     "/search/" + xss,
			"body":    map[string]any{"nested": xss},
		})
		rec.RequestData = string(ctxJSON)
		d.seed(t, rec)
		d.seedSamples(t, rec, 1)
		for _, target := range []string{"/", "/" + rec.Hash, "/?q=" + url.QueryEscape(xss)} {
			w := d.do("GET", dashPrefix+target, nil)
			body := w.Body.String()
			if w.Code != 200 {
				t.Fatalf("GET %s: %d", target, w.Code)
			}
			checkSecurityHeaders(t, target, w)
			for _, bad := range []string{"<script", "<img", "<b>Err", `evil"host`, "onerror=alert(2)>"} {
				if strings.Contains(body, bad) {
					t.Errorf("GET %s: unescaped %q in page", target, bad)
				}
			}
			if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Errorf("GET %s: the payload is not shown as text", target)
			}
		}
		// The JSON API is JSON, never HTML.
		w := d.do("GET", dashPrefix+"/api/errors/"+rec.Hash, nil)
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("API content type %q", ct)
		}
		var detail dashboard.APIErrorDetail
		if err := json.Unmarshal(w.Body.Bytes(), &detail); err != nil || detail.Message != xss {
			t.Errorf("API detail message %q (%v)", detail.Message, err)
		}
	})
}

// TestDashboardSearch checks that search terms are literal: LIKE wildcards,
// quotes and SQL in the input match only what contains them.
func TestDashboardSearch(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		msgs := map[string]string{
			"pct":     "disk 100% full",
			"pctless": "disk 1000 full",
			"under":   "bad key a_b",
			"nounder": "bad key axb",
			"quote":   `it's "quoted"`,
			"sql":     "' OR 1=1 --",
			"bang":    "wow! 5",
			"bslash":  `path C:\temp\x`,
			"unicode": "Größe überschritten",
			"upper":   "Connection REFUSED",
		}
		for name, msg := range msgs {
			r := dashRecord(name, 1, time.Minute)
			r.Message = msg
			r.Path = "/p/" + name
			d.seed(t, r)
		}
		extra := dashRecord("byname", 1, time.Minute)
		extra.ExceptionName = "*net.OpError"
		d.seed(t, extra)
		want := func(names ...string) []string {
			out := make([]string, 0, len(names))
			for _, n := range names {
				out = append(out, dashHash(n))
			}
			slices.Sort(out)
			return out
		}
		cases := []struct {
			q    string
			want []string
		}{
			{"100%", want("pct")},
			{"%", want("pct")},
			{"a_b", want("under")},
			{"_", want("under")},
			{"it's", want("quote")},
			{`"quoted"`, want("quote")},
			{"' OR 1=1 --", want("sql")},
			{"' OR '1'='1", nil},
			{"x'; DROP TABLE app_errors; --", nil},
			{"!", want("bang")},
			{`\temp`, want("bslash")},
			{"größe", nil}, // case folding is ASCII-only on SQLite; exact case below
			{"Größe", want("unicode")},
			{"refused", want("upper")}, // ASCII case-insensitive
			{"OpError", want("byname")},
			{"/p/under", want("under")}, // the path
			{"  disk 100%  ", want("pct")},
		}
		for _, tc := range cases {
			list := d.apiList(t, url.Values{"q": {tc.q}})
			got := hashesOf(list)
			slices.Sort(got)
			if tc.q == "größe" { // PostgreSQL's ILIKE folds non-ASCII too
				continue
			}
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("q=%q: got %d results %v, want %v", tc.q, len(got), got, tc.want)
			}
			if list.Total != int64(len(tc.want)) {
				t.Errorf("q=%q: total %d, want %d", tc.q, list.Total, len(tc.want))
			}
		}
		var n int64
		d.db.Model(&errmon.ErrorRecord{}).Count(&n)
		if n != int64(len(msgs)+1) {
			t.Errorf("table has %d rows after hostile searches, want %d", n, len(msgs)+1)
		}
		// The HTML list searches the same way and keeps the term in the box.
		w := d.do("GET", dashPrefix+"/?q="+url.QueryEscape("100%"), nil)
		if !strings.Contains(w.Body.String(), "disk 100% full") || strings.Contains(w.Body.String(), "disk 1000 full") {
			t.Error("HTML search for 100% is wrong")
		}
		if !strings.Contains(w.Body.String(), `value="100%"`) {
			t.Error("the search box does not keep the term")
		}
		// An oversized query string is cut, not an error.
		if w := d.do("GET", dashPrefix+"/?q="+strings.Repeat("x", 100000), nil); w.Code != 200 {
			t.Errorf("oversized q: %d", w.Code)
		}
	})
}

func TestDashboardPaginationAndSort(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, func(c *errmon.Config) { c.ListSize = 3 })
		// e0 is the most recently seen; counts rise with i; first seen falls
		// with i (e7 is the newest bug).
		var recs []errmon.ErrorRecord
		for i := range 8 {
			r := dashRecord(fmt.Sprintf("e%d", i), int64(10+i), time.Duration(i)*time.Minute)
			r.CreatedOn = store.DBTime(time.Now().Add(-time.Duration(100-i) * time.Hour))
			r.Resolved = i%2 == 1
			recs = append(recs, r)
		}
		d.seed(t, recs...)
		names := func(list dashboard.APIErrorList) string {
			var s []string
			for _, e := range list.Errors {
				s = append(s, strings.TrimPrefix(e.Message, "message of "))
			}
			return strings.Join(s, ",")
		}
		cases := []struct {
			query       url.Values
			page, total int
			want        string
		}{
			{nil, 1, 8, "e0,e1,e2"},
			{url.Values{"page": {"2"}}, 2, 8, "e3,e4,e5"},
			{url.Values{"page": {"3"}}, 3, 8, "e6,e7"},
			{url.Values{"page": {"-1"}}, 1, 8, "e0,e1,e2"},
			{url.Values{"page": {"0"}}, 1, 8, "e0,e1,e2"},
			{url.Values{"page": {"999999999999"}}, 3, 8, "e6,e7"},
			{url.Values{"page": {"99999999999999999999999999"}}, 1, 8, "e0,e1,e2"},
			{url.Values{"page": {"abc"}}, 1, 8, "e0,e1,e2"},
			{url.Values{"page": {"2.5"}}, 1, 8, "e0,e1,e2"},
			{url.Values{"sort": {"count"}}, 1, 8, "e7,e6,e5"},
			{url.Values{"sort": {"first_seen"}}, 1, 8, "e7,e6,e5"},
			{url.Values{"sort": {"nonsense; DROP TABLE app_errors"}}, 1, 8, "e0,e1,e2"},
			{url.Values{"status": {"open"}}, 1, 4, "e0,e2,e4"},
			{url.Values{"status": {"open"}, "page": {"2"}}, 2, 4, "e6"},
			{url.Values{"status": {"resolved"}, "sort": {"count"}}, 1, 4, "e7,e5,e3"},
			{url.Values{"status": {"bogus"}}, 1, 8, "e0,e1,e2"},
			{url.Values{"q": {"nothing matches"}, "page": {"7"}}, 1, 0, ""},
			{url.Values{"q": {"message of e"}}, 1, 8, "e0,e1,e2"},
			{url.Values{"q": {"message of e"}, "page": {"2"}}, 2, 8, "e3,e4,e5"},
			{url.Values{"q": {"message of e"}, "page": {"99"}}, 3, 8, "e6,e7"},
			{url.Values{"q": {"message of e"}, "page": {"999999999999"}}, 3, 8, "e6,e7"},
			{url.Values{"q": {"message of e"}, "page": {"-5"}}, 1, 8, "e0,e1,e2"},
			{url.Values{"q": {"MESSAGE OF E"}, "status": {"open"}, "sort": {"count"}}, 1, 4, "e6,e4,e2"},
			{url.Values{"q": {"e5"}, "sort": {"first_seen"}}, 1, 1, "e5"},
		}
		for _, tc := range cases {
			list := d.apiList(t, tc.query)
			if list.Page != tc.page || list.Total != int64(tc.total) || names(list) != tc.want || list.PageSize != 3 {
				t.Errorf("%s: page %d total %d [%s], want page %d total %d [%s]",
					tc.query.Encode(), list.Page, list.Total, names(list), tc.page, tc.total, tc.want)
			}
			if list.Errors == nil {
				t.Errorf("%s: errors is null, want a list", tc.query.Encode())
			}
			// The HTML list never fails on the same input.
			if w := d.do("GET", dashPrefix+"/?"+tc.query.Encode(), nil); w.Code != 200 {
				t.Errorf("HTML %s: %d", tc.query.Encode(), w.Code)
			}
		}
		// Page links are relative and keep the filter.
		body := d.do("GET", dashPrefix+"/?status=open&sort=count", nil).Body.String()
		for _, s := range []string{`href="./?page=2&amp;sort=count&amp;status=open"`, `rel="next"`, "1–3 of 4"} {
			if !strings.Contains(body, s) {
				t.Errorf("list page lacks %q", s)
			}
		}
		if strings.Contains(body, `href="/`) || strings.Contains(body, `action="/`) {
			t.Error("list page has an absolute link")
		}
	})
}

func TestDashboardJSONShapes(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		rec := dashRecord("shape", 7, time.Minute)
		d.seed(t, rec)
		d.seedSamples(t, rec, 7)
		var list map[string]any
		w := d.do("GET", dashPrefix+"/api/errors", nil)
		if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"errors", "total", "page"} {
			if _, ok := list[k]; !ok {
				t.Errorf("list lacks %q: %s", k, w.Body)
			}
		}
		errs, _ := list["errors"].([]any)
		if len(errs) != 1 {
			t.Fatalf("errors: %v", list["errors"])
		}
		item := errs[0].(map[string]any)
		for _, k := range []string{"hash", "exception_name", "message", "host", "path", "route", "method", "count", "created_on", "last_seen", "resolved"} {
			if _, ok := item[k]; !ok {
				t.Errorf("list item lacks %q", k)
			}
		}
		if _, ok := item["traceback"]; ok {
			t.Error("list items carry the traceback")
		}
		if item["count"] != float64(7) || item["hash"] != rec.Hash || item["resolved"] != false {
			t.Errorf("list item: %v", item)
		}
		if _, err := time.Parse(time.RFC3339, item["last_seen"].(string)); err != nil {
			t.Errorf("last_seen %v: %v", item["last_seen"], err)
		}

		var detail map[string]any
		w = d.do("GET", dashPrefix+"/api/errors/"+rec.Hash, nil)
		if err := json.Unmarshal(w.Body.Bytes(), &detail); err != nil {
			t.Fatal(err)
		}
		if detail["traceback"] != rec.Traceback {
			t.Errorf("traceback %q", detail["traceback"])
		}
		rd, ok := detail["request_data"].(map[string]any)
		if !ok || rd["client_ip"] != "127.0.0.1" {
			t.Errorf("request_data is not the stored object: %#v", detail["request_data"])
		}
		occ, _ := detail["occurrences"].([]any)
		if len(occ) != 1 {
			t.Errorf("occurrences: %v", detail["occurrences"])
		}
		hourly, _ := detail["hourly"].([]any)
		if len(hourly) != 24 || hourly[23] != float64(7) {
			t.Errorf("hourly: %v", detail["hourly"])
		}

	})
}

// TestDashboardRegression goes through the core: an error resolved on the
// dashboard that happens again is open again, with its count kept.
func TestDashboardRegression(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		boom := func() { d.m.Record(nil, errors.New("dashboard regression boom")) }
		boom()
		boom()
		dashFlush(t, d.m)
		list := d.apiList(t, nil)
		if list.Total != 1 || list.Errors[0].Count != 2 {
			t.Fatalf("after two records: %+v", list)
		}
		hash := list.Errors[0].Hash
		if w := d.do("POST", dashPrefix+"/"+hash+"/resolve", nil); w.Code != http.StatusSeeOther {
			t.Fatalf("resolve: %d", w.Code)
		}
		if open := d.apiList(t, url.Values{"status": {"open"}}); open.Total != 0 {
			t.Fatalf("open after resolve: %d", open.Total)
		}
		if res := d.apiList(t, url.Values{"status": {"resolved"}}); res.Total != 1 {
			t.Fatalf("resolved after resolve: %d", res.Total)
		}
		boom()
		dashFlush(t, d.m)
		open := d.apiList(t, url.Values{"status": {"open"}})
		if open.Total != 1 || open.Errors[0].Hash != hash || open.Errors[0].Count != 3 ||
			open.Errors[0].Resolved || open.Errors[0].Regressions != 1 {
			t.Fatalf("after recurrence: %+v", open)
		}
		body := d.do("GET", dashPrefix+"/", nil).Body.String()
		if !strings.Contains(body, "regression") {
			t.Error("list does not mark the regression")
		}
		body = d.do("GET", dashPrefix+"/"+hash, nil).Body.String()
		if !strings.Contains(body, "1 regression") || !strings.Contains(body, ">open<") {
			t.Error("detail does not show the reopened state")
		}
	})
}

func TestDashboardEmptyAndStats(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, func(c *errmon.Config) { c.MaxPending = 1 })
		body := d.do("GET", dashPrefix+"/", nil).Body.String()
		for _, s := range []string{"No errors recorded yet", "panic(", "errmon.Record"} {
			if !strings.Contains(body, s) {
				t.Errorf("empty state lacks %q", s)
			}
		}
		if strings.Contains(body, "dropped</strong>") {
			t.Error("drop warning without drops")
		}
		body = d.do("GET", dashPrefix+"/?q=zzz", nil).Body.String()
		if !strings.Contains(body, "No matching errors") {
			t.Error("filtered empty state missing")
		}
		// MaxPending 1: the second distinct error is dropped and shown.
		d.m.Record(nil, errors.New("first kept"))
		d.m.Record(nil, errors.New("second dropped"))
		if st := d.m.Stats(); st.Dropped != 1 {
			t.Fatalf("Stats().Dropped = %d, want 1", st.Dropped)
		}
		body = d.do("GET", dashPrefix+"/", nil).Body.String()
		if !strings.Contains(body, "1 occurrence dropped") || !strings.Contains(body, "1 pending") {
			t.Errorf("drop count not shown:\n%s", body[strings.Index(body, "<body>"):])
		}
	})
}

// TestDashboardMountedAnywhere mounts the group under another prefix inside
// a router group with middleware: links stay relative and work.
func TestDashboardMountedAnywhere(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		cfg := errmon.DefaultConfig()
		cfg.DB, cfg.Output, cfg.URLPrefix = tdb.DB, nil, "/ops/errors/"
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		m, err := errmon.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		dashQuietGin(t)
		e := gin.New()
		seen := 0
		m.RegisterRoutes(e.Group("/v1", func(c *gin.Context) { seen++ }))
		rec := dashRecord("mounted", 1, time.Minute)
		if err := tdb.DB.Create(&rec).Error; err != nil {
			t.Fatal(err)
		}
		d := &dashEnv{m: m, db: tdb.DB, h: e}
		w := d.do("GET", "/v1/ops/errors", nil)
		if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "errors/" {
			t.Fatalf("prefix without slash: %d %q", w.Code, w.Header().Get("Location"))
		}
		w = d.do("GET", "/v1/ops/errors/", nil)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `href="./`+rec.Hash+`"`) || strings.Contains(w.Body.String(), "/dev/error") {
			t.Fatalf("list under /v1/ops/errors: %d", w.Code)
		}
		if w := d.do("GET", "/v1/ops/errors/"+rec.Hash, nil); w.Code != 200 {
			t.Fatalf("detail: %d", w.Code)
		}
		w = d.do("POST", "/v1/ops/errors/"+rec.Hash+"/resolve", nil)
		base, _ := url.Parse("http://x/v1/ops/errors/" + rec.Hash + "/resolve")
		loc, _ := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || base.ResolveReference(loc).Path != "/v1/ops/errors/"+rec.Hash {
			t.Fatalf("resolve redirect %q", w.Header().Get("Location"))
		}
		if seen == 0 {
			t.Error("the router group's middleware did not run")
		}
	})
}

// TestDashboardContextNotHTMLEscapedTwice checks that the request context
// is shown as stored: "&" in a query is neither \u0026 (JSON's HTML
// escape) on the page nor double-escaped.
func TestDashboardContextNotHTMLEscapedTwice(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, nil)
	r := tm.engine(false)
	tm.RegisterRoutes(r)
	r.POST("/amp", func(c *gin.Context) { panic("with a body") })
	serve(r, "POST", "/amp?a=1&b=2", strings.NewReader(`{"note":"x & y <z>"}`), map[string]string{"Content-Type": "application/json"})
	recs := tm.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d rows", len(recs))
	}
	req := httptest.NewRequest("GET", tm.Config().URLPrefix+"/"+recs[0].Hash, nil)
	req.RemoteAddr, req.Host = "127.0.0.1:1234", "127.0.0.1:8080"
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("detail: %d", w.Code)
	}
	page := w.Body.String()
	if strings.Contains(page, `\u0026`) || strings.Contains(page, `\u003c`) {
		t.Errorf("the page shows JSON's HTML escapes")
	}
	if !strings.Contains(page, "x &amp; y &lt;z&gt;") || !strings.Contains(page, "a=1&amp;b=2") {
		t.Errorf("the page does not show the context as stored, escaped once")
	}
}

// TestDashboardPermissionHost checks the Host half of the default and of
// LocalOnly through the routes: a page of another site whose name was
// rebound to 127.0.0.1 (DNS rebinding) is refused.
func TestDashboardPermissionHost(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		rec := dashRecord("host", 1, time.Minute)
		for _, perm := range []struct {
			name string
			f    func(*gin.Context) bool
		}{{"default", nil}, {"LocalOnly", errmon.LocalOnly}} {
			d := newDash(t, tdb, func(c *errmon.Config) { c.ViewPermission = perm.f })
			d.db.Where("1 = 1").Delete(&errmon.ErrorRecord{})
			d.seed(t, rec)
			cases := []struct {
				host   string
				status int
			}{
				{"localhost:8080", 200},
				{"127.0.0.1:8080", 200},
				{"[::1]:8080", 200},
				{"dev.localhost:8080", 200},
				{"rebound.evil.example:8080", 401},
				{"rebound.evil.example", 401},
				{"", 401},
			}
			for _, tc := range cases {
				for _, target := range []string{"/", "/" + rec.Hash, "/api/errors/" + rec.Hash} {
					w := d.do("GET", dashPrefix+target, nil, withHost(tc.host))
					if w.Code != tc.status {
						t.Errorf("%s, Host %q, GET %s: %d, want %d", perm.name, tc.host, target, w.Code, tc.status)
					}
					if w.Code == 401 && strings.Contains(w.Body.String(), rec.Message) {
						t.Errorf("%s, Host %q, GET %s: the refusal leaks the error", perm.name, tc.host, target)
					}
				}
				d.db.Model(&errmon.ErrorRecord{}).Where("hash = ?", rec.Hash).Update("resolved", false)
				w := d.do("POST", dashPrefix+"/"+rec.Hash+"/resolve", nil, withHost(tc.host))
				if tc.status == 401 && (w.Code != 401 || d.get(t, rec.Hash).Resolved) {
					t.Errorf("%s, Host %q: POST resolve %d, resolved=%v", perm.name, tc.host, w.Code, d.get(t, rec.Hash).Resolved)
				}
			}
		}
	})
}

// TestDashboardPermissionByGinMode checks the default permission in each
// gin mode, read on each request, against explicit permissions, and that
// every refusal says how to open the dashboard.
func TestDashboardPermissionByGinMode(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		rec := dashRecord("mode", 1, time.Minute)
		local := []reqOpt{}
		remote := []reqOpt{fromAddr("203.0.113.9:5000"), withHost("errors.example.com")}
		rebound := []reqOpt{withHost("rebound.evil.example")}
		allowAll := func(*gin.Context) bool { return true }
		denyAll := func(*gin.Context) bool { return false }
		type req struct {
			name string
			opts []reqOpt
		}
		reqs := []req{{"local", local}, {"remote", remote}, {"rebound", rebound}}
		cases := []struct {
			mode, perm string
			f          func(*gin.Context) bool
			want       map[string]int // by request
			says       []string       // in every refusal
		}{
			{gin.DebugMode, "default", nil, map[string]int{"local": 200, "remote": 401, "rebound": 401},
				[]string{"Config.ViewPermission", "this machine"}},
			{gin.TestMode, "default", nil, map[string]int{"local": 200, "remote": 401, "rebound": 401},
				[]string{"Config.ViewPermission", "this machine"}},
			{gin.ReleaseMode, "default", nil, map[string]int{"local": 401, "remote": 401, "rebound": 401},
				[]string{"release mode", "Config.ViewPermission", "errmon.LocalOnly"}},
			{gin.ReleaseMode, "LocalOnly", errmon.LocalOnly, map[string]int{"local": 200, "remote": 401, "rebound": 401},
				[]string{"Config.ViewPermission"}},
			{gin.DebugMode, "LocalOnly", errmon.LocalOnly, map[string]int{"local": 200, "remote": 401, "rebound": 401},
				[]string{"Config.ViewPermission"}},
			{gin.ReleaseMode, "allow all", allowAll, map[string]int{"local": 200, "remote": 200, "rebound": 200}, nil},
			{gin.DebugMode, "deny all", denyAll, map[string]int{"local": 401, "remote": 401, "rebound": 401},
				[]string{"Config.ViewPermission"}},
		}
		for _, tc := range cases {
			t.Run(tc.mode+"/"+tc.perm, func(t *testing.T) {
				d := newDash(t, tdb, func(c *errmon.Config) { c.ViewPermission = tc.f })
				d.db.Where("1 = 1").Delete(&errmon.ErrorRecord{})
				d.seed(t, rec)
				withGinMode(t, tc.mode) // after New: the mode is read per request
				for _, r := range reqs {
					for _, target := range []string{"/", "/" + rec.Hash, "/api/errors", "/assets/dashboard.css"} {
						w := d.do("GET", dashPrefix+target, nil, r.opts...)
						if w.Code != tc.want[r.name] {
							t.Errorf("%s GET %s: %d, want %d (%s)", r.name, target, w.Code, tc.want[r.name], w.Body)
							continue
						}
						if w.Code != 401 {
							continue
						}
						body := w.Body.String()
						if strings.Contains(body, rec.Message) {
							t.Errorf("%s GET %s: the refusal leaks the error", r.name, target)
						}
						for _, s := range tc.says {
							if !strings.Contains(body, s) {
								t.Errorf("%s GET %s: the refusal %q does not say %q", r.name, target, body, s)
							}
						}
						ct := w.Header().Get("Content-Type")
						if strings.Contains(target, "/api/") {
							var v struct{ Error string }
							if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(w.Body.Bytes(), &v) != nil || v.Error == "" {
								t.Errorf("%s GET %s: refusal %q %q, want a JSON error", r.name, target, ct, body)
							}
						} else if !strings.HasPrefix(ct, "text/plain") {
							t.Errorf("%s GET %s: refusal Content-Type %q", r.name, target, ct)
						}
					}
				}
			})
		}

		// The mode is read on each request: the same monitor closes when
		// gin switches to release mode, and opens again after.
		d := newDash(t, tdb, nil)
		steps := []struct {
			mode   string
			status int
		}{{gin.TestMode, 200}, {gin.ReleaseMode, 401}, {gin.DebugMode, 200}, {gin.ReleaseMode, 401}}
		for _, s := range steps {
			withGinMode(t, s.mode)
			if w := d.do("GET", dashPrefix+"/", nil); w.Code != s.status {
				t.Errorf("in %s mode: %d, want %d", s.mode, w.Code, s.status)
			}
		}
	})
}

// TestDashboardOwnContentTypes mounts the dashboard behind host middleware
// that sets Content-Type: application/json (gin's renderers keep an
// existing Content-Type) and other headers, and checks that every kind of
// dashboard response sets its own.
func TestDashboardOwnContentTypes(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		hostHeaders := func(c *gin.Context) {
			h := c.Writer.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Content-Disposition", "attachment; filename=api.json")
			h.Set("Cache-Control", "public, max-age=600")
			h.Set("X-Frame-Options", "SAMEORIGIN")
			h.Set("Content-Security-Policy", "default-src *")
			h.Set("X-Request-Id", "host-42")
			c.Next()
		}
		d := newDash(t, tdb, nil)
		e := gin.New()
		e.Use(hostHeaders)
		d.m.RegisterRoutes(e)
		d.h = e
		a := dashRecord("ctype", 2, time.Minute)
		d.seed(t, a)
		d.seedSamples(t, a, 1)
		unknown := dashHash("nobody")
		jsonAccept := withHeader("Accept", "application/json")
		bulk := url.Values{"action": {"resolve"}, "hash": {a.Hash}}
		const (
			html = "text/html; charset=utf-8"
			text = "text/plain; charset=utf-8"
			js   = "application/json; charset=utf-8"
			css  = "text/css; charset=utf-8"
		)
		tests := []struct {
			name, method, target string
			form                 url.Values
			opts                 []reqOpt
			status               int
			ctype                string
		}{
			{"redirect to slash", "GET", dashPrefix, nil, nil, 301, text},
			{"list", "GET", dashPrefix + "/", nil, nil, 200, html},
			{"detail", "GET", dashPrefix + "/" + a.Hash, nil, nil, 200, html},
			{"404 page", "GET", dashPrefix + "/" + unknown, nil, nil, 404, html},
			{"404 bad hash", "GET", dashPrefix + "/not-a-hash", nil, nil, 404, html},
			{"404 asked as JSON", "GET", dashPrefix + "/" + unknown, nil, []reqOpt{jsonAccept}, 404, js},
			{"style sheet", "GET", dashPrefix + "/assets/dashboard.css", nil, nil, 200, css},
			{"API list", "GET", dashPrefix + "/api/errors", nil, nil, 200, js},
			{"API detail", "GET", dashPrefix + "/api/errors/" + a.Hash, nil, nil, 200, js},
			{"API 404", "GET", dashPrefix + "/api/errors/" + unknown, nil, nil, 404, js},
			{"405 on GET of an action", "GET", dashPrefix + "/" + a.Hash + "/resolve", nil, nil, 405, text},
			{"action redirect", "POST", dashPrefix + "/" + a.Hash + "/resolve", nil, nil, 303, text},
			{"action as JSON", "POST", dashPrefix + "/" + a.Hash + "/unresolve", nil, []reqOpt{jsonAccept}, 200, js},
			{"action 404", "POST", dashPrefix + "/" + unknown + "/resolve", nil, nil, 404, html},
			{"bulk redirect", "POST", dashPrefix + "/bulk", bulk, nil, 303, text},
			{"bulk as JSON", "POST", dashPrefix + "/bulk", bulk, []reqOpt{jsonAccept}, 200, js},
			{"bulk 400", "POST", dashPrefix + "/bulk", url.Values{"action": {"explode"}}, nil, 400, text},
			{"bulk 400 as JSON", "POST", dashPrefix + "/bulk", url.Values{"action": {"explode"}}, []reqOpt{jsonAccept}, 400, js},
			{"cross-site 403", "POST", dashPrefix + "/bulk", bulk, []reqOpt{withHeader("Sec-Fetch-Site", "cross-site")}, 403, text},
			{"cross-site 403 as JSON", "POST", dashPrefix + "/bulk", bulk,
				[]reqOpt{withHeader("Sec-Fetch-Site", "cross-site"), jsonAccept}, 403, js},
			{"401 page", "GET", dashPrefix + "/", nil, []reqOpt{fromAddr("203.0.113.9:1")}, 401, text},
			{"401 API", "GET", dashPrefix + "/api/errors", nil, []reqOpt{fromAddr("203.0.113.9:1")}, 401, js},
		}
		check := func(name string, w *httptest.ResponseRecorder, status int, ctype string) {
			t.Helper()
			if w.Code != status {
				t.Errorf("%s: status %d, want %d (%s)", name, w.Code, status, w.Body)
				return
			}
			if got := w.Header().Values("Content-Type"); len(got) != 1 || got[0] != ctype {
				t.Errorf("%s: Content-Type %q, want %q", name, got, ctype)
			}
			checkSecurityHeaders(t, name, w)
			if cd := w.Header().Get("Content-Disposition"); cd != "" {
				t.Errorf("%s: Content-Disposition %q kept from the host", name, cd)
			}
			if xfo := w.Header().Get("X-Frame-Options"); xfo != "DENY" {
				t.Errorf("%s: X-Frame-Options %q", name, xfo)
			}
			if csp := w.Header().Values("Content-Security-Policy"); len(csp) != 1 {
				t.Errorf("%s: Content-Security-Policy %q", name, csp)
			}
			body := w.Body.Bytes()
			switch ctype {
			case js:
				if !json.Valid(body) {
					t.Errorf("%s: body is not JSON: %.200s", name, body)
				}
			case html:
				if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(string(body))), "<!doctype html>") {
					t.Errorf("%s: body is not an HTML page: %.200s", name, body)
				}
			}
		}
		for _, tc := range tests {
			check(tc.name, d.do(tc.method, tc.target, tc.form, tc.opts...), tc.status, tc.ctype)
		}

		// Refusals of extra group middleware (gin.BasicAuth) are not JSON
		// either.
		e2 := gin.New()
		e2.Use(hostHeaders)
		d.m.RegisterRoutes(e2, gin.BasicAuth(gin.Accounts{"ops": "s3cret"}))
		d.h = e2
		w := d.do("GET", dashPrefix+"/", nil)
		if w.Code != 401 || w.Header().Get("Content-Type") == "application/json" {
			t.Errorf("basic auth refusal: %d %q", w.Code, w.Header().Get("Content-Type"))
		}

		// Database errors: 500 as text, or JSON for the API.
		d.h = e
		if err := d.db.Migrator().DropTable(&store.ErrorHourly{}); err != nil {
			t.Fatal(err)
		}
		check("500 page", d.do("GET", dashPrefix+"/", nil), 500, text)
		check("500 API", d.do("GET", dashPrefix+"/api/errors/"+a.Hash, nil), 500, js)
	})
}
