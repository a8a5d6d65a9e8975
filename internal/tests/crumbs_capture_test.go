package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/dashboard"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// crumbAccount is an application table the breadcrumb tests query.
type crumbAccount struct {
	ID       uint
	Name     string
	Password string
}

// storedCrumb is one stored breadcrumb.
type storedCrumb struct {
	T       string         `json:"t"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Attrs   map[string]any `json:"attrs"`
	SQL     string         `json:"sql"`
	MS      *float64       `json:"ms"`
	Rows    *int64         `json:"rows"`
	Error   string         `json:"error"`
}

// crumbsOf decodes the breadcrumbs of a stored context.
func crumbsOf(t *testing.T, data string) (list []storedCrumb, dropped int) {
	t.Helper()
	var ctx struct {
		Breadcrumbs []storedCrumb `json:"breadcrumbs"`
		Dropped     int           `json:"breadcrumbs_dropped"`
	}
	if err := json.Unmarshal([]byte(data), &ctx); err != nil {
		t.Fatalf("stored context is not JSON: %v\n%s", err, data)
	}
	return ctx.Breadcrumbs, ctx.Dropped
}

// recordWithMessage returns the stored error with message msg.
func recordWithMessage(t *testing.T, recs []errmon.ErrorRecord, msg string) errmon.ErrorRecord {
	t.Helper()
	for _, r := range recs {
		if r.Message == msg {
			return r
		}
	}
	t.Fatalf("no error %q stored among %d", msg, len(recs))
	return errmon.ErrorRecord{}
}

// crumbsApp serves a route that logs three records and runs two queries,
// with the gin.Context and with the request's context, then panics; the
// dashboard is mounted too. It returns the server and the monitor.
func crumbsApp(t *testing.T, db *gorm.DB) (*httptest.Server, *testMonitor) {
	t.Helper()
	withGinMode(t, gin.TestMode)
	tm := newTestMonitor(t, db, func(c *errmon.Config) { c.Output = io.Discard })
	if err := db.Use(tm.GormPlugin()); err != nil {
		t.Fatal(err)
	}
	if err := db.AutoMigrate(&crumbAccount{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Create(&crumbAccount{Name: "alice-crumb-value", Password: "pw-crumb-stored"}).Error; err != nil {
		t.Fatal(err)
	}
	log := slog.New(tm.SlogHandler(slog.NewTextHandler(io.Discard, nil)))
	r := gin.New()
	tm.InitApp(r)
	r.GET("/accounts/:id", func(c *gin.Context) {
		log.InfoContext(c, "loading account", "id", c.Param("id"), "password", "hunter2-crumbs")
		var a []crumbAccount
		if err := db.WithContext(c).Where("name = ?", "alice-crumb-value").Find(&a).Error; err != nil {
			t.Error(err)
		}
		log.WarnContext(c.Request.Context(), "account cache miss", slog.Group("cache", "key", "acct:7", "secret", "s3cr3t-crumbs"))
		var n int64
		if err := db.WithContext(c.Request.Context()).
			Raw("SELECT count(*) FROM crumb_accounts WHERE name = 'bob-crumb-literal' AND id > 5").Scan(&n).Error; err != nil {
			t.Error(err)
		}
		log.InfoContext(c, "about to fail", "found", len(a))
		panic("crumbs: the account view failed")
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, tm
}

// TestCrumbsStoredWithTheFailedRequest: a request that logs three records
// and runs two queries, then panics, stores five breadcrumbs in order with
// its occurrence (the error and its sample): levels, messages, attributes
// masked, SQL with placeholders and never a value, duration and rows. The
// detail page shows them in a section of their own, in order; the API's
// detail has them in request_data.
func TestCrumbsStoredWithTheFailedRequest(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		srv, tm := crumbsApp(t, tdb.DB)
		resp, err := http.Get(srv.URL + "/accounts/7")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("status %d", resp.StatusCode)
		}
		rec := recordWithMessage(t, tm.records(t), "crumbs: the account view failed")
		var samples []store.ErrorOccurrence
		if err := tdb.DB.Where("hash = ?", rec.Hash).Find(&samples).Error; err != nil || len(samples) != 1 {
			t.Fatalf("samples: %d, %v", len(samples), err)
		}
		for where, data := range map[string]string{"error": rec.RequestData, "sample": samples[0].RequestData} {
			for _, secret := range []string{"hunter2-crumbs", "s3cr3t-crumbs", "alice-crumb-value", "bob-crumb-literal", "pw-crumb-stored"} {
				if strings.Contains(data, secret) {
					t.Errorf("%s: the stored context holds %q:\n%s", where, secret, data)
				}
			}
			list, dropped := crumbsOf(t, data)
			if len(list) != 5 || dropped != 0 {
				t.Fatalf("%s: %d breadcrumbs (%d dropped), want 5:\n%s", where, len(list), dropped, data)
			}
			var levels []string
			for _, c := range list {
				levels = append(levels, c.Level)
			}
			if got := strings.Join(levels, " "); got != "INFO SQL WARN SQL INFO" {
				t.Errorf("%s: levels %q, want INFO SQL WARN SQL INFO", where, got)
			}
			for i := 1; i < len(list); i++ {
				if list[i].T < list[i-1].T {
					t.Errorf("%s: breadcrumb %d at %s, before the one ahead of it (%s)", where, i, list[i].T, list[i-1].T)
				}
			}
			if list[0].Message != "loading account" || list[0].Attrs["id"] != "7" || list[0].Attrs["password"] != errmon.DefaultConfig().MaskWith {
				t.Errorf("%s: first breadcrumb %+v", where, list[0])
			}
			if cache, _ := list[2].Attrs["cache"].(map[string]any); list[2].Message != "account cache miss" || cache["key"] != "acct:7" ||
				cache["secret"] != errmon.DefaultConfig().MaskWith {
				t.Errorf("%s: the request context's breadcrumb %+v", where, list[2])
			}
			if list[4].Message != "about to fail" || list[4].Attrs["found"] != float64(1) {
				t.Errorf("%s: last breadcrumb %+v", where, list[4])
			}
			find, count := list[1], list[3]
			placeholder := "= ?"
			if tdb.Name == "postgres" {
				placeholder = "= $1"
			}
			if !strings.Contains(find.SQL, "crumb_accounts") || !strings.Contains(find.SQL, "name "+placeholder) {
				t.Errorf("%s: the query's SQL %q, want its placeholder (%s)", where, find.SQL, placeholder)
			}
			if find.Rows == nil || *find.Rows != 1 || find.MS == nil || *find.MS < 0 || find.Error != "" {
				t.Errorf("%s: the query's facts: %+v", where, find)
			}
			if count.SQL != "SELECT count(*) FROM crumb_accounts WHERE name = ? AND id > ?" || count.MS == nil {
				t.Errorf("%s: the raw query's SQL %q, want its literals replaced by ?", where, count.SQL)
			}
		}

		// The detail page: a section of their own, in order, not a
		// context entry.
		page := crumbsGet(t, srv.URL+"/dev/error/"+rec.Hash)
		_, section, ok := strings.Cut(page, `<table class="occ trail">`)
		if !ok {
			t.Fatalf("the detail page has no breadcrumbs section:\n%s", page)
		}
		section, _, _ = strings.Cut(section, "</tbody>")
		rows := strings.Split(strings.ReplaceAll(section, "<wbr>", ""), `<td class="when">`)[1:] // one per breadcrumb
		want := [][]string{
			{"INFO", "loading account", "<dt>password</dt><dd><code>" + errmon.DefaultConfig().MaskWith},
			{"SQL", "crumb_accounts", "1 row"},
			{"WARN", "account cache miss", "acct:7"},
			{"SQL", "SELECT count(*) FROM crumb_accounts WHERE name = ? AND id &gt; ?"},
			{"INFO", "about to fail"},
		}
		if len(rows) != len(want) {
			t.Fatalf("the breadcrumbs section has %d rows, want %d:\n%s", len(rows), len(want), section)
		}
		for i, row := range rows {
			for _, w := range want[i] {
				if !strings.Contains(row, w) {
					t.Errorf("breadcrumb row %d lacks %q:\n%s", i, w, row)
				}
			}
		}
		_, card, _ := strings.Cut(page, "<h2>Request")
		card, _, _ = strings.Cut(card, "</section>")
		if strings.Contains(card, "<dt>breadcrumbs</dt>") || strings.Contains(page, "hunter2-crumbs") {
			t.Errorf("the detail page shows the breadcrumbs as a context entry, or a secret:\n%s", card)
		}

		var detail dashboard.APIErrorDetail
		if err := json.Unmarshal([]byte(crumbsGet(t, srv.URL+"/dev/error/api/errors/"+rec.Hash)), &detail); err != nil {
			t.Fatal(err)
		}
		if list, _ := crumbsOf(t, string(detail.RequestData)); len(list) != 5 || list[3].Level != "SQL" {
			t.Errorf("the API's request_data holds %d breadcrumbs: %s", len(list), detail.RequestData)
		}
	})
}

// crumbsGet returns the body of a GET of url, which must answer 200.
func crumbsGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestCrumbsKeepTheLast32: past 32 breadcrumbs, the oldest give way; how
// many were dropped is stored; each string is cut to 1 KiB.
func TestCrumbsKeepTheLast32(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, nil)
	log := slog.New(tm.SlogHandler(nil)) // a nil next: breadcrumbs from INFO up all the same
	r := tm.engine(false)
	r.GET("/steps", func(c *gin.Context) {
		for i := range 39 {
			log.InfoContext(c, fmt.Sprintf("step %d", i), "n", i)
		}
		log.InfoContext(c, "step 39", "blob", strings.Repeat("x", 10000))
		log.DebugContext(c, "below INFO: not kept")
		_ = c.Error(fmt.Errorf("crumbs: too many steps"))
		c.Status(http.StatusInternalServerError)
	})
	serve(r, "GET", "/steps", nil, nil)
	rec := recordWithMessage(t, tm.records(t), "crumbs: too many steps")
	list, dropped := crumbsOf(t, rec.RequestData)
	if len(list) != 32 || dropped != 8 {
		t.Fatalf("%d breadcrumbs kept, %d dropped; want 32 and 8", len(list), dropped)
	}
	for i, c := range list {
		if want := fmt.Sprintf("step %d", i+8); c.Message != want {
			t.Errorf("breadcrumb %d: %q, want %q", i, c.Message, want)
		}
	}
	if blob, _ := list[31].Attrs["blob"].(string); len(blob) > 1024 || !strings.HasPrefix(blob, "xxxx") || !strings.Contains(blob, "bytes cut]") {
		t.Errorf("an attribute of 10000 bytes stored as %d bytes: %.60q…", len(blob), blob)
	}
	if len(rec.RequestData) > store.MaxRequestDataBytes {
		t.Errorf("stored context: %d bytes", len(rec.RequestData))
	}
}
