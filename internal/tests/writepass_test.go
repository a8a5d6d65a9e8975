package tests

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// wpLogger is a GORM logger that keeps every statement GORM traces.
type wpLogger struct {
	logger.Interface
	mu    sync.Mutex
	stmts []string
}

func (l *wpLogger) LogMode(logger.LogLevel) logger.Interface { return l }

func (l *wpLogger) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	sql, _ := fc()
	l.mu.Lock()
	l.stmts = append(l.stmts, sql)
	l.mu.Unlock()
}

func (l *wpLogger) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.stmts
	l.stmts = nil
	return out
}

// TestWritePassStatementsPerChunk: a pass over 1,000 hot errors (each seen
// more often than the samples kept) costs statements per chunk of 128, not
// per error: pruning their samples included, and whether the errors are
// new or already stored.
func TestWritePassStatementsPerChunk(t *testing.T) {
	const (
		errs   = 1000
		chunks = (errs + writeBatchSize - 1) / writeBatchSize
		// Per chunk: the upsert, the hourly counts, the samples, their
		// pruning and the receipt; plus a few per pass.
		maxStmts = 5*chunks + 10
	)
	eachDB(t, func(t *testing.T, tdb testDB) {
		log := &wpLogger{Interface: logger.Discard}
		m := coalesceMonitor(t, tdb.DB.Session(&gorm.Session{Logger: log}), func(c *errmon.Config) { c.FlushInterval = time.Hour })
		record := func(times int) {
			for range times {
				for i := range errs {
					m.Record(nil, errors.New("hot error "+letters(i)))
				}
				flush(t, m)
			}
		}
		record(store.OccurrenceHistory + 1) // every error now has samples to prune
		log.take()
		record(1)
		stmts := log.take()
		var prunes int
		for _, s := range stmts {
			if strings.HasPrefix(strings.TrimSpace(s), "DELETE FROM app_error_occurrences") {
				prunes++
			}
		}
		t.Logf("one pass over %d hot errors: %d statements, %d of them prunes", errs, len(stmts), prunes)
		if len(stmts) > maxStmts || prunes != chunks {
			t.Errorf("one pass over %d hot errors ran %d statements (%d prunes), want at most %d (%d prunes)",
				errs, len(stmts), prunes, maxStmts, chunks)
		}
		var samples int64
		if err := tdb.DB.Model(&store.ErrorOccurrence{}).Count(&samples).Error; err != nil {
			t.Fatal(err)
		}
		if samples != errs*store.OccurrenceHistory {
			t.Errorf("%d samples kept, want %d (%d per error)", samples, errs*store.OccurrenceHistory, store.OccurrenceHistory)
		}
		rows := rowsByHash(t, tdb.DB)
		for _, r := range rows {
			if r.Count != store.OccurrenceHistory+2 {
				t.Fatalf("%s: count %d, want %d", r.Message, r.Count, store.OccurrenceHistory+2)
			}
		}
	})
}

// TestRetentionAtStart: hourly counts and write receipts past their
// retention are pruned when a monitor starts, not an hour later, so that
// a service restarted more often than hourly still prunes them.
func TestRetentionAtStart(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		first := coalesceMonitor(t, tdb.DB, nil) // creates the tables
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		old, fresh := store.DBTime(now.Add(-store.HourlyRetention-time.Hour)), store.DBTime(now.Add(-time.Hour))
		seed := []any{
			&store.ErrorHourly{Hash: dashHash("old"), Hour: store.HourStart(old), Count: 1},
			&store.ErrorHourly{Hash: dashHash("fresh"), Hour: store.HourStart(fresh), Count: 1},
			&store.ErrorWrite{Token: "old-receipt", WrittenAt: store.DBTime(now.Add(-store.ReceiptRetention - time.Hour))},
			&store.ErrorWrite{Token: "fresh-receipt", WrittenAt: fresh},
		}
		for _, row := range seed {
			if err := tdb.DB.Create(row).Error; err != nil {
				t.Fatal(err)
			}
		}
		m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) { c.FlushInterval = time.Hour })
		flush(t, m) // the writer prunes before it serves this
		var hours []store.ErrorHourly
		var receipts []store.ErrorWrite
		if err := tdb.DB.Find(&hours).Error; err != nil {
			t.Fatal(err)
		}
		if err := tdb.DB.Find(&receipts).Error; err != nil {
			t.Fatal(err)
		}
		if len(hours) != 1 || hours[0].Hash != dashHash("fresh") {
			t.Errorf("hourly counts after start: %+v, want only the fresh one", hours)
		}
		if len(receipts) != 1 || receipts[0].Token != "fresh-receipt" {
			t.Errorf("receipts after start: %+v, want only the fresh one", receipts)
		}
	})
}

// TestWriteManyHoursWithinParameterLimits: an error pending through a long
// outage spans many hours; a chunk of such errors is written with its
// hourly counts split into statements within every database's bind
// parameter limit (SQLite's 32766 the smallest), every hour counted.
//
// The occurrences are dated over 300 hours by a Fingerprint hook, which
// receives each occurrence before it is queued and sets its Time (the
// public API has no clock to set). Were the hook handed a copy, every
// occurrence would fall in this hour and the test would fail.
func TestWriteManyHoursWithinParameterLimits(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		var at time.Time // the time of the occurrence being recorded
		m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) {
			c.FlushInterval = time.Hour
			c.MaxPending = 100
			c.Fingerprint = func(o *errmon.Occurrence) string {
				o.Time = at
				return "" // the default fingerprint
			}
		})
		base := time.Now().Add(-store.HourlyRetention).Truncate(time.Hour).Add(2 * time.Hour)
		const errs, hours = 40, 300 // 12,000 buckets: 36,000 parameters in one statement
		for i := range errs {
			for h := range hours {
				at = store.DBTime(base.Add(time.Duration(h) * time.Hour))
				m.Record(nil, errors.New("hours "+letters(i)))
			}
		}
		if st := m.Stats(); st.Dropped != 0 || st.PendingErrors != errs || st.Pending != errs*hours {
			t.Fatalf("stats %+v: want %d occurrences of %d errors pending, none dropped", st, errs*hours, errs)
		}
		flush(t, m)
		var buckets, total int64
		tdb.DB.Model(&store.ErrorHourly{}).Count(&buckets)
		tdb.DB.Model(&store.ErrorHourly{}).Select("COALESCE(SUM(count), 0)").Scan(&total)
		if buckets != errs*hours || total != errs*hours {
			t.Fatalf("%d hourly buckets with %d occurrences, want %d of 1 each", buckets, total, errs*hours)
		}
		rows := rowsByHash(t, tdb.DB)
		if len(rows) != errs {
			t.Fatalf("%d rows, want %d", len(rows), errs)
		}
		for _, r := range rows {
			if r.Count != hours {
				t.Fatalf("%s: count %d, want %d", r.Message, r.Count, hours)
			}
		}
	})
}

// TestWritePassAlertStatementsPerChunk: alerting on 300 new errors costs
// statements per chunk too (the alerted errors' notification times, their
// rows read back), not two per error.
func TestWritePassAlertStatementsPerChunk(t *testing.T) {
	const (
		errs     = 300
		chunks   = (errs + writeBatchSize - 1) / writeBatchSize
		maxStmts = 7*chunks + 10
	)
	eachDB(t, func(t *testing.T, tdb testDB) {
		log := &wpLogger{Interface: logger.Discard}
		notes := &coalesceNotifier{}
		m := coalesceMonitor(t, tdb.DB.Session(&gorm.Session{Logger: log}), func(c *errmon.Config) {
			c.FlushInterval = time.Hour
			c.SendNotification = true
			c.Notifier = notes
			c.DigestThreshold = -1 // one alert per new error
		})
		flush(t, m)
		log.take()
		for i := range errs {
			m.Record(nil, errors.New("new error "+letters(i)))
		}
		flush(t, m)
		stmts := log.take()
		t.Logf("one pass over %d new errors with alerts: %d statements", errs, len(stmts))
		if len(stmts) > maxStmts {
			t.Errorf("%d statements, want at most %d", len(stmts), maxStmts)
		}
		notes.mu.Lock()
		n := len(notes.notes)
		notes.mu.Unlock()
		if n != errs {
			t.Errorf("%d alerts, want one per new error (%d)", n, errs)
		}
	})
}
