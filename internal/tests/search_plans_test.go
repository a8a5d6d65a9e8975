package tests

import (
	"net/url"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
)

// TestSearchPlans checks with EXPLAIN the statements of the search's
// shapes (several terms, each prefix, a fingerprint prefix, a term too
// short for trigrams): none scans app_errors whole. A fingerprint prefix
// reads the hash index, then sorts the few errors it names.
func TestSearchPlans(t *testing.T) {
	old, oldWalk := store.SearchWindow, store.SearchWalk
	store.SearchWindow = 500 // a search without an index reads a window of the table
	store.SearchWalk = 1     // one with PostgreSQL's trigram indexes walks some of it, then asks them
	defer func() { store.SearchWindow, store.SearchWalk = old, oldWalk }()
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, func(c *errmon.Config) { c.ListSize = 20 })
		recs := dashSeedMany(t, d.db, 2000, nil)
		switch tdb.Name {
		case "postgres":
			d.db.Exec("ANALYZE app_errors")
		case "mysql":
			d.db.Exec("ANALYZE TABLE app_errors")
		case "sqlite":
			d.db.Exec("ANALYZE")
		}
		capture := dashCaptureSQL(t, d.db)
		capture.on = true
		for _, q := range []string{
			"many1 message", `"message of many1" errorString`, "Q7 message", "route:/items method:get",
			"env:production release:v1", "is:open many2", "hash:" + recs[1234].Hash[:12], "hash:" + recs[5].Hash[:12] + " message",
			"route:items many3 is:resolved",
		} {
			for _, sort := range []string{"", store.SortCount} {
				list := d.apiList(t, url.Values{"q": {q}, "sort": {sort}})
				if list.Next != "" {
					d.apiList(t, url.Values{"q": {q}, "sort": {sort}, "after": {list.Next}})
				}
			}
		}
		capture.on = false
		seen := map[string]bool{}
		hashRead := false
		for _, st := range capture.stmts {
			if !strings.Contains(st.sql, "app_errors") || seen[st.sql] {
				continue
			}
			seen[st.sql] = true
			plan := dashQueryPlan(t, tdb, st)
			// Every statement here is a search, which may sort what it
			// reads (a window, or what an index found); none may read an
			// index whole.
			p := dashPlanProblem(tdb.Name, st.sql, plan)
			if p == "sort" {
				p = ""
			}
			edge := strings.HasPrefix(st.sql, "SELECT id, last_seen FROM") // the window's end: SearchWindow+1 entries of the order's index
			for _, l := range plan {
				if !edge && (tdb.Name == "sqlite" && strings.HasPrefix(strings.TrimSpace(l), "SCAN app_errors") ||
					tdb.Name == "mysql" && strings.Contains(l, "table=app_errors ") && strings.Contains(l, " type=index ")) {
					p = "a whole index read"
				}
			}
			if p != "" {
				t.Errorf("%s: %s\n%s", p, dashCut(st.sql), dashCut(strings.Join(plan, "\n")))
			}
			hashRead = hashRead || strings.Contains(st.sql, "hash IN")
		}
		if !hashRead {
			t.Error("no fingerprint search read the errors its prefix names")
		}
		if len(seen) < 10 {
			t.Errorf("only %d distinct search statements checked", len(seen))
		}
	})
}
