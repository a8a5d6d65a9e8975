package tests

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/store"
	"gorm.io/gorm"
)

// Hostile search text: whatever q holds, a search is at most
// store.MaxSearchTerms terms and one filter of each kind, cut to
// store.MaxSearchLen, every value a bound parameter with its LIKE
// wildcards escaped.

// searchHostileShapes are search texts built to cost: size, term count,
// wildcards, quotes, prefixes, bytes no database takes.
func searchHostileShapes() map[string]string {
	return map[string]string{
		"10 KB":              strings.Repeat("x", 10<<10),
		"1000 terms":         strings.Repeat("ab ", 1000),
		"1000 distinct":      strings.Repeat("a b c d e f g h i j k l m n o p q r s t u v w x y z ", 40),
		"1000 prefixes":      strings.Repeat("route:a method:GET env:x release:y hash:ab ", 200),
		"wildcards":          strings.Repeat("%_! ", 300),
		"quotes":             strings.Repeat(`"`, 5000),
		"unclosed quote":     `"` + strings.Repeat("a ", 3000),
		"unicode":            strings.Repeat("Größe ü 日本 🎉 ", 500),
		"NUL and bad UTF-8":  "con\x00nection \xff\xfe refused",
		"combining marks":    "e" + strings.Repeat("\u0301", 3000),
		"only spaces":        strings.Repeat(" \t\u3000", 1000),
		"sql":                "'; DROP TABLE app_errors; -- \" OR 1=1",
		"prefix wildcards":   "route:% method:_ env:% release:% hash:%",
		"many empty phrases": strings.Repeat(`"" `, 2000),
	}
}

// TestSearchHostileParse: the parse of any text is bounded.
func TestSearchHostileParse(t *testing.T) {
	for name, q := range searchHostileShapes() {
		s := store.ParseSearch(q)
		searchCheckParse(t, name, q, s)
	}
	if s := store.ParseSearch(strings.Repeat("ab ", 1000)); !slices.Equal(s.Terms, []string{"ab"}) || s.Dropped != 0 {
		t.Errorf("1000 equal terms: %v, %d dropped", s.Terms, s.Dropped)
	}
	if s := store.ParseSearch("a b c d e f g h i j"); len(s.Terms) != store.MaxSearchTerms || s.Dropped != 2 {
		t.Errorf("10 terms: %v, %d dropped", s.Terms, s.Dropped)
	}
	if s := store.ParseSearch("con\x00nection \xff refused"); !slices.Equal(s.Terms, []string{"connection", "refused"}) {
		t.Errorf("NUL and bad UTF-8: %q", s.Terms)
	}
}

// searchCheckParse fails when s, the parse of q, is not bounded.
func searchCheckParse(t *testing.T, name, q string, s store.Search) {
	t.Helper()
	if len(s.Terms) > store.MaxSearchTerms {
		t.Errorf("%s: %d terms", name, len(s.Terms))
	}
	n := 0
	for _, v := range append(slices.Clone(s.Terms), s.Route, s.Method, s.Hash, s.Env, s.Release) {
		n += len(v)
		if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			t.Errorf("%s: %q is not valid text", name, v)
		}
	}
	for _, v := range s.Terms {
		if v == "" {
			t.Errorf("%s: empty term", name)
		}
	}
	if n > store.MaxSearchLen {
		t.Errorf("%s: %d bytes searched, more than %d", name, n, store.MaxSearchLen)
	}
	if s.Hash != "" && !regexp.MustCompile(`^[0-9a-f]{1,64}$`).MatchString(s.Hash) {
		t.Errorf("%s: hash %q", name, s.Hash)
	}
	if s.Method != strings.ToUpper(s.Method) || len(s.Method) > store.MaxMethodBytes {
		t.Errorf("%s: method %q", name, s.Method)
	}
	if s.Status != store.StatusAll && s.Status != store.StatusOpen && s.Status != store.StatusResolved {
		t.Errorf("%s: status %q", name, s.Status)
	}
}

// FuzzSearchParse checks the parse's bounds on any text, and that lifting
// is: out of a text leaves the rest of its search as it was.
func FuzzSearchParse(f *testing.F) {
	for _, q := range searchHostileShapes() {
		f.Add(q)
	}
	for _, q := range []string{`refused "tcp 10" is:open`, `route:"/a b" is:resolved x`, `"is:open" is:open`, `a"b is:open`} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		s := store.ParseSearch(q)
		searchCheckParse(t, "fuzz", q, s)
		rest, status := store.LiftStatus(q)
		if status != s.Status {
			t.Errorf("LiftStatus(%q) status %q, ParseSearch %q", q, status, s.Status)
		}
		r := store.ParseSearch(rest)
		if r.Status != "" || !slices.Equal(r.Terms, s.Terms) || r.Route != s.Route || r.Method != s.Method || r.Hash != s.Hash ||
			r.Env != s.Env || r.Release != s.Release {
			t.Errorf("q=%q: lifted %q parses as %+v, want %+v without status", q, rest, r, s)
		}
	})
}

// TestSearchHostile: hostile texts answer 200 on every database, each
// statement bounded (at most MaxSearchTerms terms, three columns each),
// and find what they contain.
func TestSearchHostile(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		recs := searchSeed(t, d)
		// The statements of the list (the monitor's own goroutines query
		// too: the capture is locked).
		var mu sync.Mutex
		var stmts []dashCapturedStmt
		capture := func(tx *gorm.DB) {
			if sql := tx.Statement.SQL.String(); strings.Contains(sql, "app_errors") {
				mu.Lock()
				stmts = append(stmts, dashCapturedStmt{sql, slices.Clone(tx.Statement.Vars)})
				mu.Unlock()
			}
		}
		if err := d.db.Callback().Query().After("gorm:query").Register("errmon_test:search_capture", capture); err != nil {
			t.Fatal(err)
		}
		if err := d.db.Callback().Row().After("gorm:row").Register("errmon_test:search_capture", capture); err != nil {
			t.Fatal(err)
		}
		for name, q := range searchHostileShapes() {
			mu.Lock()
			stmts = nil
			mu.Unlock()
			for _, target := range []string{"/api/errors?q=", "/?q="} {
				if w := d.do("GET", dashPrefix+target+url.QueryEscape(q), nil); w.Code != http.StatusOK {
					t.Errorf("%s: GET %s: %d %s", name, target, w.Code, dashCut(w.Body.String()))
				}
			}
			mu.Lock()
			got := slices.Clone(stmts)
			mu.Unlock()
			if len(got) == 0 {
				t.Errorf("%s: no statement captured", name)
			}
			for _, st := range got {
				if n := strings.Count(st.sql, "LIKE") + strings.Count(st.sql, "strpos"); n > 4*store.MaxSearchTerms {
					t.Errorf("%s: %d text tests in one statement: %s", name, n, dashCut(st.sql))
				}
				if len(st.sql) > 8<<10 || len(st.vars) > 300 {
					t.Errorf("%s: statement of %d bytes, %d parameters", name, len(st.sql), len(st.vars))
				}
			}
		}
		// Correct as well as bounded: the first terms of a long text are
		// searched; wildcards match themselves; NUL and bad bytes are
		// left out.
		for _, tc := range []struct {
			q    string
			want []string
		}{
			{"connection refused " + strings.Repeat("connection ", 1000), []string{"dial", "reversed"}},
			{"% ! _ " + strings.Repeat("% ", 1000), []string{"wild"}},
			{"con\x00nection \xff\xferefused", []string{"dial", "reversed"}},
			{"Größe " + strings.Repeat("ü ", 3000), []string{"unicode"}},
			{"disk 100% full on vol_a a!b admin nosuchword", nil},
			{"disk 100% full on vol_a a!b admin quota nosuchword", []string{"wild"}}, // the 9th term: not searched
		} {
			if got := searchFind(t, d, recs, tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("q=%.40q: got %v, want %v", tc.q, got, tc.want)
			}
		}
	})
}

// BenchmarkSearchHostile times the hostile texts on the 10k seed of each
// database next to a plain search: none may cost more than a search of
// its first terms.
func BenchmarkSearchHostile(b *testing.B) {
	shapes := searchHostileShapes()
	shapes["plain"] = "timeout"
	shapes["three terms"] = "payment timeout attempt"
	shapes["prefixes"] = "route:orders method:get timeout"
	names := make([]string, 0, len(shapes))
	for name := range shapes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, kind := range dbKinds {
		b.Run(kind, func(b *testing.B) {
			db := scaleDB(b, kind, 10_000)
			var cases []benchCase
			for _, name := range names {
				cases = append(cases, benchCase{"q=" + strings.ReplaceAll(name, " ", "_"), "/dev/error/api/errors?q=" + url.QueryEscape(shapes[name])})
			}
			benchDashboardPages(b, db, cases...)
		})
	}
}
