package tests

import (
	"net/http"
	"testing"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// TestSamplesPerOccurrence: three requests for different ids in one flush
// leave three samples (distinct paths first), not one per flush; repeats
// of one path keep its newest.
func TestSamplesPerOccurrence(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		tm := newTestMonitor(t, tdb.DB, nil)
		r := tm.engine(false)
		r.GET("/orders/:id", func(c *gin.Context) {
			panic("order " + c.Param("id") + " is broken")
		})
		for _, id := range []string{"1", "2", "3", "1", "1"} {
			if w := serve(r, "GET", "/orders/"+id, nil, nil); w.Code != http.StatusInternalServerError {
				t.Fatalf("status %d", w.Code)
			}
		}
		recs := tm.records(t)
		if len(recs) != 1 || recs[0].Count != 5 {
			t.Fatalf("records %+v", recs)
		}
		var samples []store.ErrorOccurrence
		if err := tdb.DB.Order("seen_at, id").Find(&samples).Error; err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, s := range samples {
			paths = append(paths, s.Path)
		}
		if len(samples) != 3 || paths[0] != "/orders/2" || paths[1] != "/orders/3" || paths[2] != "/orders/1" {
			t.Errorf("samples %q, want /orders/2, /orders/3 and the newest /orders/1", paths)
		}
	})
}
