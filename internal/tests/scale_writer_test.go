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

// The writer's timing seen from outside: an idle monitor runs no
// statement, a trickle of errors costs about one pass per interval, and a
// storm starting while the writer sleeps brings the pass forward. The
// arithmetic (schedule, the queue's wake thresholds, a simulated clock) is
// unit-tested in the root's pipeline_schedule_test.go.

// stmtCounter counts the statements GORM runs on a database, through its
// callbacks, while on.
type stmtCounter struct {
	mu    sync.Mutex
	on    bool
	stmts []string // the first 120 bytes of each
}

func countStatements(t *testing.T, db *gorm.DB) *stmtCounter {
	t.Helper()
	c := &stmtCounter{}
	rec := func(tx *gorm.DB) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.on {
			sql := tx.Statement.SQL.String()
			c.stmts = append(c.stmts, sql[:min(len(sql), 120)])
		}
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().After("gorm:create").Register("scale:count", rec),
		cb.Query().After("gorm:query").Register("scale:count", rec),
		cb.Update().After("gorm:update").Register("scale:count", rec),
		cb.Delete().After("gorm:delete").Register("scale:count", rec),
		cb.Row().After("gorm:row").Register("scale:count", rec),
		cb.Raw().After("gorm:raw").Register("scale:count", rec),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *stmtCounter) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on, c.stmts = true, nil
}

func (c *stmtCounter) stop() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	return c.stmts
}

// waitStored waits until the monitor has stored n occurrences, at most d.
func waitStored(t *testing.T, m *errmon.Monitor, n int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for m.Stats().Stored < n {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: %d occurrences not stored within %v", m.Stats(), n, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestScaleIdleWriterRunsNoStatements: FlushInterval 100ms. An idle
// monitor's writer runs no statement in 2s (it sleeps until an error
// comes); a trickle of an error every 20ms is stored in about one pass
// per interval (each pass's chunk inserts one receipt), each error within
// about an interval.
func TestScaleIdleWriterRunsNoStatements(t *testing.T) {
	const interval = 100 * time.Millisecond
	eachDB(t, func(t *testing.T, tdb testDB) {
		count := countStatements(t, tdb.DB)
		m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) { c.FlushInterval = interval })
		m.Record(nil, errors.New("warm up"))
		waitStored(t, m, 1, time.Minute) // the start's pruning and a first pass are over
		// That pass still writes its source lines after counting the error
		// stored: a Flush waits for the pass to end.
		dashFlush(t, m)
		count.start()
		time.Sleep(2 * time.Second)
		if stmts := count.stop(); len(stmts) != 0 {
			t.Fatalf("an idle writer ran %d statements in 2s (FlushInterval %v), want none: %q", len(stmts), interval, stmts[:min(len(stmts), 5)])
		}

		const trickle, every = 100, 20 * time.Millisecond
		count.start()
		start := time.Now()
		for i := range trickle {
			time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
			m.Record(nil, errors.New("trickle "+letters(i)))
		}
		waitStored(t, m, 1+trickle, time.Minute)
		took := time.Since(start)
		stmts := count.stop()
		passes := 0
		for _, s := range stmts {
			if strings.Contains(s, "app_error_writes") {
				passes++
			}
		}
		intervals := int(took / interval)
		t.Logf("%d errors over %v: %d passes (%d statements) in %d intervals", trickle, took.Round(time.Millisecond), passes, len(stmts), intervals)
		if passes == 0 || passes > intervals*3/2+2 {
			t.Errorf("a trickle over %d intervals took %d passes, want about one per interval (at most %d)", intervals, passes, intervals*3/2+2)
		}
		if late := took - time.Duration(trickle-1)*every; late > interval+interval/2 {
			t.Errorf("the trickle's last error was stored %v after it was recorded, want within about the interval %v", late, interval)
		}
	})
}

// TestScaleStormDuringSleepStoredWithinInterval: FlushInterval 2s. One
// error is pending and the writer sleeps until its pass is due, about 1.9s
// later; 200ms into that sleep a storm of new errors starts, as many as
// the database writes in a quarter of the interval (measured first by a
// Flush). The queue's signals wake the writer, whose pass comes early
// enough that all of the storm, and the first error, are stored within
// the interval and the check margin (interval/20) of being recorded. A
// writer that slept on would store the storm about 1.7s after it started
// plus the quarter of an interval it takes to write.
func TestScaleStormDuringSleepStoredWithinInterval(t *testing.T) {
	const (
		interval = 2 * time.Second
		check    = interval / 20
	)
	eachDB(t, func(t *testing.T, tdb testDB) {
		m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) {
			c.FlushInterval = interval
			c.MaxPending = 100_000
		})
		// The database's speed, which the writer learns from this pass too.
		const calibrate = 2000
		for i := range calibrate {
			m.Record(nil, errors.New("calibrate "+letters(i)))
		}
		start := time.Now()
		if err := m.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		rate := calibrate / time.Since(start).Seconds()
		storm := min(max(int(rate*interval.Seconds()/4), 300), 20_000)

		first := time.Now()
		m.Record(nil, errors.New("a first error"))
		time.Sleep(200 * time.Millisecond)
		if st := m.Stats(); st.Stored != calibrate || st.Pending != 1 {
			t.Fatalf("stats %+v: want the first error pending, the writer asleep", st)
		}
		start = time.Now()
		for i := range storm {
			m.Record(nil, errors.New("storm "+letters(i)))
		}
		recorded := time.Since(start)
		var firstAt, doneAt time.Time
		deadline := start.Add(time.Minute)
		for time.Now().Before(deadline) {
			n, now := m.Stats().Stored, time.Now()
			if n > calibrate && firstAt.IsZero() {
				firstAt = now
			}
			if n == calibrate+1+int64(storm) {
				doneAt = now
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if doneAt.IsZero() {
			t.Fatalf("stats %+v: the storm was not stored within a minute", m.Stats())
		}
		t.Logf("%.0f errors/s; a storm of %d recorded in %v: first rows stored %v after its start, all %v after (the first error %v after it was recorded)",
			rate, storm, recorded.Round(time.Millisecond), firstAt.Sub(start).Round(time.Millisecond),
			doneAt.Sub(start).Round(time.Millisecond), firstAt.Sub(first).Round(time.Millisecond))
		if d := doneAt.Sub(start); d > interval+check {
			t.Errorf("the storm was stored %v after it started, want within the interval and a check (%v)", d, interval+check)
		}
		if d := firstAt.Sub(first); d > interval+check {
			t.Errorf("the first error was stored %v after it was recorded, want within %v", d, interval+check)
		}
		if rows := rowsByHash(t, tdb.DB); len(rows) != calibrate+1+storm {
			t.Errorf("%d rows, want %d", len(rows), calibrate+1+storm)
		}
	})
}
