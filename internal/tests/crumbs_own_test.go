package tests

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// TestCrumbsNeverErrmonsOwnQueries: errmon's own statements are never
// breadcrumbs, even when they run with a request's context: a request
// that serves the dashboard's pages within itself (its list, a detail and
// the API, with the request's context and with the gin.Context as theirs)
// and then fails keeps only its own log record and query.
func TestCrumbsNeverErrmonsOwnQueries(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		withGinMode(t, gin.TestMode)
		tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) { c.Output = io.Discard })
		if err := tdb.DB.Use(tm.GormPlugin()); err != nil {
			t.Fatal(err)
		}
		if err := tdb.DB.AutoMigrate(&crumbAccount{}); err != nil {
			t.Fatal(err)
		}
		tm.Record(nil, errors.New("crumbs: an error for the dashboard to show"))
		seeded := tm.records(t)[0].Hash
		log := slog.New(tm.SlogHandler(nil))
		r := gin.New()
		tm.InitApp(r)
		r.GET("/inside", func(c *gin.Context) {
			for _, path := range []string{"/dev/error/", "/dev/error/" + seeded, "/dev/error/api/errors/" + seeded} {
				for _, gc := range []bool{false, true} {
					req := httptest.NewRequest("GET", path, nil).WithContext(c.Request.Context())
					if gc {
						req = req.WithContext(c) // the dashboard's c.Request.Context() is this gin.Context
					}
					req.RemoteAddr, req.Host = "127.0.0.1:40000", "127.0.0.1"
					w := httptest.NewRecorder()
					r.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						t.Errorf("%s inside the request: %d", path, w.Code)
					}
				}
			}
			log.InfoContext(c, "served the dashboard")
			var n int64
			tdb.DB.WithContext(c).Model(&crumbAccount{}).Count(&n)
			panic("crumbs: failed after the dashboard")
		})
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		resp, err := http.Get(srv.URL + "/inside")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		rec := recordWithMessage(t, tm.records(t), "crumbs: failed after the dashboard")
		list, dropped := crumbsOf(t, rec.RequestData)
		if len(list) != 2 || dropped != 0 || list[0].Message != "served the dashboard" || !strings.Contains(list[1].SQL, "crumb_accounts") {
			t.Errorf("%d breadcrumbs (%d dropped), want the request's log record and query only:\n%s", len(list), dropped, rec.RequestData)
		}
		if strings.Contains(rec.RequestData, "app_error") {
			t.Errorf("errmon's own statements among the breadcrumbs:\n%s", rec.RequestData)
		}
	})
}
