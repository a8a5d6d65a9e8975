package tests

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// BenchmarkCrumbsLog: one log call of a request (two attributes) through a
// text handler, without errmon, through SlogHandler with a context that
// is no request's, and as a breadcrumb (the ring made once per request of
// 32 log calls, as a request's first breadcrumb makes it).
func BenchmarkCrumbsLog(b *testing.B) {
	tm := sqliteMonitor(b, nil)
	next := slog.NewTextHandler(io.Discard, nil)
	plain, crumbed := slog.New(next), slog.New(tm.SlogHandler(next))
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("GET", "/", nil)
	b.Run("without errmon", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			plain.InfoContext(c, "loading order", "id", 42, "user", "alice")
		}
	})
	b.Run("no request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			crumbed.InfoContext(context.Background(), "loading order", "id", 42, "user", "alice")
		}
	})
	b.Run("breadcrumb", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i++; i%32 == 0 {
				c.Keys = nil // a new request
			}
			crumbed.InfoContext(c, "loading order", "id", 42, "user", "alice")
		}
	})
}

// BenchmarkCrumbsQuery: one SQLite query, without the plugin, with it
// outside a request, and as a breadcrumb.
func BenchmarkCrumbsQuery(b *testing.B) {
	tdb := openSQLite(b)
	tm := newTestMonitor(b, tdb.DB, nil)
	if err := tdb.DB.Use(tm.GormPlugin()); err != nil {
		b.Fatal(err)
	}
	if err := tdb.DB.AutoMigrate(&crumbAccount{}); err != nil {
		b.Fatal(err)
	}
	bare, err := gorm.Open(sqlite.Open(tdb.DSN), quietGorm())
	if err != nil {
		b.Fatal(err)
	}
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("GET", "/", nil)
	run := func(db *gorm.DB, ctx context.Context) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i++; i%32 == 0 {
					c.Keys = nil
				}
				var a []crumbAccount
				db.WithContext(ctx).Where("name = ?", "alice").Find(&a)
			}
		}
	}
	b.Run("without the plugin", run(bare, c))
	b.Run("no request", run(tdb.DB, context.Background()))
	b.Run("breadcrumb", run(tdb.DB, c))
}
