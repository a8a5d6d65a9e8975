package tests

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"gorm.io/gorm"
)

// TestScaleChunksInFlight: a pass over several chunks writes two at once
// on PostgreSQL (its server writes concurrent transactions in parallel),
// one at a time on SQLite and MariaDB, and one at a time on PostgreSQL
// when the pool is capped below four connections. The counts are exact
// either way.
func TestScaleChunksInFlight(t *testing.T) {
	const errs = 4 * writeBatchSize
	run := func(t *testing.T, db *gorm.DB, want int) {
		var (
			mu                     sync.Mutex
			running, most, upserts int
		)
		isUpsert := func(tx *gorm.DB) bool {
			f := strings.Fields(tx.Statement.SQL.String())
			return len(f) > 2 && f[0] == "INSERT" && f[1] == "INTO" && f[2] == "app_errors"
		}
		before := func(tx *gorm.DB) {
			if !isUpsert(tx) {
				return
			}
			mu.Lock()
			running++
			upserts++
			most = max(most, running)
			mu.Unlock()
			time.Sleep(30 * time.Millisecond) // long enough for a second chunk to overlap
		}
		after := func(tx *gorm.DB) {
			if !isUpsert(tx) {
				return
			}
			mu.Lock()
			running--
			mu.Unlock()
		}
		cb := db.Callback()
		for _, err := range []error{
			cb.Row().Before("gorm:row").Register("scale:before", before),
			cb.Row().After("gorm:row").Register("scale:after", after),
			cb.Raw().Before("gorm:raw").Register("scale:before", before),
			cb.Raw().After("gorm:raw").Register("scale:after", after),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		m := coalesceMonitor(t, db, func(c *errmon.Config) { c.FlushInterval = time.Hour })
		for i := range errs {
			m.Record(nil, errors.New("in flight "+letters(i)))
		}
		if err := m.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := m.Stats(); st.Stored != errs || st.Pending != 0 {
			t.Fatalf("stats %+v, want %d stored", st, errs)
		}
		if rows := rowsByHash(t, db); len(rows) != errs {
			t.Fatalf("%d rows, want %d", len(rows), errs)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Logf("%d upserts, at most %d at once", upserts, most)
		if upserts != errs/writeBatchSize || most != want {
			t.Errorf("%d chunk upserts, at most %d at once; want %d, %d at once", upserts, most, errs/writeBatchSize, want)
		}
	}
	eachDB(t, func(t *testing.T, tdb testDB) {
		want := 1
		if tdb.Name == "postgres" {
			want = 2
		}
		run(t, tdb.DB, want)
	})
	t.Run("postgres, 2 connections", func(t *testing.T) {
		tdb := openTestDB(t, "postgres")
		sqlDB, err := tdb.DB.DB()
		if err != nil {
			t.Fatal(err)
		}
		sqlDB.SetMaxOpenConns(2)
		run(t, tdb.DB, 1)
	})
}
