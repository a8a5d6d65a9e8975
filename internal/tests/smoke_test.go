package tests

import (
	"testing"

	"github.com/gin-gonic/gin"
)

func TestSmokeHarness(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		tm := newTestMonitor(t, tdb.DB, nil)
		r := tm.engine(false)
		r.GET("/x", func(c *gin.Context) { panic("smoke") })
		if w := serve(r, "GET", "/x", nil, nil); w.Code != 500 {
			t.Fatalf("status %d", w.Code)
		}
		if recs := tm.records(t); len(recs) != 1 || recs[0].Message != "smoke" {
			t.Fatalf("records: %+v", recs)
		}
	})
}
