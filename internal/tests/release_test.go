package tests

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/dashboard"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// TestReleaseEnvironmentServerStatus: every sample stores the release,
// environment, server and response status; the error keeps its first and
// latest release and latest environment; the list filters by environment
// and the API's samples carry all four.
func TestReleaseEnvironmentServerStatus(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		withGinMode(t, gin.TestMode)
		mon := func(release string) *testMonitor {
			return newTestMonitor(t, tdb.DB, func(c *errmon.Config) {
				c.Release, c.Environment = release, "staging"
			})
		}
		v1 := mon("v1.4.0")
		r := v1.engine(false)
		r.GET("/pay", func(c *gin.Context) {
			_ = c.Error(errors.New("gateway said no"))
			c.Status(http.StatusBadGateway)
		})
		r.GET("/boom", func(c *gin.Context) { panic("boom in release") })
		serve(r, "GET", "/pay", nil, nil)
		serve(r, "GET", "/boom", nil, nil)
		v1.flush(t)
		v2 := mon("v1.5.0")
		r2 := v2.engine(false)
		r2.GET("/pay", func(c *gin.Context) {
			_ = c.Error(errors.New("gateway said no"))
			c.Status(http.StatusServiceUnavailable)
		})
		serve(r2, "GET", "/pay", nil, nil)
		v2.flush(t)

		var pay errmon.ErrorRecord
		if err := tdb.DB.Where("message = ?", "gateway said no").Take(&pay).Error; err != nil {
			t.Fatal(err)
		}
		if pay.FirstRelease != "v1.4.0" || pay.LastRelease != "v1.5.0" || pay.Environment != "staging" {
			t.Errorf("error: first %q last %q env %q", pay.FirstRelease, pay.LastRelease, pay.Environment)
		}
		var samples []store.ErrorOccurrence
		if err := tdb.DB.Order("id").Find(&samples).Error; err != nil {
			t.Fatal(err)
		}
		host, _ := os.Hostname()
		got := map[string]bool{}
		for _, s := range samples {
			if s.Server != host || s.Environment != "staging" {
				t.Errorf("sample %+v: server %q env %q, want %q staging", s.Message, s.Server, s.Environment, host)
			}
			got[s.Message+"|"+s.Release+"|"+itoa(s.Status)] = true
		}
		for _, want := range []string{"gateway said no|v1.4.0|502", "boom in release|v1.4.0|500", "gateway said no|v1.5.0|503"} {
			if !got[want] {
				t.Errorf("no sample %s among %v", want, got)
			}
		}

		d := newDash(t, tdb, nil)
		if l := d.apiList(t, map[string][]string{"env": {"staging"}}); l.Total != 2 {
			t.Errorf("env=staging lists %d errors, want 2", l.Total)
		}
		if l := d.apiList(t, map[string][]string{"env": {"production"}}); l.Total != 0 {
			t.Errorf("env=production lists %d errors, want 0", l.Total)
		}
		w := d.do("GET", dashPrefix+"/api/errors/"+pay.Hash, nil)
		var detail dashboard.APIErrorDetail
		if err := json.Unmarshal(w.Body.Bytes(), &detail); err != nil {
			t.Fatal(err)
		}
		if detail.FirstRelease != "v1.4.0" || len(detail.Occurrences) == 0 || detail.Occurrences[0].Release != "v1.5.0" ||
			detail.Occurrences[0].Status != 503 || detail.Occurrences[0].Server != host {
			t.Errorf("API detail: %+v", detail)
		}
		page := d.do("GET", dashPrefix+"/", nil).Body.String()
		if !strings.Contains(page, "since <code>v1.4.0</code>") {
			t.Error("the list does not say which release an error first appeared in")
		}
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestAddedColumnsMigrate: tables of the earlier version (without the
// release, environment, server and status columns) get them when a
// monitor starts, and writes work.
func TestAddedColumnsMigrate(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		first := newTestMonitor(t, tdb.DB, nil)
		first.Record(nil, errors.New("before the upgrade"))
		first.flush(t)
		first.Close()
		for _, c := range []struct{ table, column string }{
			{"app_errors", "first_release"}, {"app_errors", "last_release"}, {"app_errors", "environment"}, {"app_errors", "culprit"},
			{"app_error_occurrences", "release_name"}, {"app_error_occurrences", "environment"},
			{"app_error_occurrences", "server"}, {"app_error_occurrences", "status"},
		} {
			if err := tdb.DB.Exec("ALTER TABLE " + c.table + " DROP COLUMN " + c.column).Error; err != nil {
				t.Fatalf("drop %s.%s: %v", c.table, c.column, err)
			}
		}
		tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) { c.Release = "v2" })
		tm.Record(nil, errors.New("before the upgrade"))
		recs := tm.records(t)
		if len(recs) != 1 || recs[0].Count != 2 || recs[0].LastRelease != "v2" {
			t.Fatalf("after the upgrade: %+v", recs)
		}
	})
}
