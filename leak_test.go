package errmon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Goroutine leak tests: after Close, none of the monitor's goroutines (the
// writer, the alert sender, delivery attempts) may remain, whatever state
// Close found it in. Each test snapshots the goroutines that exist before
// the monitor (database pools included) and checks with goleak that no
// other remains after Close; the package's other tests are not affected.

// hzLeakCheck returns the check to run after Close: every goroutine that
// did not exist when hzLeakCheck was called must be gone.
func hzLeakCheck(t *testing.T) func() {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		goleak.VerifyNone(t, ignore)
	}
}

// hzClose closes m and fails if Close hangs.
func hzClose(t *testing.T, m *Monitor) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- m.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute): // a hang, not a latency check
		t.Fatal("Close hung")
		return nil
	}
}

func TestLeakNoneAfterClose(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		var logs syncBuffer
		cfg := hzConfig(tdb.DB, &logs)
		cfg.Ticketing = &hzCountingTicketing{}
		verify := hzLeakCheck(t)
		m := hzNew(t, cfg)
		r := hzFaultRouter(t, m)
		for i := 0; i < 50; i++ {
			for _, path := range []string{"/ok", "/panic", "/err/leak"} {
				r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
			}
		}
		if err := hzClose(t, m); err != nil {
			t.Errorf("Close: %v", err)
		}
		verify()
		if got := hzCounts(t, tdb.DB); got["fault panic"] != 50 || got["fault leak"] != 50 {
			t.Errorf("counts %v, want 50 each: Close must store what is pending", got)
		}
	})
}

func TestLeakNoneAfterCloseDuringOutage(t *testing.T) {
	pg := hzStartCluster(t)
	db := pg.open(t)
	var logs syncBuffer
	cfg := hzConfig(db, &logs)
	cfg.CloseTimeout = 300 * time.Millisecond
	// Pool connections exist before the snapshot, as in a running service.
	if err := db.Exec("SELECT 1").Error; err != nil {
		t.Fatal(err)
	}
	verify := hzLeakCheck(t)
	m := hzNew(t, cfg)
	m.Record(nil, errors.New("leak before"))
	hzFlushUntilStored(t, m)
	pg.stop(t, "immediate")
	for i := 0; i < 20; i++ {
		m.Record(nil, errors.New("leak during"))
	}
	err := hzClose(t, m)
	if err == nil || !strings.Contains(err.Error(), "20 occurrences of 1 errors not stored") {
		t.Errorf("Close during outage = %v, want it to report 20 occurrences not stored", err)
	}
	verify()
}

// Close while the writer is blocked on a table lock: Close cancels the
// write, reports the occurrences, and leaves no goroutine behind.
func TestLeakNoneAfterCloseUnderTableLock(t *testing.T) {
	tdb := openPostgres(t)
	var logs syncBuffer
	cfg := hzConfig(tdb.DB, &logs)
	cfg.CloseTimeout = 300 * time.Millisecond
	locker, err := gorm.Open(postgres.Open(tdb.DSN), quietGorm())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if s, err := locker.DB(); err == nil {
			s.Close()
		}
	}()
	verify := hzLeakCheck(t) // after both pools exist, before the monitor
	m := hzNew(t, cfg)
	m.Record(nil, errors.New("leak warmup"))
	hzFlushUntilStored(t, m)
	tx := locker.Begin()
	defer tx.Rollback()
	if err := tx.Exec("LOCK TABLE app_errors IN ACCESS EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		m.Record(nil, errors.New("leak locked"))
	}
	hzAwaitLockWaiter(t, locker)
	err = hzClose(t, m)
	if err == nil || !strings.Contains(err.Error(), "10 occurrences of 1 errors not stored") {
		t.Errorf("Close under a lock = %v, want it to report 10 occurrences not stored", err)
	}
	tx.Rollback()
	verify()
}

// hzBlockingNotifier waits for its context (polite) or for release (rude:
// it ignores its context, as a mail library without deadlines does).
type hzBlockingNotifier struct {
	rude    bool
	release chan struct{}
	calls   atomic.Int64
}

func (n *hzBlockingNotifier) Notify(ctx context.Context, _ *Notification) error {
	n.calls.Add(1)
	if n.rude {
		<-n.release
		return errors.New("released")
	}
	<-ctx.Done()
	return ctx.Err()
}

type hzCountingTicketing struct{ calls atomic.Int64 }

func (c *hzCountingTicketing) RaiseTicket(context.Context, *ErrorRecord) error {
	c.calls.Add(1)
	return nil
}

func TestLeakNoneAfterCloseWithAlertsPending(t *testing.T) {
	for _, rude := range []bool{false, true} {
		name := "notifier honours its context"
		if rude {
			name = "notifier ignores its context"
		}
		t.Run(name, func(t *testing.T) {
			tdb := openSQLite(t)
			var logs syncBuffer
			n := &hzBlockingNotifier{rude: rude, release: make(chan struct{})}
			released := false
			release := func() {
				if !released {
					released = true
					close(n.release)
				}
			}
			defer release()
			cfg := hzConfig(tdb.DB, &logs)
			cfg.SendNotification = true
			cfg.Notifier = n
			cfg.RecipientEmail = []string{"team@example.com"}
			cfg.EmailSender = "errmon@example.com"
			cfg.CloseTimeout = 300 * time.Millisecond
			cfg.NotifyTimeout = time.Hour
			verify := hzLeakCheck(t)
			m := hzNew(t, cfg)
			for _, msg := range []string{"alert one", "alert two", "alert three"} {
				m.Record(nil, errors.New(msg))
			}
			// Stored, and the first alert is being delivered.
			for i := 0; i < 6000 && n.calls.Load() == 0; i++ {
				time.Sleep(5 * time.Millisecond)
			}
			if n.calls.Load() == 0 {
				t.Fatal("the notifier was never called")
			}
			err := hzClose(t, m)
			if err == nil {
				t.Error("Close with alerts pending returned nil; want it to say they were not delivered")
			}
			if got := hzCounts(t, tdb.DB); len(got) != 3 {
				t.Errorf("stored %v, want the 3 errors", got)
			}
			// A notifier that ignores its context keeps its own goroutine
			// until it returns; once it does, nothing is left.
			release()
			verify()
		})
	}
}
