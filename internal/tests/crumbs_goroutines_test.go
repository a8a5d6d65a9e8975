package tests

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// TestCrumbsFromTheRequestsGoroutines: goroutines of a request that log
// at once, with the gin.Context and with the request's context, keep
// every breadcrumb (the last 32 stored, the rest counted), in time order;
// an error logged during the request is stored with the breadcrumbs
// before it. Run with -race.
func TestCrumbsFromTheRequestsGoroutines(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, func(c *errmon.Config) { c.Output = io.Discard })
	log := slog.New(tm.SlogHandler(slog.NewTextHandler(io.Discard, nil)))
	r := tm.engine(false)
	r.GET("/fan-out", func(c *gin.Context) {
		log.InfoContext(c, "fan out") // the gin.Context's ring, before the goroutines share it
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					if g%2 == 0 {
						log.InfoContext(c, fmt.Sprintf("worker %d step %d", g, i))
					} else {
						log.InfoContext(c.Request.Context(), fmt.Sprintf("worker %d step %d", g, i))
					}
				}
			}()
		}
		wg.Wait()
		log.ErrorContext(c, "crumbs: a worker failed")
		panic("crumbs: fan-out failed")
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/fan-out")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	recs := tm.records(t)

	list, dropped := crumbsOf(t, recordWithMessage(t, recs, "crumbs: fan-out failed").RequestData)
	if len(list) != 32 || dropped != 1+80+1-32 {
		t.Errorf("%d breadcrumbs kept, %d dropped; want 32 and %d", len(list), dropped, 1+80+1-32)
	}
	for i := 1; i < len(list); i++ {
		if list[i].T < list[i-1].T {
			t.Errorf("breadcrumb %d at %s, before the one ahead of it (%s)", i, list[i].T, list[i-1].T)
		}
	}
	if n := len(list); n > 0 && (list[n-1].Level != "ERROR" || list[n-1].Message != "crumbs: a worker failed") {
		t.Errorf("the last breadcrumb %+v, want the logged error", list[n-1])
	}

	logged, dropped := crumbsOf(t, recordWithMessage(t, recs, "crumbs: a worker failed").RequestData)
	if len(logged) != 32 || dropped != 1+80-32 || logged[31].Level != "INFO" {
		t.Errorf("the logged error's context: %d breadcrumbs, %d dropped; want the 32 before it and %d", len(logged), dropped, 1+80-32)
	}
}
