package tests

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
)

// The search box's language (store.ParseSearch): terms in any order,
// quoted phrases, and the prefixes is:, route:, method:, hash:, env: and
// release:, on every database.

// searchSeed stores the errors the search tests look for, by name.
func searchSeed(t *testing.T, d *dashEnv) map[string]errmon.ErrorRecord {
	t.Helper()
	recs := map[string]errmon.ErrorRecord{}
	add := func(name string, tune func(r *errmon.ErrorRecord)) {
		r := dashRecord("search-"+name, 1, time.Duration(len(recs))*time.Minute)
		tune(&r)
		d.seed(t, r)
		recs[name] = r
	}
	add("dial", func(r *errmon.ErrorRecord) {
		r.ExceptionName, r.Message = "*net.OpError", "dial tcp 10.0.0.7:5432: connection refused"
		r.Path, r.Route, r.Method = "/orders/17", "/orders/:id", "GET"
		r.Environment, r.FirstRelease, r.LastRelease = "production", "v1.0.0", "v1.2.0"
	})
	add("reset", func(r *errmon.ErrorRecord) {
		r.ExceptionName, r.Message = "*net.OpError", "read tcp: connection reset by peer"
		r.Path, r.Route, r.Method = "/users/3/avatar", "/users/:id/avatar", "POST"
		r.Environment, r.FirstRelease, r.LastRelease = "staging", "v2.0.0", "v2.0.0"
		r.Resolved = true
	})
	add("reversed", func(r *errmon.ErrorRecord) {
		r.ExceptionName, r.Message = "*errors.errorString", "refused to reuse a closed connection"
		r.Path, r.Route, r.Method = "/orders/9/pay", "/orders/:id/pay", "PUT"
		r.Environment, r.FirstRelease, r.LastRelease = "production", "v1.2.0", "v1.2.0"
	})
	add("unicode", func(r *errmon.ErrorRecord) {
		r.ExceptionName, r.Message = "*app.LimitError", "Größe überschritten: Datei zu groß"
		r.Path, r.Route, r.Method = "/upload/ü", "/upload/:name", "POST"
	})
	add("wild", func(r *errmon.ErrorRecord) {
		r.ExceptionName, r.Message = "*app.QuotaError", "disk 100% full on vol_a!b"
		r.Path, r.Route, r.Method = "/admin/disk", "/admin/disk", "DELETE"
	})
	add("tame", func(r *errmon.ErrorRecord) {
		r.ExceptionName, r.Message = "*app.QuotaError", "disk 1000 full on volXa b"
		r.Path, r.Route, r.Method = "/admin/disks", "/admin/disks", "GET"
	})
	return recs
}

// searchFind returns the names of the errors the API lists for q, sorted.
func searchFind(t *testing.T, d *dashEnv, recs map[string]errmon.ErrorRecord, q string, extra ...string) []string {
	t.Helper()
	v := url.Values{"q": {q}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	list := d.apiList(t, v)
	var names []string
	for _, h := range hashesOf(list) {
		for name, r := range recs {
			if r.Hash == h {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	if list.Total != int64(len(list.Errors)) {
		t.Errorf("q=%q: total %d for %d errors", q, list.Total, len(list.Errors))
	}
	return names
}

func TestSearchLanguage(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		recs := searchSeed(t, d)
		all := []string{"dial", "reset", "reversed", "tame", "unicode", "wild"}
		cases := []struct {
			q    string
			want []string
		}{
			// Terms in any order, each anywhere in exception, message or path.
			{"connection refused", []string{"dial", "reversed"}},
			{"refused connection", []string{"dial", "reversed"}},
			{"REFUSED   Connection", []string{"dial", "reversed"}},
			{"refused orders/9", []string{"reversed"}},
			{"OpError peer", []string{"reset"}},
			{"connection nosuchword", nil},
			// A quoted phrase is kept whole.
			{`"connection refused"`, []string{"dial"}},
			{`"refused connection"`, nil},
			{`"reset by" tcp`, []string{"reset"}},
			{`"connection refused`, []string{"dial"}}, // an unclosed quote runs to the end
			// A phrase is in one column: not across two (PostgreSQL's
			// trigram index holds them as one text).
			{`"OpError dial"`, nil},
			{`"refused /orders"`, nil},
			{`"r d"`, nil},
			{`"reset by peer"`, []string{"reset"}},
			// is: is the status.
			{"is:open connection", []string{"dial", "reversed"}},
			{"connection is:resolved", []string{"reset"}},
			{"IS:Resolved", []string{"reset"}},
			// route: contains, method: exact.
			{"route:/orders", []string{"dial", "reversed"}},
			{"route:ORDERS/:id/pay", []string{"reversed"}},
			{"route:users", []string{"reset"}},
			{"method:post", []string{"reset", "unicode"}},
			{"method:POST connection", []string{"reset"}},
			{"method:GE", nil},
			{`route:"/orders/:id" method:get`, []string{"dial"}},
			// env: and release: (first or latest).
			{"env:production", []string{"dial", "reversed"}},
			{"env:staging", []string{"reset"}},
			{"env:prod", nil},
			{"release:v1.2.0", []string{"dial", "reversed"}},
			{"release:v1.0.0", []string{"dial"}},
			{"release:v2.0.0 is:resolved", []string{"reset"}},
			{"release:v2.0.0 is:open", nil},
			{"connection env:production release:v1.0.0 method:GET route:orders", []string{"dial"}},
			// A quoted prefix is text; an unknown prefix is text.
			{`"is:open"`, nil},
			{"tcp: connection", []string{"reset"}},
			// Not understood: filters nothing.
			{"is:muted", nil}, // none is muted here
			{"is:nothing", all},
			{"hash:xyz", all},
			// Unicode, in any order.
			{"überschritten Größe", []string{"unicode"}},
			{"/upload/ü", []string{"unicode"}},
			// LIKE wildcards are literal, in any term.
			{"100% vol_a", []string{"wild"}},
			{"% _", []string{"wild"}},
			{"a!b", []string{"wild"}},
			{"disk full", []string{"tame", "wild"}},
		}
		for _, tc := range cases {
			if got := searchFind(t, d, recs, tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("q=%q: got %v, want %v", tc.q, got, tc.want)
			}
		}
		// The status tab and is: agree: is: takes the place of the tab.
		if got := searchFind(t, d, recs, "is:open reset", "status", "resolved"); got != nil {
			t.Errorf("is:open with status=resolved: got %v, want none", got)
		}
	})
}

// TestSearchHashPrefix: the fingerprint prefix an alert prints (its first
// 12 hex digits) finds the error, whatever the table holds, on every
// database; so does the whole hash, in any case.
func TestSearchHashPrefix(t *testing.T) {
	old := store.SearchWindow
	store.SearchWindow = 10
	defer func() { store.SearchWindow = old }()
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		// 300 errors whose fingerprints share a prefix, and one more, the
		// oldest: outside the window of the 10 newest.
		dashSeedMany(t, d.db, 300, func(i int, r *errmon.ErrorRecord) { r.Hash = fmt.Sprintf("%064x", i+1) })
		old := dashRecord("the old one", 1, 48*time.Hour)
		d.seed(t, old)
		for _, q := range []string{"hash:" + old.Hash[:12], "hash:" + strings.ToUpper(old.Hash), "hash:" + old.Hash[:12] + " message", "HASH:" + old.Hash[:6]} {
			list := d.apiList(t, url.Values{"q": {q}})
			if got := hashesOf(list); !slices.Equal(got, []string{old.Hash}) || list.SearchWindow != 0 || list.Total != 1 {
				t.Errorf("q=%s: got %v (window %d, total %d), want %s over every error", q, got, list.SearchWindow, list.Total, old.Hash[:12])
			}
		}
		if list := d.apiList(t, url.Values{"q": {"hash:" + old.Hash[:12] + " nosuchword"}}); len(list.Errors) != 0 {
			t.Errorf("hash prefix with a term it lacks: %v", hashesOf(list))
		}
		// A prefix that names more errors than the index pass reads
		// searches the window with it, and says so.
		list := d.apiList(t, url.Values{"q": {"hash:0000"}})
		if list.SearchWindow != 10 || len(list.Errors) != 10 {
			t.Errorf("hash:0000: window %d, %d errors; want the 10 of the window", list.SearchWindow, len(list.Errors))
		}
		for _, h := range hashesOf(list) {
			if !strings.HasPrefix(h, "0000") {
				t.Errorf("hash:0000 listed %s", h)
			}
		}
		// The HTML list says what it looked for.
		body := d.do("GET", dashPrefix+"/?q=hash:"+old.Hash[:12], nil).Body.String()
		if !strings.Contains(body, "whose fingerprint starts with <strong>"+old.Hash[:12]+"</strong>") || !strings.Contains(body, old.Hash) {
			t.Errorf("hash search page: %s", dashCut(body[strings.Index(body, "<main"):]))
		}
	})
}

// TestSearchNotice: the list says in words what it searched, and what it
// did not understand or left out.
func TestSearchNotice(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		searchSeed(t, d)
		page := func(q string) string {
			t.Helper()
			body := d.do("GET", dashPrefix+"/?q="+url.QueryEscape(q), nil).Body.String()
			i, j := strings.Index(body, `id="searching"`), strings.Index(body, `<a href="./">Clear</a>`)
			if i < 0 || j < i {
				t.Fatalf("q=%q: no search notice: %s", q, dashCut(body))
			}
			return body[i:j]
		}
		got := page(`refused "tcp 10" method:get route:/orders env:production release:v1.0.0 is:open`)
		for _, want := range []string{
			"Showing open errors whose exception, message or path contains “<strong>refused</strong>” and “<strong>tcp 10</strong>”",
			", whose route contains “<strong>/orders</strong>”", ", with method <strong>GET</strong>",
			", from environment “<strong>production</strong>”", ", first or last seen in release “<strong>v1.0.0</strong>”.",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("notice lacks %q:\n%s", want, got)
			}
		}
		got = page("is:nothing hash:xyz a")
		if !strings.Contains(got, "Not understood, so not applied: “<strong>is:nothing</strong>”, “<strong>hash:xyz</strong>”") {
			t.Errorf("notice does not say what it ignored:\n%s", got)
		}
		got = page(strings.Repeat("w ", 5) + "a b c d e f g h i j k")
		if !strings.Contains(got, "Only the first 8 terms were searched; 4 more were left out.") {
			t.Errorf("notice does not say what it left out:\n%s", got)
		}
		// is: becomes the status tab; the box keeps the rest.
		body := d.do("GET", dashPrefix+"/?q="+url.QueryEscape("connection is:resolved"), nil).Body.String()
		if !strings.Contains(body, `value="connection"`) || !strings.Contains(body, `aria-current="page">Resolved</a>`) {
			t.Errorf("is:resolved is not the Resolved tab: %s", dashCut(body[strings.Index(body, "<main"):]))
		}
		// Text from the box is escaped in the notice.
		if got := page(`<script>x</script>`); !strings.Contains(got, "&lt;script&gt;x&lt;/script&gt;") {
			t.Errorf("notice does not escape: %s", got)
		}
	})
}
