package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"gorm.io/gorm"
)

// Ingest throughput: b.N events recorded into SQLite or PostgreSQL, by
// errmon (Record, then one Flush at the end so that every event is stored
// before the clock stops) and by a naive monitor written here that upserts
// each event synchronously with the same SQL shape as errmon's upsert of
// app_errors (and nothing else: no hourly counts, no samples, no capture of
// the stack or request, which makes the baseline as cheap as a per-event
// write can be). One producer goroutine in both. ns/op is per event; the
// events/s metric is its inverse.

// naiveUpsert is errmon's upsert of app_errors, once per event.
const naiveUpsert = `INSERT INTO app_errors
 (hash, host, path, method, route, exception_name, message, traceback, request_data, count, created_on, last_seen, resolved, regressions, write_token)
 VALUES (?, '', '', '', '', ?, ?, '', '', 1, ?, ?, ?, 0, '')
 ON CONFLICT (hash) DO UPDATE SET
  count = app_errors.count + excluded.count,
  last_seen = CASE WHEN excluded.last_seen > app_errors.last_seen THEN excluded.last_seen ELSE app_errors.last_seen END,
  message = excluded.message,
  resolved = ?
 RETURNING id, count`

type naiveRow struct {
	ID    uint
	Count int64
}

// naiveRecord stores one event synchronously.
func naiveRecord(ctx context.Context, db *gorm.DB, err error) error {
	name := fmt.Sprintf("%T", err)
	msg := err.Error()
	sum := sha256.Sum256([]byte(name + "\x00" + msg))
	now := time.Now().UTC().Truncate(time.Microsecond)
	var rows []naiveRow
	if e := db.WithContext(ctx).Raw(naiveUpsert, hex.EncodeToString(sum[:]), name, msg, now, now, false, false).Scan(&rows).Error; e != nil {
		return fmt.Errorf("naive upsert: %w", e)
	}
	if len(rows) != 1 {
		return fmt.Errorf("naive upsert: %d rows returned", len(rows))
	}
	return nil
}

// load picks the error of event i.
type load struct {
	name string
	err  func(i int) error
}

var repeatedErr = errors.New("payment gateway timed out")

// The loads: one error over and over; 1,000 distinct errors in turn (a
// service where many things fail at once); and every event a new error, the
// worst case, where there is nothing to coalesce.
var loads = []load{
	{"repeated", func(int) error { return repeatedErr }},
	{"distinct1000", func(i int) error { return errors.New("ingest failure in step " + word(i%1000)) }},
	{"unique", func(i int) error { return errors.New("ingest failure in step " + word(i)) }},
}

// BenchmarkIngest measures events per second stored, errmon against the
// naive baseline, per database and load.
func BenchmarkIngest(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, l := range loads {
			b.Run("db="+kind+"/load="+l.name+"/impl=errmon", func(b *testing.B) {
				db := openDB(b, kind)
				m := newMonitorOn(b, db, func(cfg *errmon.Config) {
					cfg.FlushInterval = errmon.DefaultConfig().FlushInterval
					cfg.MaxPending = 1 << 22 // the benchmark counts stored events; none may drop
				})
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					m.Record(nil, l.err(i))
				}
				if err := m.Flush(ctx); err != nil {
					b.Fatalf("flush: %v", err)
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				if st := m.Stats(); st.Stored != int64(b.N) || st.Dropped != 0 {
					b.Fatalf("stats %+v: want %d stored, none dropped", st, b.N)
				}
				checkTotal(b, db, b.N)
			})
			b.Run("db="+kind+"/load="+l.name+"/impl=naive", func(b *testing.B) {
				db := openDB(b, kind)
				if err := db.AutoMigrate(&errmon.ErrorRecord{}); err != nil {
					b.Fatalf("migrate: %v", err)
				}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := naiveRecord(ctx, db, l.err(i)); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				checkTotal(b, db, b.N)
			})
		}
	}
}

// checkTotal checks that the stored counts add up to n.
func checkTotal(b *testing.B, db *gorm.DB, n int) {
	b.Helper()
	var total int64
	if err := db.Table("app_errors").Select("COALESCE(SUM(count), 0)").Scan(&total).Error; err != nil {
		b.Fatalf("sum counts: %v", err)
	}
	if total != int64(n) {
		b.Fatalf("stored total %d, want %d", total, n)
	}
}
