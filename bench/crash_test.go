package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/errmon/errmon/bench/crashwindow"
)

// TestCrashWindowChild is the child of TestCrashWindow: it only runs in the
// process TestCrashWindow starts (and kills).
func TestCrashWindowChild(t *testing.T) {
	if os.Getenv(crashwindow.ChildEnv) == "" {
		t.Skip("the child of TestCrashWindow")
	}
	if err := crashwindow.ChildMain(os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// TestCrashWindow is the short version of cmd/crashwindow: two storms on
// SQLite (FlushInterval 1s, 2,000 events/s, half of them new errors), each
// killed with SIGKILL between 1.0s and 1.5s; what was lost must be at most
// about one FlushInterval of events, and nothing counted twice. The bound
// has slack (1.5 intervals): a shared machine may stall the writer.
func TestCrashWindow(t *testing.T) {
	if os.Getenv(crashwindow.ChildEnv) != "" {
		t.Skip("in the child")
	}
	const interval = time.Second
	var runs []crashwindow.Run
	for range 2 {
		spec := crashwindow.Spec{DB: "sqlite", DSN: crashwindow.NewSQLite(t.TempDir()), Rate: 2000,
			Duration: 3 * time.Second, Pool: 1000, Interval: interval}
		r, err := crashwindow.Measure(context.Background(), os.Args[0],
			[]string{"-test.run=^TestCrashWindowChild$", "-test.bench=^$"}, spec, time.Second, 1500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("killed at %v: %d recorded, %d stored, %d lost = %.0f ms of events", r.KilledAt.Round(time.Millisecond), r.Recorded, r.Stored, r.Lost, r.LostMS)
		runs = append(runs, r)
	}
	s := crashwindow.Summarize(runs)
	t.Logf("loss: max %.0f ms, mean %.0f ms of events (FlushInterval %v)", s.MaxMS, s.MeanMS, interval)
	if s.DoubleCounted != 0 {
		t.Errorf("%d errors stored more often than recorded", s.DoubleCounted)
	}
	if s.MaxMS > 1.5*float64(interval.Milliseconds()) {
		t.Errorf("a SIGKILL lost %.0f ms of events, over 1.5 FlushInterval (%v)", s.MaxMS, interval)
	}
}
