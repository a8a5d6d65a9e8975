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
// killed with SIGKILL between 1.2s and 2.2s. It logs the loss in ms of
// events and checks that nothing was counted twice; with
// ERRMON_CRASH_STRICT=1 it also fails when a run lost more than 1.5
// FlushInterval of events (not by default: a loaded shared machine starves
// the writer, and the smoke must not flake on it).
func TestCrashWindow(t *testing.T) {
	if os.Getenv(crashwindow.ChildEnv) != "" {
		t.Skip("in the child")
	}
	const interval = time.Second
	var runs []crashwindow.Run
	for range 2 {
		spec := crashwindow.Spec{DB: "sqlite", DSN: crashwindow.NewSQLite(t.TempDir()), Rate: 2000,
			Duration: 2500 * time.Millisecond, Pool: 1000, Interval: interval}
		r, err := crashwindow.Measure(context.Background(), os.Args[0],
			[]string{"-test.run=^TestCrashWindowChild$", "-test.bench=^$"}, spec, 1200*time.Millisecond, 2200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("killed at %v: %d recorded, %d stored, %d lost = %.0f ms of events", r.KilledAt.Round(time.Millisecond), r.Recorded, r.Stored, r.Lost, r.LostMS)
		if r.Recorded == 0 || r.Stored > int64(r.Recorded)+1 {
			t.Errorf("%d recorded, %d stored: want some recorded, and no more stored", r.Recorded, r.Stored)
		}
		runs = append(runs, r)
	}
	s := crashwindow.Summarize(runs)
	t.Logf("loss: max %.0f ms, mean %.0f ms of events (FlushInterval %v)", s.MaxMS, s.MeanMS, interval)
	if s.DoubleCounted != 0 {
		t.Errorf("%d errors stored more often than recorded", s.DoubleCounted)
	}
	if os.Getenv("ERRMON_CRASH_STRICT") == "1" && s.MaxMS > 1.5*float64(interval.Milliseconds()) {
		t.Errorf("a SIGKILL lost %.0f ms of events, over 1.5 FlushInterval (%v)", s.MaxMS, interval)
	}
}
