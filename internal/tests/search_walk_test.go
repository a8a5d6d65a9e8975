package tests

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
)

// TestSearchWalk: a search that PostgreSQL's trigram indexes serve walks
// the newest errors first (store.SearchWalk per match counted), then asks the
// indexes; whichever finds the matches, the pages, their order, the
// cursors and the bounded count are the same. The terms here are common
// in the walk, rare, more than a count cap but older than the walk, and
// fewer but older; among the open errors the common term is too rare for
// the walk to find a count cap of it.
// On SQLite and MySQL the same searches read the window, which holds
// every error here.
func TestSearchWalk(t *testing.T) {
	old := store.SearchWalk
	store.SearchWalk = 2 // 200 errors for a count cap of 100
	defer func() { store.SearchWalk = old }()
	const size, limit = 10, 100 // the page, and a search's count cap for it
	terms := map[string]func(i int) bool{
		"zcommonz": func(i int) bool { return i%3 != 0 },
		"zrarez":   func(i int) bool { return i == 3 || i == 500 || i == 998 },
		"zoldz":    func(i int) bool { return i >= 800 },
		"zbeyondz": func(i int) bool { return i >= 600 && i < 650 },
		"znonez":   func(i int) bool { return false },
	}
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, func(c *errmon.Config) { c.ListSize = size })
		recs := dashSeedMany(t, d.db, 1000, func(i int, r *errmon.ErrorRecord) {
			for term, match := range terms {
				if match(i) {
					r.Message += " " + term
				}
			}
		})
		if tdb.Name == "postgres" {
			d.db.Exec("ANALYZE app_errors")
		}
		for term, match := range terms {
			var matched []errmon.ErrorRecord
			for i, r := range recs {
				if match(i) {
					matched = append(matched, r)
				}
			}
			for _, sort := range []string{store.SortLastSeen, store.SortCount, store.SortFirstSeen, store.SortUsers} {
				for _, status := range []string{store.StatusAll, store.StatusOpen} {
					name := fmt.Sprintf("q=%s sort=%s status=%s", term, sort, status)
					want := dashListOrder(matched, sort, status)
					base := url.Values{"q": {strings.ToUpper(term)}, "sort": {sort}, "status": {status}}
					first := d.apiList(t, base)
					wantTotal := min(int64(len(want)), limit)
					if first.Total != wantTotal || first.TotalIsLowerBound != (len(want) > limit) || first.Page != 1 || first.SearchWindow != 0 {
						t.Errorf("%s: total %d (lower bound %v) page %d window %d, want %d of %d", name, first.Total, first.TotalIsLowerBound,
							first.Page, first.SearchWindow, wantTotal, len(want))
					}
					if got := hashesOf(first); !slices.Equal(got, want[:min(size, len(want))]) {
						t.Errorf("%s: page 1 is not the first %d matches in the list's order", name, size)
					}
					// A numbered page, and one beyond the counted pages
					// (clamped to the last).
					if len(want) > size {
						p2 := d.apiList(t, dashWithParam(base, "page", "2"))
						if got := hashesOf(p2); p2.Page != 2 || !slices.Equal(got, want[size:min(2*size, len(want))]) {
							t.Errorf("%s: page=2 is page %d, not the matches that follow page 1", name, p2.Page)
						}
					}
					pages := max(int(wantTotal+size-1)/size, 1)
					deep := d.apiList(t, dashWithParam(base, "page", "99"))
					if deep.Page != pages || deep.Pages != pages || deep.Total != wantTotal {
						t.Errorf("%s: page=99 served page %d of %d (total %d), want the last page %d", name, deep.Page, deep.Pages, deep.Total, pages)
					} else if from := (pages - 1) * size; len(want) > 0 && !slices.Equal(hashesOf(deep), want[from:min(from+size, len(want))]) {
						t.Errorf("%s: page=99 is not the last page counted", name)
					}
					if sort == store.SortFirstSeen {
						continue // the cursors of the other orders walk the same code
					}
					// Every match, by next cursors past the count cap, then
					// one page back.
					seen := hashesOf(first)
					list := first
					for list.Next != "" && len(seen) <= len(want) {
						prev := list
						list = d.apiList(t, dashWithParam(base, "after", list.Next))
						if list.Total != wantTotal || list.TotalIsLowerBound != (len(want) > limit) {
							t.Errorf("%s: cursor page counts %d (lower bound %v), want %d", name, list.Total, list.TotalIsLowerBound, wantTotal)
						}
						seen = append(seen, hashesOf(list)...)
						if len(seen) == 2*size {
							back := d.apiList(t, dashWithParam(base, "before", list.Prev))
							if !slices.Equal(hashesOf(back), hashesOf(prev)) {
								t.Errorf("%s: prev of page 2 is not page 1", name)
							}
						}
					}
					if !slices.Equal(seen, want) {
						t.Errorf("%s: the cursors walked %d errors, want the %d matches in the list's order", name, len(seen), len(want))
					}
				}
			}
		}
	})
}
