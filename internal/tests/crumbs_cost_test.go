package tests

import (
	"io"
	"log/slog"
	"math"
	"net/http"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// leastAllocs is the least of twenty testing.AllocsPerRun of f:
// AllocsPerRun counts every goroutine's allocations, and the monitor's (or
// another test's) may allocate meanwhile; on a loaded machine five tries
// were sometimes all disturbed.
func leastAllocs(runs int, f func()) float64 {
	least := math.Inf(1)
	for range 20 {
		least = min(least, testing.AllocsPerRun(runs, f))
	}
	return least
}

// TestCrumbsCostNothingToARequestThatLogsNothing: with the slog handler
// and the GORM plugin installed, a GET that neither logs nor queries with
// its context allocates as much through the default monitor's middleware
// as through gin.Recovery; one that logs without its context (not a
// breadcrumb) as much as the same log call without errmon's handler; and a
// statement without a request's context as much as without the plugin.
func TestCrumbsCostNothingToARequestThatLogsNothing(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tdb := openSQLite(t)
	tm := newTestMonitor(t, tdb.DB, nil)
	if err := tdb.DB.Use(tm.GormPlugin()); err != nil {
		t.Fatal(err)
	}
	prev := errmon.Default()
	errmon.SetDefault(tm.Monitor)
	t.Cleanup(func() { errmon.SetDefault(prev) })
	next := slog.NewTextHandler(io.Discard, nil)
	plain, crumbed := slog.New(next), slog.New(tm.SlogHandler(next))

	allocs := func(mw, h gin.HandlerFunc) float64 {
		r := gin.New()
		r.Use(mw)
		r.GET("/ok", h)
		req, _ := http.NewRequest("GET", "/ok", nil)
		w := &discardWriter{h: http.Header{}}
		return leastAllocs(200, func() { r.ServeHTTP(w, req) })
	}
	quiet := func(c *gin.Context) { c.Status(http.StatusNoContent) }
	if base, got := allocs(gin.Recovery(), quiet), allocs(tm.Middleware(), quiet); got > base {
		t.Errorf("a GET that logs nothing allocates %.0f times through the middleware, %.0f through gin.Recovery", got, base)
	}
	logs := func(l *slog.Logger) gin.HandlerFunc {
		return func(c *gin.Context) {
			l.Info("not the request's context", "n", 1)
			c.Status(http.StatusNoContent)
		}
	}
	if base, got := allocs(gin.Recovery(), logs(plain)), allocs(tm.Middleware(), logs(crumbed)); got > base {
		t.Errorf("a GET that logs without its context allocates %.0f times with errmon's handler, %.0f without", got, base)
	}

	// The same file through a second *gorm.DB without the plugin.
	bare, err := gorm.Open(sqlite.Open(tdb.DSN), quietGorm())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := bare.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	if err := tdb.DB.AutoMigrate(&crumbAccount{}); err != nil {
		t.Fatal(err)
	}
	query := func(db *gorm.DB) func() {
		return func() {
			var a []crumbAccount
			db.Where("name = ?", "x").Find(&a)
		}
	}
	if base, got := leastAllocs(50, query(bare)), leastAllocs(50, query(tdb.DB)); got > base {
		t.Errorf("a statement without a request's context allocates %.0f times with the plugin, %.0f without", got, base)
	}
}
