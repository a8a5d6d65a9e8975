package tests

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"gorm.io/gorm"
)

// Tests of the list's cost bounds: keyset pages, the bounded count, the
// bounded search, the indexes and the plans of every list query.

// dashSeedMany stores n errors in batches: error i is seen i/3 minutes ago
// (three at each time), counts repeat every 4, first-seen times every 5
// and users every 6, so that every order has ties; every third error is
// resolved.
func dashSeedMany(t testing.TB, db *gorm.DB, n int, tune func(i int, r *errmon.ErrorRecord)) []errmon.ErrorRecord {
	t.Helper()
	now := store.DBTime(time.Now())
	recs := make([]errmon.ErrorRecord, n)
	for i := range recs {
		r := dashRecord(fmt.Sprintf("many%d", i), int64(1+i%4), time.Duration(i/3)*time.Minute)
		r.CreatedOn = now.Add(-time.Duration(i%5) * time.Hour)
		r.Resolved = i%3 == 2
		r.Users, r.UsersScale = int64(i%6), 1
		r.Traceback, r.RequestData = "", ""
		if tune != nil {
			tune(i, &r)
		}
		recs[i] = r
	}
	if err := db.CreateInBatches(recs, 200).Error; err != nil {
		t.Fatalf("seed %d errors: %v", n, err)
	}
	return recs
}

// dashListOrder is the order the list shows recs in for sort and status.
func dashListOrder(recs []errmon.ErrorRecord, sort, status string) []string {
	var rows []errmon.ErrorRecord
	for _, r := range recs {
		if status == store.StatusOpen && r.Resolved || status == store.StatusResolved && !r.Resolved {
			continue
		}
		rows = append(rows, r)
	}
	key := func(r errmon.ErrorRecord) int64 {
		switch sort {
		case store.SortCount:
			return r.Count
		case store.SortFirstSeen:
			return r.CreatedOn.UnixNano()
		case store.SortUsers:
			return r.Users
		}
		return r.LastSeen.UnixNano()
	}
	slices.SortFunc(rows, func(a, b errmon.ErrorRecord) int {
		if ka, kb := key(a), key(b); ka != kb {
			if ka > kb {
				return -1
			}
			return 1
		}
		return int(b.ID) - int(a.ID)
	})
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Hash
	}
	return out
}

// TestDashboardKeysetPages walks every order and status filter with the
// API's next cursors, then back with prev: every error is seen once, in
// the list's order (ties broken by id), and previous pages are the pages
// walked.
func TestDashboardKeysetPages(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, func(c *errmon.Config) { c.ListSize = 4 })
		recs := dashSeedMany(t, d.db, 23, nil)
		for _, sort := range []string{store.SortLastSeen, store.SortCount, store.SortFirstSeen, store.SortUsers} {
			for _, status := range []string{store.StatusAll, store.StatusOpen, store.StatusResolved} {
				want := dashListOrder(recs, sort, status)
				base := url.Values{}
				if sort != store.SortLastSeen {
					base.Set("sort", sort)
				}
				if status != "" {
					base.Set("status", status)
				}
				var pages [][]string
				var seen []string
				list := d.apiList(t, base)
				for {
					if len(pages) > 20 {
						t.Fatalf("sort=%s status=%s: more than 20 pages", sort, status)
					}
					pages = append(pages, hashesOf(list))
					seen = append(seen, hashesOf(list)...)
					if len(pages) == 1 && list.Prev != "" {
						t.Errorf("sort=%s status=%s: first page has prev %q", sort, status, list.Prev)
					}
					if list.Next == "" {
						break
					}
					q := dashWithParam(base, "after", list.Next)
					list = d.apiList(t, q)
					if list.Page != 0 || list.Prev == "" {
						t.Errorf("sort=%s status=%s: cursor page: page %d prev %q", sort, status, list.Page, list.Prev)
					}
				}
				if !slices.Equal(seen, want) {
					t.Errorf("sort=%s status=%s: walked %d errors, want %d in the list's order", sort, status, len(seen), len(want))
				}
				// Back from the last page with prev.
				for i := len(pages) - 1; i > 0; i-- {
					if list.Prev == "" {
						t.Fatalf("sort=%s status=%s: page %d has no prev", sort, status, i+1)
					}
					list = d.apiList(t, dashWithParam(base, "before", list.Prev))
					if got := hashesOf(list); !slices.Equal(got, pages[i-1]) {
						t.Errorf("sort=%s status=%s: prev of page %d differs from page %d", sort, status, i+1, i)
					}
				}
				if list.Prev != "" {
					t.Errorf("sort=%s status=%s: back on the first page, prev %q", sort, status, list.Prev)
				}
			}
		}
		// A short way back (rows deleted meanwhile) lands on a full first page.
		first := d.apiList(t, nil)
		second := d.apiList(t, url.Values{"after": {first.Next}})
		d.db.Where("hash = ?", first.Errors[1].Hash).Delete(&errmon.ErrorRecord{})
		back := d.apiList(t, url.Values{"before": {second.Prev}})
		if back.Page != 1 || len(back.Errors) != 4 || back.Prev != "" {
			t.Errorf("prev after a delete: page %d, %d errors, prev %q", back.Page, len(back.Errors), back.Prev)
		}
		// Cursors that do not parse are the first page; page= still works.
		for _, bad := range []string{"x", "1_", "_1", "-1_2", "1_notatime", strings.Repeat("9", 200) + "_1"} {
			list := d.apiList(t, url.Values{"after": {bad}})
			if list.Page != 1 || len(list.Errors) != 4 {
				t.Errorf("after=%q: page %d with %d errors", dashCut(bad), list.Page, len(list.Errors))
			}
		}
		if list := d.apiList(t, url.Values{"page": {"2"}}); list.Page != 2 || list.Prev == "" || list.Next == "" {
			t.Errorf("page=2: page %d prev %q next %q", list.Page, list.Prev, list.Next)
		}
		// The HTML list links next and previous pages by cursor, and keeps
		// the filters in them.
		body := d.do("GET", dashPrefix+"/?status=open&sort=count", nil).Body.String()
		if !strings.Contains(body, `rel="next"`) || !strings.Contains(body, "after=") || !strings.Contains(body, "sort=count&amp;status=open") {
			t.Errorf("list page lacks a cursor link to the next page: %s", dashCut(body))
		}
		next := d.apiList(t, url.Values{"status": {"open"}, "sort": {"count"}}).Next
		body = d.do("GET", dashPrefix+"/?status=open&sort=count&after="+url.QueryEscape(next), nil).Body.String()
		if !strings.Contains(body, `rel="prev"`) || !strings.Contains(body, "before=") || !strings.Contains(body, "4 of ") {
			t.Errorf("cursor page lacks its previous link or range: %s", dashCut(body))
		}
		// A bulk action from a cursor page comes back to it.
		w := d.do("POST", dashPrefix+"/bulk", url.Values{"action": {"resolve"}, "after": {next}, "sort": {"count"}, "page": {"0"}})
		if loc := w.Header().Get("Location"); !strings.Contains(loc, "after="+url.QueryEscape(next)) || strings.Contains(loc, "page=") {
			t.Errorf("bulk from a cursor page goes back to %q", loc)
		}
	})
}

// dashWithParam is base with one more key.
func dashWithParam(base url.Values, k, v string) url.Values {
	out := url.Values{}
	for key, vs := range base {
		out[key] = slices.Clone(vs)
	}
	out.Set(k, v)
	return out
}

// dashCut shortens a text for a failure message.
func dashCut(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// TestDashboardBoundedCount: past countCap errors the list counts no
// further and says so ("1,000+"); page numbers reach the counted pages.
func TestDashboardBoundedCount(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, func(c *errmon.Config) { c.ListSize = 50 })
		dashSeedMany(t, d.db, store.CountCap+7, nil)
		list := d.apiList(t, nil)
		if list.Total != store.CountCap || !list.TotalIsLowerBound || list.Pages != store.CountCap/50 {
			t.Errorf("total %d lower bound %v pages %d, want %d, true, %d", list.Total, list.TotalIsLowerBound, list.Pages, store.CountCap, store.CountCap/50)
		}
		body := d.do("GET", dashPrefix+"/", nil).Body.String()
		if !strings.Contains(body, "1,000+") || !strings.Contains(body, "1–50 of 1,000+") {
			i := strings.Index(body, "<h1>")
			t.Errorf("list does not show the bounded count: %s", dashCut(body[i:]))
		}
		// The open errors are fewer than the cap: counted exactly.
		open := d.apiList(t, url.Values{"status": {"open"}})
		if want := int64((store.CountCap + 7) - (store.CountCap+7)/3); open.Total != want || open.TotalIsLowerBound {
			t.Errorf("open: total %d lower bound %v, want %d exact", open.Total, open.TotalIsLowerBound, want)
		}
		// A deep page number is clamped to the last page counted, which
		// says so and links onwards by cursor.
		deep := d.apiList(t, url.Values{"page": {"2500"}})
		if deep.Page != store.CountCap/50 || deep.Next == "" || len(deep.Errors) != 50 {
			t.Errorf("page=2500: page %d next %q, %d errors", deep.Page, deep.Next, len(deep.Errors))
		}
		body = d.do("GET", dashPrefix+"/?page=2500", nil).Body.String()
		if !strings.Contains(body, `id="clamped"`) || !strings.Contains(body, `rel="next"`) {
			t.Errorf("clamped page does not say so: %s", dashCut(body))
		}
		beyond := d.apiList(t, url.Values{"after": {deep.Next}})
		if len(beyond.Errors) != 7 || beyond.Next != "" {
			t.Errorf("after the counted pages: %d errors, next %q", len(beyond.Errors), beyond.Next)
		}
		// A search counts ten pages.
		found := d.apiList(t, url.Values{"q": {"message of many"}})
		if found.Total != 500 || !found.TotalIsLowerBound || found.Pages != 10 || len(found.Errors) != 50 || found.Next == "" {
			t.Errorf("search: total %d lower bound %v pages %d, %d errors", found.Total, found.TotalIsLowerBound, found.Pages, len(found.Errors))
		}
		body = d.do("GET", dashPrefix+"/?q=message+of+many", nil).Body.String()
		if !strings.Contains(body, "1–50 of 500+") {
			i := strings.Index(body, "<h1>")
			t.Errorf("search does not show its bounded count: %s", dashCut(body[i:]))
		}
	})
}

// TestDashboardSearchWindow: where no index serves the search, it looks at
// the newest errors only and says so; with PostgreSQL's trigram indexes it
// finds every match.
func TestDashboardSearchWindow(t *testing.T) {
	old := store.SearchWindow
	store.SearchWindow = 10
	defer func() { store.SearchWindow = old }()
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		dashSeedMany(t, d.db, 15, func(i int, r *errmon.ErrorRecord) {
			if i == 2 || i == 14 { // a new one and an old one
				r.Message = "the needle in q7 it"
			}
		})
		list := d.apiList(t, url.Values{"q": {"NEEDLE"}})
		got := len(list.Errors)
		// PostgreSQL's trigram indexes serve the search (the test server has
		// pg_trgm); elsewhere it is bounded. The monitor's migration made
		// the indexes, and the answers below tell which search ran.
		trigram := tdb.Name == "postgres"
		if has := d.db.Migrator().HasIndex(&errmon.ErrorRecord{}, store.TrigramIndex); has != trigram {
			t.Fatalf("%s: trigram index %v, want %v", tdb.Name, has, trigram)
		}
		if trigram {
			if got != 2 || list.Total != 2 || list.TotalIsLowerBound || list.SearchWindow != 0 {
				t.Errorf("trigram search: %d errors, total %d (lower bound %v), window %d; want 2 exact", got, list.Total, list.TotalIsLowerBound, list.SearchWindow)
			}
		} else if got != 1 || list.Total != 1 || !list.TotalIsLowerBound || list.SearchWindow != 10 {
			t.Errorf("bounded search: %d errors, total %d (lower bound %v), window %d; want 1 of window 10", got, list.Total, list.TotalIsLowerBound, list.SearchWindow)
		}
		body := d.do("GET", dashPrefix+"/?q=needle", nil).Body.String()
		if says := strings.Contains(body, "Searched the 10 most recent errors"); says == trigram {
			i := strings.Index(body, "<main>")
			t.Errorf("search window notice shown %v with trigram %v: %s", says, trigram, dashCut(body[i:]))
		}
		// A term too short for trigrams searches the window everywhere.
		short := d.apiList(t, url.Values{"q": {"Q7"}})
		if len(short.Errors) != 1 || short.Total != 1 || short.SearchWindow != 10 {
			t.Errorf("q=Q7: %d errors, total %d, window %d; want 1 of window 10", len(short.Errors), short.Total, short.SearchWindow)
		}
		// Fewer errors than the window: every one is searched, exactly.
		d.db.Where("1 = 1").Delete(&errmon.ErrorRecord{})
		dashSeedMany(t, d.db, 5, func(i int, r *errmon.ErrorRecord) { r.Message = "needle" })
		if list := d.apiList(t, url.Values{"q": {"needle"}}); list.Total != 5 || list.TotalIsLowerBound || list.SearchWindow != 0 {
			t.Errorf("small table: total %d lower bound %v window %d", list.Total, list.TotalIsLowerBound, list.SearchWindow)
		}
	})
}

// TestDashboardIndexMigration: a table of an earlier version (its
// single-column indexes) gets the list's indexes, and loses the ones they
// replace, when the monitor starts; on PostgreSQL, the one-column trigram
// indexes give way to the one on the three searched columns.
func TestDashboardIndexMigration(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		st := store.New(tdb.DB)
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		mig := tdb.DB.Migrator()
		for _, idx := range store.ListIndexes[3:] {
			if err := mig.DropIndex(&errmon.ErrorRecord{}, idx.Name); err != nil {
				t.Fatalf("drop %s: %v", idx.Name, err)
			}
		}
		if err := tdb.DB.Exec("CREATE INDEX idx_app_errors_last_seen ON app_errors (last_seen)").Error; err != nil {
			t.Fatal(err)
		}
		// An earlier version's trigram index, on one column, over a few
		// errors.
		oldTrigram := "idx_app_errors_trgm_message"
		if tdb.Name == "postgres" {
			for _, s := range []string{"DROP INDEX " + store.TrigramIndex,
				"CREATE INDEX " + oldTrigram + " ON app_errors USING gin (lower(message) public.gin_trgm_ops)"} {
				if err := tdb.DB.Exec(s).Error; err != nil {
					t.Fatal(err)
				}
			}
			dashSeedMany(t, tdb.DB, 30, nil)
		}
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if tdb.Name == "postgres" {
			if mig.HasIndex(&errmon.ErrorRecord{}, oldTrigram) || !mig.HasIndex(&errmon.ErrorRecord{}, store.TrigramIndex) {
				t.Errorf("trigram indexes after migration: %s %v, %s %v", oldTrigram, mig.HasIndex(&errmon.ErrorRecord{}, oldTrigram),
					store.TrigramIndex, mig.HasIndex(&errmon.ErrorRecord{}, store.TrigramIndex))
			}
			// The planner has the statistics of the expression it indexes.
			var stats int64
			tdb.DB.Raw("SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = ?", store.TrigramIndex).Scan(&stats)
			if stats == 0 {
				t.Error("no statistics of the trigram index's expression after the migration made it")
			}
		}
		for _, idx := range store.ListIndexes {
			if !mig.HasIndex(&errmon.ErrorRecord{}, idx.Name) {
				t.Errorf("index %s missing after migration", idx.Name)
			}
		}
		if mig.HasIndex(&errmon.ErrorRecord{}, "idx_app_errors_last_seen") {
			t.Error("old index idx_app_errors_last_seen kept")
		}
	})
}

// dashCapturedSQL records the statements run on db (with their parameters)
// while it is on.
type dashCapturedSQL struct {
	on    bool
	stmts []dashCapturedStmt
}

type dashCapturedStmt struct {
	sql  string
	vars []any
}

// dashCaptureSQL records the queries run on db.
func dashCaptureSQL(t *testing.T, db *gorm.DB) *dashCapturedSQL {
	t.Helper()
	c := &dashCapturedSQL{}
	rec := func(tx *gorm.DB) {
		if c.on && tx.Statement.SQL.Len() > 0 {
			c.stmts = append(c.stmts, dashCapturedStmt{tx.Statement.SQL.String(), slices.Clone(tx.Statement.Vars)})
		}
	}
	if err := db.Callback().Query().After("gorm:query").Register("errmon_test:capture", rec); err != nil {
		t.Fatal(err)
	}
	if err := db.Callback().Row().After("gorm:row").Register("errmon_test:capture", rec); err != nil {
		t.Fatal(err)
	}
	return c
}

// dashQueryPlan returns the plan of one statement, a line per step, with
// PostgreSQL told to avoid sequential scans and sorts (so that a small
// table shows whether an index serves the query at all).
func dashQueryPlan(t *testing.T, tdb testDB, st dashCapturedStmt) []string {
	t.Helper()
	var lines []string
	switch tdb.Name {
	case "sqlite":
		var rows []struct {
			ID, Parent, Notused int
			Detail              string
		}
		if err := tdb.DB.Raw("EXPLAIN QUERY PLAN "+st.sql, st.vars...).Scan(&rows).Error; err != nil {
			t.Fatalf("explain %s: %v", dashCut(st.sql), err)
		}
		for _, r := range rows {
			lines = append(lines, r.Detail)
		}
	case "postgres":
		err := tdb.DB.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SET LOCAL enable_seqscan = off").Error; err != nil {
				return err
			}
			if err := tx.Exec("SET LOCAL enable_sort = off").Error; err != nil {
				return err
			}
			return tx.Raw("EXPLAIN "+st.sql, st.vars...).Scan(&lines).Error
		})
		if err != nil {
			t.Fatalf("explain %s: %v", dashCut(st.sql), err)
		}
	case "mysql":
		// With the values written in: a placeholder hides LIMIT and the
		// ranges from the optimizer, which then plans for any value.
		rows, err := tdb.DB.Raw("EXPLAIN " + tdb.DB.Dialector.Explain(st.sql, st.vars...)).Rows()
		if err != nil {
			t.Fatalf("explain %s: %v", dashCut(st.sql), err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var parts []string
			for i, c := range cols {
				v := vals[i]
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				parts = append(parts, fmt.Sprintf("%s=%v", c, v))
			}
			lines = append(lines, strings.Join(parts, " "))
		}
	}
	return lines
}

// dashPlanProblem says what is wrong with the plan of a list statement: a
// full scan of app_errors, or a sort that no index spares. A search may
// sort its matches: on SQLite and MySQL those of the window it reads (one
// index range), on PostgreSQL those a trigram index finds (unless the
// planner finds walking the order's index cheaper).
func dashPlanProblem(kind, sql string, plan []string) string {
	text := strings.Join(plan, "\n")
	search := strings.Contains(sql, "LIKE")
	switch kind {
	case "sqlite":
		for _, l := range plan {
			if strings.TrimSpace(l) == "SCAN app_errors" {
				return "full scan"
			}
		}
		if strings.Contains(text, "TEMP B-TREE") && !search {
			return "sort"
		}
	case "postgres":
		if strings.Contains(text, "Seq Scan on app_errors") {
			return "full scan"
		}
		if !search && strings.Contains(text, "Sort") {
			return "sort"
		}
	case "mysql":
		for _, l := range plan {
			if strings.Contains(l, "table=app_errors ") && strings.Contains(l, " type=ALL ") {
				return "full scan"
			}
			if strings.Contains(l, "filesort") && !search {
				return "sort"
			}
		}
	}
	return ""
}

// TestDashboardListPlans checks with EXPLAIN every statement of the list:
// each order and status filter, first, numbered and cursor pages, the
// counts and the search; none scans app_errors whole or sorts it.
func TestDashboardListPlans(t *testing.T) {
	old, oldWalk := store.SearchWindow, store.SearchWalk
	store.SearchWindow = 500 // a search reads a window of the table
	store.SearchWalk = 1     // on PostgreSQL, walks some of it, then asks the trigram indexes
	defer func() { store.SearchWindow, store.SearchWalk = old, oldWalk }()
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, func(c *errmon.Config) { c.ListSize = 20 })
		dashSeedMany(t, d.db, 2000, nil)
		switch tdb.Name {
		case "postgres":
			d.db.Exec("ANALYZE app_errors")
		case "mysql":
			d.db.Exec("ANALYZE TABLE app_errors")
		case "sqlite":
			d.db.Exec("ANALYZE")
		}
		capture := dashCaptureSQL(t, d.db)
		var queries []url.Values
		for _, sort := range []string{"", store.SortCount, store.SortFirstSeen, store.SortUsers} {
			for _, status := range []string{"", store.StatusOpen, store.StatusResolved} {
				base := url.Values{"sort": {sort}, "status": {status}}
				first := d.apiList(t, base)
				queries = append(queries, base, dashWithParam(base, "page", "3"),
					dashWithParam(base, "after", first.Next), dashWithParam(base, "before", first.Next),
					dashWithParam(base, "q", "message of many1"))
			}
		}
		capture.on = true
		for _, q := range queries {
			d.apiList(t, q)
		}
		capture.on = false
		seen := map[string]bool{}
		for _, st := range capture.stmts {
			if !strings.Contains(st.sql, "app_errors") || seen[st.sql] {
				continue
			}
			seen[st.sql] = true
			plan := dashQueryPlan(t, tdb, st)
			if p := dashPlanProblem(tdb.Name, st.sql, plan); p != "" {
				t.Errorf("%s: %s\n%s", p, dashCut(st.sql), dashCut(strings.Join(plan, "\n")))
			} else if testing.Verbose() {
				t.Logf("%s\n  %s", dashCut(st.sql), strings.Join(plan, "\n  "))
			}
		}
		if len(seen) < 20 {
			t.Errorf("only %d distinct list statements checked", len(seen))
		}
	})
}

// TestDashboardSearchWithoutTrigram: on a PostgreSQL where pg_trgm cannot
// be had, the monitor starts all the same, the search is bounded to the
// newest errors, and the log says why once.
func TestDashboardSearchWithoutTrigram(t *testing.T) {
	tdb := openPostgres(t)
	old := store.TrigramExtension
	store.TrigramExtension = "errmon_no_such_extension"
	defer func() { store.TrigramExtension = old }()
	var logged strings.Builder
	var mu sync.Mutex
	d := newDash(t, tdb, func(c *errmon.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&dashLockedWriter{w: &logged, mu: &mu}, nil))
	})
	// The monitor started (newDash fails otherwise); a store migrated on
	// the same database the same way finds the search unindexed, and says
	// why. The monitor's own state shows in its log line, checked below.
	st := store.New(tdb.DB)
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate without the extension: %v", err)
	}
	if trigram, missing := st.SearchIndexed(); trigram || missing == "" {
		t.Fatalf("search state trigram=%v missing=%q without the extension", trigram, missing)
	}
	if d.db.Migrator().HasIndex(&errmon.ErrorRecord{}, store.TrigramIndex) {
		t.Error("trigram index created without the extension")
	}
	dashSeedMany(t, d.db, 6, func(i int, r *errmon.ErrorRecord) {
		if i == 3 {
			r.Message = "Needle"
		}
	})
	for range 3 {
		if list := d.apiList(t, url.Values{"q": {"needle"}}); list.Total != 1 || len(list.Errors) != 1 {
			t.Errorf("bounded search: total %d, %d errors", list.Total, len(list.Errors))
		}
		d.do("GET", dashPrefix+"/?q=needle", nil)
	}
	mu.Lock()
	out := logged.String()
	mu.Unlock()
	// errmon logs this only when its store found the search unindexed.
	if n := strings.Count(out, "pg_trgm extension is not available"); n != 1 {
		t.Errorf("logged %d times, want once: %s", n, dashCut(out))
	}
	if !strings.Contains(out, "err=") {
		t.Errorf("the log line does not say why: %s", dashCut(out))
	}
}

// dashLockedWriter serializes writes to w.
type dashLockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *dashLockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
