package tests

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errmon/errmon"
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
func hzClose(t *testing.T, m *errmon.Monitor) error {
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

func (n *hzBlockingNotifier) Notify(ctx context.Context, _ *errmon.Notification) error {
	n.calls.Add(1)
	if n.rude {
		<-n.release
		return errors.New("released")
	}
	<-ctx.Done()
	return ctx.Err()
}

type hzCountingTicketing struct{ calls atomic.Int64 }

func (c *hzCountingTicketing) RaiseTicket(context.Context, *errmon.ErrorRecord) error {
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

// hzStuck is a Notifier and a Ticketing that blocks in every call until
// release is closed, ignoring its context (as a mail library without
// deadlines does against a server that never answers). It counts its calls
// and how many run at once.
type hzStuck struct {
	release chan struct{}
	calls   atomic.Int64
	inside  atomic.Int64
	peak    atomic.Int64
}

func (s *hzStuck) Notify(context.Context, *errmon.Notification) error { return s.block() }

func (s *hzStuck) RaiseTicket(context.Context, *errmon.ErrorRecord) error { return s.block() }

func (s *hzStuck) block() error {
	s.calls.Add(1)
	n := s.inside.Add(1)
	defer s.inside.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	<-s.release
	return nil
}

// hzIgnoreStuck ignores the goroutines blocked inside a hzStuck.
var hzIgnoreStuck = goleak.IgnoreAnyFunction(pkgPath + "(*hzStuck).block")

// hzWaitFor polls cond until it holds or a generous deadline passes (a
// hang, not a latency check).
func hzWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLeakBoundedStuckNotifier: a Notifier or Ticketing that never returns
// gets one call, however many alerts or tickets follow; the others are
// dropped, counted and logged once; Close returns; and no goroutine of the
// monitor is left but the one inside the stuck call, which ends when the
// call returns.
func TestLeakBoundedStuckNotifier(t *testing.T) {
	const jobs = 20
	lanes := []struct {
		name  string
		what  string // "alert" or "ticket"
		apply func(*errmon.Config, *hzStuck)
	}{
		{"Notifier", "alert", func(c *errmon.Config, s *hzStuck) {
			c.SendNotification = true
			c.Notifier = s
			c.RecipientEmail = []string{"team@example.com"}
			c.EmailSender = "errmon@example.com"
		}},
		{"Ticketing", "ticket", func(c *errmon.Config, s *hzStuck) { c.Ticketing = s }},
	}
	scenarios := []struct {
		name          string
		notifyTimeout time.Duration
		// run drives the monitor after the jobs are recorded, and closes it.
		run func(t *testing.T, m *errmon.Monitor, s *hzStuck, logs *syncBuffer, what string)
	}{
		{"dropped while it hangs", 50 * time.Millisecond, func(t *testing.T, m *errmon.Monitor, s *hzStuck, logs *syncBuffer, what string) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := m.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v (the queue must drain while the call hangs)", err)
			}
			st := m.Stats()
			// The first job's call is abandoned, its retry waits for it in
			// vain and gives up; the 19 others are not tried.
			if st.AlertsFailed != 1 || st.AlertsSkipped != jobs-1 || st.AlertsSent != 0 {
				t.Errorf("stats %+v, want 1 failed and %d skipped", st, jobs-1)
			}
			out := logs.String()
			if got := strings.Count(out, what+"s are dropped until it returns"); got != 1 {
				t.Errorf("the drops are logged %d times, want once:\n%s", got, out)
			}
			if !strings.Contains(out, "could not deliver "+what) || !strings.Contains(out, laneBlocked) {
				t.Errorf("the failed first %s is not logged with its cause:\n%s", what, out)
			}
			if err := hzClose(t, m); err != nil {
				t.Errorf("Close: %v", err)
			}
		}},
		{"Close while waiting for it", time.Hour, func(t *testing.T, m *errmon.Monitor, s *hzStuck, logs *syncBuffer, what string) {
			hzWaitFor(t, "the first call", func() bool { return s.calls.Load() > 0 })
			if err := hzClose(t, m); err == nil {
				t.Error("Close with jobs pending returned nil; want it to say they were not delivered")
			}
			if st := m.Stats(); st.AlertsFailed != jobs {
				t.Errorf("stats %+v, want the %d undelivered jobs counted as failed", st, jobs)
			}
		}},
	}
	for _, ln := range lanes {
		for _, sc := range scenarios {
			t.Run(ln.name+"/"+sc.name, func(t *testing.T) {
				tdb := openSQLite(t)
				var logs syncBuffer
				s := &hzStuck{release: make(chan struct{})}
				released := false
				release := func() {
					if !released {
						released = true
						close(s.release)
					}
				}
				defer release()
				cfg := hzConfig(tdb.DB, &logs)
				cfg.CloseTimeout = 300 * time.Millisecond
				cfg.NotifyTimeout = sc.notifyTimeout
				ln.apply(&cfg, s)
				verify := hzLeakCheck(t)
				before := runtime.NumGoroutine()
				m := hzNew(t, cfg)
				for i := 0; i < jobs; i++ {
					m.Record(nil, errors.New("stuck "+strings.Repeat("q", i+1)))
				}
				sc.run(t, m, s, &logs, ln.what)
				if got := s.calls.Load(); got != 1 {
					t.Errorf("%d calls of the stuck %s, want 1", got, ln.name)
				}
				if got := s.peak.Load(); got > 1 {
					t.Errorf("%d goroutines at once inside the stuck %s, want at most 1", got, ln.name)
				}
				// Closed: nothing of the monitor is left but the goroutine
				// inside the stuck call...
				goleak.VerifyNone(t, goleak.IgnoreCurrent(), hzIgnoreStuck)
				// ...which is one goroutine (the count settles: goleak has
				// just waited for the others).
				if got := runtime.NumGoroutine() - before; got > 1 {
					t.Errorf("%d more goroutines after Close than before New, want at most the 1 stuck call", got)
				}
				if got := s.inside.Load(); got != 1 {
					t.Errorf("%d goroutines inside the stuck %s, want 1", got, ln.name)
				}
				// Once it returns, nothing is left.
				release()
				verify()
			})
		}
	}
}

// TestLeakStuckNotifierResumes: once the abandoned call returns, the next
// alert or ticket is delivered again, and the spell of drops is summed up
// in one log line.
func TestLeakStuckNotifierResumes(t *testing.T) {
	tdb := openSQLite(t)
	var logs syncBuffer
	s := &hzStuck{release: make(chan struct{})}
	cfg := hzConfig(tdb.DB, &logs)
	cfg.NotifyTimeout = 50 * time.Millisecond
	cfg.SendNotification = true
	cfg.Notifier = s
	cfg.RecipientEmail = []string{"team@example.com"}
	cfg.EmailSender = "errmon@example.com"
	verify := hzLeakCheck(t)
	m := hzNew(t, cfg)
	for i := 0; i < 5; i++ {
		m.Record(nil, errors.New("resume "+strings.Repeat("q", i+1)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	close(s.release)
	hzWaitFor(t, "the stuck call to return", func() bool { return s.inside.Load() == 0 })
	m.Record(nil, errors.New("resume after"))
	if err := m.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if st := m.Stats(); st.AlertsSent != 1 || st.AlertsSkipped != 4 || st.AlertsFailed != 1 {
		t.Errorf("stats %+v, want 1 sent after 1 failed and 4 skipped", st)
	}
	if got := s.calls.Load(); got != 2 {
		t.Errorf("%d calls, want 2 (the stuck one and the one after it returned)", got)
	}
	if out := logs.String(); !strings.Contains(out, "alerts are delivered again") || !strings.Contains(out, "dropped=4") {
		t.Errorf("the end of the spell is not logged with its count:\n%s", out)
	}
	if err := hzClose(t, m); err != nil {
		t.Errorf("Close: %v", err)
	}
	verify()
}

// hzFlaky is a Notifier and a Ticketing that fails (or panics) at every
// call, honouring its context.
type hzFlaky struct {
	panic bool
	calls atomic.Int64
}

func (f *hzFlaky) Notify(context.Context, *errmon.Notification) error { return f.fail() }

func (f *hzFlaky) RaiseTicket(context.Context, *errmon.ErrorRecord) error { return f.fail() }

func (f *hzFlaky) fail() error {
	f.calls.Add(1)
	if f.panic {
		panic("flaky exploded")
	}
	return errors.New("flaky: try later")
}

// TestLeakFailingNotifierKeepsWorking: a Notifier or Ticketing that returns
// errors is retried for every job, one that panics is called once per job;
// neither is ever skipped, and nothing leaks.
func TestLeakFailingNotifierKeepsWorking(t *testing.T) {
	const jobs = 3
	cases := []struct {
		name      string
		panic     bool
		ticketing bool
		wantCalls int64
	}{
		{"Notifier returns errors", false, false, jobs * alertAttempts},
		{"Notifier panics", true, false, jobs},
		{"Ticketing returns errors", false, true, jobs * alertAttempts},
		{"Ticketing panics", true, true, jobs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tdb := openSQLite(t)
			var logs syncBuffer
			f := &hzFlaky{panic: tc.panic}
			cfg := hzConfig(tdb.DB, &logs)
			cfg.NotifyTimeout = 20 * time.Millisecond
			if tc.ticketing {
				cfg.Ticketing = f
			} else {
				cfg.SendNotification = true
				cfg.Notifier = f
				cfg.RecipientEmail = []string{"team@example.com"}
				cfg.EmailSender = "errmon@example.com"
			}
			verify := hzLeakCheck(t)
			m := hzNew(t, cfg)
			for i := 0; i < jobs; i++ {
				m.Record(nil, errors.New("flaky "+strings.Repeat("q", i+1)))
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := m.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if got := f.calls.Load(); got != tc.wantCalls {
				t.Errorf("%d calls, want %d", got, tc.wantCalls)
			}
			if st := m.Stats(); st.AlertsFailed != jobs || st.AlertsSkipped != 0 {
				t.Errorf("stats %+v, want %d failed, none skipped", st, jobs)
			}
			if err := hzClose(t, m); err != nil {
				t.Errorf("Close: %v", err)
			}
			verify()
		})
	}
}
