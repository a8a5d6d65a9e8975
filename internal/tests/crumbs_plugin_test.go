package tests

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// TestCrumbsPluginInstalls: db.Use(m.GormPlugin()) is safe while errmon
// writes to the same *gorm.DB (run with -race: GORM's callbacks are not
// safe to register on a DB in use, so New registers them); it works on
// another *gorm.DB than Config.DB, and for two monitors on one DB, each
// keeping its own breadcrumbs of the DBs its plugin is on; Use twice for
// one monitor is refused.
func TestCrumbsPluginInstalls(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tdb := openSQLite(t)
	tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) { c.FlushInterval = time.Millisecond; c.Output = io.Discard })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // errmon's writer busy on the DB
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tm.Record(nil, fmt.Errorf("crumbs: busy %d", i%50))
			time.Sleep(100 * time.Microsecond)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	if err := tdb.DB.Use(tm.GormPlugin()); err != nil {
		t.Fatal(err)
	}
	other := newTestMonitor(t, tdb.DB, func(c *errmon.Config) { c.Output = io.Discard })
	if err := tdb.DB.Use(other.GormPlugin()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := tdb.DB.Use(tm.GormPlugin()); !errors.Is(err, gorm.ErrRegistered) {
		t.Errorf("a second Use of one monitor's plugin: %v, want gorm.ErrRegistered", err)
	}

	// The application's own *gorm.DB, another file.
	app, err := gorm.Open(sqlite.Open(openSQLite(t).DSN), quietGorm())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := app.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	if err := app.Use(tm.GormPlugin()); err != nil {
		t.Fatal(err)
	}
	if err := app.AutoMigrate(&crumbAccount{}); err != nil {
		t.Fatal(err)
	}

	// other's plugin is on tdb.DB only.
	for mon, want := range map[*testMonitor]int{tm: 2, other: 1} {
		r := mon.engine(false)
		r.GET("/q", func(c *gin.Context) {
			var n int64
			tdb.DB.WithContext(c).Raw("SELECT 1").Scan(&n)
			app.WithContext(c).Model(&crumbAccount{}).Count(&n)
			_ = c.Error(errors.New("crumbs: failed after two queries"))
			c.Status(http.StatusInternalServerError)
		})
		serve(r, "GET", "/q", nil, nil)
		list, _ := crumbsOf(t, recordWithMessage(t, mon.records(t), "crumbs: failed after two queries").RequestData)
		if len(list) != want || list[0].SQL != "SELECT ?" || want == 2 && list[1].SQL != "SELECT count(*) FROM `crumb_accounts`" {
			t.Errorf("%d breadcrumbs, want %d: %+v", len(list), want, list)
		}
	}
}
