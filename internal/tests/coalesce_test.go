package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"gorm.io/gorm"
)

// Correctness of coalescing: occurrences are counted in memory and written
// as one upsert per error per flush; these tests check that nothing is lost
// or double-counted on the way, whatever the interleaving of recording and
// flushing. Timing belongs to bench/. The writer's schedule and its chunks
// are unit-tested in the root (coalesce_test.go).

// coalesceNotifier records the alerts it is asked to send.
type coalesceNotifier struct {
	mu    sync.Mutex
	notes []*errmon.Notification
}

func (n *coalesceNotifier) Notify(_ context.Context, note *errmon.Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notes = append(n.notes, note)
	return nil
}

// reasons returns how many alerts were sent for hash, by reason.
func (n *coalesceNotifier) reasons(hash string) map[errmon.Reason]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[errmon.Reason]int{}
	for _, note := range n.notes {
		if note.Error != nil && note.Error.Hash == hash {
			out[note.Reason]++
		}
	}
	return out
}

// recordConcurrently records err n times from g goroutines.
func recordConcurrently(m *errmon.Monitor, g, n int, err func(i int) error) {
	var wg sync.WaitGroup
	for w := range g {
		wg.Go(func() {
			for i := w; i < n; i += g {
				m.Record(nil, err(i))
			}
		})
	}
	wg.Wait()
}

func flush(t *testing.T, m *errmon.Monitor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func rowsByHash(t *testing.T, db *gorm.DB) map[string]errmon.ErrorRecord {
	t.Helper()
	var recs []errmon.ErrorRecord
	if err := db.Find(&recs).Error; err != nil {
		t.Fatalf("read app_errors: %v", err)
	}
	out := make(map[string]errmon.ErrorRecord, len(recs))
	for _, r := range recs {
		out[r.Hash] = r
	}
	return out
}

func hourlyTotal(t *testing.T, db *gorm.DB, hash string) int64 {
	t.Helper()
	var n int64
	if err := db.Model(&store.ErrorHourly{}).Where("hash = ?", hash).Select("COALESCE(SUM(count), 0)").Scan(&n).Error; err != nil {
		t.Fatalf("read app_error_hourly: %v", err)
	}
	return n
}

// letters spells i without digits or hex, so that each i fingerprints apart.
func letters(i int) string {
	const abc = "ghijklmnopqrstuvwxyz"
	b := []byte("gggg")
	for p := len(b) - 1; p >= 0; p-- {
		b[p] = abc[i%len(abc)]
		i /= len(abc)
	}
	return string(b)
}

// TestCoalesceExactCounts records from many goroutines while the writer
// flushes every few milliseconds: every occurrence is counted once, in the
// row and in the hourly counts, one row per error.
func TestCoalesceExactCounts(t *testing.T) {
	cases := []struct {
		name     string
		distinct int
		events   int
	}{
		{"one error", 1, 20000},
		{"many errors", 500, 20000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachDB(t, func(t *testing.T, tdb testDB) {
				m := coalesceMonitor(t, tdb.DB, func(cfg *errmon.Config) { cfg.FlushInterval = 5 * time.Millisecond })
				errs := make([]error, tc.distinct)
				for i := range errs {
					errs[i] = errors.New("coalesce " + letters(i))
				}
				recordConcurrently(m, 64, tc.events, func(i int) error { return errs[i%tc.distinct] })
				flush(t, m)

				rows := rowsByHash(t, tdb.DB)
				if len(rows) != tc.distinct {
					t.Fatalf("%d rows, want %d", len(rows), tc.distinct)
				}
				var total int64
				for hash, r := range rows {
					want := int64(tc.events / tc.distinct)
					if r.Count != want {
						t.Errorf("%s: count %d, want %d", r.Message, r.Count, want)
					}
					if h := hourlyTotal(t, tdb.DB, hash); h != r.Count {
						t.Errorf("%s: hourly total %d, count %d", r.Message, h, r.Count)
					}
					if r.CreatedOn.After(r.LastSeen) {
						t.Errorf("%s: created %v after last seen %v", r.Message, r.CreatedOn, r.LastSeen)
					}
					total += r.Count
				}
				st := m.Stats()
				if total != int64(tc.events) || st.Stored != int64(tc.events) || st.Recorded != int64(tc.events) || st.Dropped != 0 || st.Pending != 0 {
					t.Fatalf("total %d, stats %+v; want %d recorded and stored", total, st, tc.events)
				}
			})
		})
	}
}

// TestCoalesceCloseLosesNothing records and closes without a Flush: Close
// stores everything pending; recording after Close is dropped and counted.
func TestCoalesceCloseLosesNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		cfg := errmon.DefaultConfig()
		cfg.DB = tdb.DB
		cfg.Output = io.Discard
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg.FlushInterval = time.Hour // only Close writes
		cfg.CloseTimeout = time.Minute
		m, err := errmon.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		const events = 5000
		recordConcurrently(m, 16, events, func(i int) error { return errors.New("close " + letters(i%7)) })
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		rows := rowsByHash(t, tdb.DB)
		var total int64
		for _, r := range rows {
			total += r.Count
		}
		if len(rows) != 7 || total != events {
			t.Fatalf("%d rows with %d occurrences, want 7 rows with %d", len(rows), total, events)
		}
		m.Record(nil, errors.New("after close"))
		if st := m.Stats(); st.Dropped != 1 || st.Stored != events {
			t.Fatalf("stats after Close %+v: want 1 dropped, %d stored", st, events)
		}
		if err := m.Flush(context.Background()); !errors.Is(err, errmon.ErrClosed) {
			t.Fatalf("Flush after Close: %v, want ErrClosed", err)
		}
	})
}

// TestCoalesceAlertsOnce checks that coalescing keeps alerting right: a
// new error hit by a storm spread over many flushes gives one "new" alert;
// once resolved, the next storm gives one "regression" alert; the count
// keeps growing and the first-seen time never moves.
func TestCoalesceAlertsOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		n := &coalesceNotifier{}
		m := coalesceMonitor(t, tdb.DB, func(cfg *errmon.Config) {
			cfg.FlushInterval = 2 * time.Millisecond
			cfg.SendNotification = true
			cfg.Notifier = n
			cfg.RecipientEmail = []string{"team@example.com"}
			cfg.EmailSender = "errmon@example.com"
		})
		boom := errors.New("coalesced alert")
		const events = 3000
		recordConcurrently(m, 32, events, func(int) error { return boom })
		flush(t, m)
		rows := rowsByHash(t, tdb.DB)
		if len(rows) != 1 {
			t.Fatalf("%d rows, want 1", len(rows))
		}
		var first errmon.ErrorRecord
		for _, r := range rows {
			first = r
		}
		if got := n.reasons(first.Hash); got[errmon.ReasonNew] != 1 || len(got) != 1 {
			t.Fatalf("alerts after the first storm: %v, want one %q", got, errmon.ReasonNew)
		}
		if first.Count != events {
			t.Fatalf("count %d, want %d", first.Count, events)
		}

		// Resolve it, as the dashboard does, then let it come back.
		now := time.Now().UTC()
		if err := tdb.DB.Model(&errmon.ErrorRecord{}).Where("hash = ?", first.Hash).
			Updates(map[string]any{"resolved": true, "resolved_at": now}).Error; err != nil {
			t.Fatal(err)
		}
		recordConcurrently(m, 32, events, func(int) error { return boom })
		flush(t, m)
		again := rowsByHash(t, tdb.DB)[first.Hash]
		if got := n.reasons(first.Hash); got[errmon.ReasonNew] != 1 || got[errmon.ReasonRegression] != 1 || len(got) != 2 {
			t.Fatalf("alerts after the regression: %v, want one %q and one %q", got, errmon.ReasonNew, errmon.ReasonRegression)
		}
		if again.Count != 2*events || again.Resolved || again.Regressions != 1 {
			t.Fatalf("after regression: count %d resolved %v regressions %d; want %d, false, 1",
				again.Count, again.Resolved, again.Regressions, 2*events)
		}
		if !again.CreatedOn.Equal(first.CreatedOn) || !again.LastSeen.After(first.LastSeen) {
			t.Fatalf("created %v -> %v, last seen %v -> %v: first seen must stay, last seen move",
				first.CreatedOn, again.CreatedOn, first.LastSeen, again.LastSeen)
		}
	})
}

// blockWrites makes every write to app_errors wait until the returned
// release is called, as a locked or stalled database would.
func blockWrites(t *testing.T, db *gorm.DB) (entered <-chan struct{}, release func()) {
	t.Helper()
	gate := make(chan struct{})
	in := make(chan struct{}, 1)
	var once sync.Once
	err := db.Callback().Row().Before("gorm:row").Register("coalesce:block", func(tx *gorm.DB) {
		select {
		case in <- struct{}{}:
		default:
		}
		<-gate
	})
	if err != nil {
		t.Fatal(err)
	}
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return in, release
}

// TestCoalesceFullPendingSet fills the pending set while the database is
// stalled: new errors are dropped and counted, recording never waits for
// the database, occurrences of errors already held are still counted, and
// once the database answers everything held is stored exactly.
func TestCoalesceFullPendingSet(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		const maxPending = 4
		m := coalesceMonitor(t, tdb.DB, func(cfg *errmon.Config) {
			cfg.MaxPending = maxPending
			cfg.FlushInterval = time.Hour
		})
		for i := range maxPending {
			m.Record(nil, errors.New("held "+letters(i)))
		}
		entered, release := blockWrites(t, tdb.DB)
		flushed := make(chan error, 1)
		go func() { flushed <- m.Flush(context.Background()) }()
		<-entered // the writer holds the batch and waits on the database

		recorded := make(chan struct{})
		go func() {
			defer close(recorded)
			// New errors: the set (held by the stalled writer) is full.
			recordConcurrently(m, 8, 1000, func(i int) error { return errors.New("overflow " + letters(i)) })
		}()
		select {
		case <-recorded:
		case <-time.After(time.Minute):
			t.Fatal("Record blocked on a stalled database")
		}
		if st := m.Stats(); st.Dropped != 1000 || st.Recorded != maxPending+1000 {
			t.Fatalf("stats with a full set: %+v; want 1000 dropped of %d recorded", st, maxPending+1000)
		}

		release()
		if err := <-flushed; err != nil {
			t.Fatalf("Flush: %v", err)
		}
		for i := range maxPending { // room again
			m.Record(nil, errors.New("held "+letters(i)))
		}
		flush(t, m)
		rows := rowsByHash(t, tdb.DB)
		if len(rows) != maxPending {
			t.Fatalf("%d rows, want %d", len(rows), maxPending)
		}
		for _, r := range rows {
			if r.Count != 2 {
				t.Errorf("%s: count %d, want 2", r.Message, r.Count)
			}
		}
		if st := m.Stats(); st.Dropped != 1000 || st.Stored != 2*maxPending {
			t.Fatalf("final stats %+v: want 1000 dropped, %d stored", st, 2*maxPending)
		}
	})
}

// TestCoalesceInflightStillCounted records an error again while the writer
// is storing its earlier occurrences and the set is full: MaxPending bounds
// distinct errors, and "further occurrences of pending errors are still
// counted exactly" (Config.MaxPending), in flight or not.
func TestCoalesceInflightStillCounted(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		const maxPending = 2
		m := coalesceMonitor(t, tdb.DB, func(cfg *errmon.Config) {
			cfg.MaxPending = maxPending
			cfg.FlushInterval = time.Hour
		})
		a, b := errors.New("inflight alpha"), errors.New("inflight beta")
		m.Record(nil, a)
		m.Record(nil, b)
		entered, release := blockWrites(t, tdb.DB)
		flushed := make(chan error, 1)
		go func() { flushed <- m.Flush(context.Background()) }()
		<-entered
		m.Record(nil, a) // in flight: must be counted, not dropped
		release()
		if err := <-flushed; err != nil {
			t.Fatalf("Flush: %v", err)
		}
		flush(t, m)
		var total int64
		for _, r := range rowsByHash(t, tdb.DB) {
			total += r.Count
		}
		if st := m.Stats(); st.Dropped != 0 || total != 3 {
			t.Fatalf("stats %+v, %d stored: an occurrence of an error in flight was dropped", st, total)
		}
	})
}

// TestCoalesceDropsLogged checks that what a full pending set drops is
// logged with its count, by the writer and at the latest when it stops.
func TestCoalesceDropsLogged(t *testing.T) {
	tdb := openSQLite(t)
	var logs syncBuffer
	m := coalesceMonitor(t, tdb.DB, func(cfg *errmon.Config) {
		cfg.MaxPending = 1
		cfg.FlushInterval = time.Hour // only Close writes: the set stays full
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for i := range 3 {
		m.Record(nil, fmt.Errorf("distinct error %c", 'a'+i))
	}
	if st := m.Stats(); st.Dropped != 2 {
		t.Fatalf("stats %+v: want 2 dropped", st)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "occurrences dropped") || !strings.Contains(out, "dropped=2") {
		t.Fatalf("drops not logged with their count:\n%s", out)
	}
}

// TestWriterCatchesUpWithoutWaiting: errors recorded while a pass is slow
// (blocked on the database for longer than the interval, so that writing
// what is pending would end past it) are written by the next pass at
// once, not a FlushInterval later: without a Flush, they are stored well
// within half an interval of the slow pass's end. The schedule's
// arithmetic (the delay is 0 after such a pass) is unit-tested in the root
// (TestScheduleCatchesUpAfterSlowPass).
func TestWriterCatchesUpWithoutWaiting(t *testing.T) {
	const interval = 2 * time.Second
	eachDB(t, func(t *testing.T, tdb testDB) {
		m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) { c.FlushInterval = interval })
		const n = 300
		for i := range n {
			m.Record(nil, errors.New("before the pass "+letters(i)))
		}
		entered, release := blockWrites(t, tdb.DB)
		cut := time.Now() // at most the pass's cut
		flushed := make(chan error, 1)
		go func() { flushed <- m.Flush(context.Background()) }()
		<-entered
		for i := range n {
			m.Record(nil, errors.New("during the pass "+letters(i)))
		}
		time.Sleep(time.Until(cut.Add(interval + interval/4))) // the pass takes longer than the interval
		release()
		if err := <-flushed; err != nil {
			t.Fatalf("Flush: %v", err)
		}
		passEnd := time.Now()
		if took := passEnd.Sub(cut); took <= interval {
			t.Fatalf("the blocked pass took %v, not more than the interval %v: the test tests nothing", took, interval)
		}
		// No Flush from here: the writer must go on by itself, at once.
		deadline := passEnd.Add(time.Minute)
		for m.Stats().Stored < 2*n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		after := time.Since(passEnd)
		st := m.Stats()
		if st.Stored != 2*n || st.Pending != 0 {
			t.Fatalf("stats %+v: the errors recorded during a slow pass were not written by the next pass", st)
		}
		if after >= interval/2 {
			t.Errorf("the errors recorded during a slow pass were stored %v after it, want at once (well within the interval %v)", after, interval)
		}
		rows := rowsByHash(t, tdb.DB)
		if len(rows) != 2*n {
			t.Fatalf("%d rows, want %d", len(rows), 2*n)
		}
		for _, r := range rows {
			if r.Count != 1 {
				t.Fatalf("%s: count %d, want 1", r.Message, r.Count)
			}
		}
	})
}

// TestFlushMeansEverythingBefore: a Flush called while a pass is stalled,
// with errors recorded meanwhile, returns only once those are stored too,
// although the stalled pass took none of them.
func TestFlushMeansEverythingBefore(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) { c.FlushInterval = time.Hour })
		const n = 2*writeBatchSize + 1
		for i := range n {
			m.Record(nil, errors.New("first "+letters(i)))
		}
		entered, release := blockWrites(t, tdb.DB)
		first := make(chan error, 1)
		go func() { first <- m.Flush(context.Background()) }()
		<-entered
		for i := range n {
			m.Record(nil, errors.New("second "+letters(i)))
			m.Record(nil, errors.New("first "+letters(i))) // also held by the stalled pass
		}
		second := make(chan error, 1)
		go func() { second <- m.Flush(context.Background()) }()
		release()
		if err := <-first; err != nil {
			t.Fatalf("first Flush: %v", err)
		}
		if err := <-second; err != nil {
			t.Fatalf("second Flush: %v", err)
		}
		st := m.Stats()
		if st.Stored != 3*n || st.Pending != 0 || st.PendingErrors != 0 {
			t.Fatalf("stats after the second Flush %+v: want %d stored, nothing pending", st, 3*n)
		}
		rows := rowsByHash(t, tdb.DB)
		var total int64
		for _, r := range rows {
			total += r.Count
		}
		if len(rows) != 2*n || total != 3*n {
			t.Fatalf("%d rows with %d occurrences, want %d with %d", len(rows), total, 2*n, 3*n)
		}
	})
}
