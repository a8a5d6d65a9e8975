package tests

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

//go:noinline
func gorJobThatPanics() { panic("nightly job exploded") }

// TestGoroutinePanicRecorded: a panic in a goroutine started with Go, or
// one that defers Recover, is recorded with the stack at the panic site,
// logged, and stored before the goroutine ends; the goroutine ends
// normally and the process goes on.
func TestGoroutinePanicRecorded(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		var out syncBuffer
		m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) {
			c.FlushInterval = time.Hour // only the goroutine's own wait writes
			c.Output = &out
		})
		done := make(chan struct{})
		go func() {
			defer close(done) // runs after Recover returned
			defer m.Recover()
			gorJobThatPanics()
		}()
		<-done
		// No Flush here: Recover wrote it before the goroutine ended.
		recs := allRecords(t, tdb.DB)
		if len(recs) != 1 || recs[0].Message != "nightly job exploded" || recs[0].Count != 1 {
			t.Fatalf("stored after the goroutine ended: %+v, want the job's panic once", recs)
		}
		if top := topFunction(recs[0].Traceback); !strings.HasSuffix(top, "gorJobThatPanics") {
			t.Errorf("traceback starts at %q, want the panic site gorJobThatPanics:\n%s", top, recs[0].Traceback)
		}
		if !strings.Contains(out.String(), "goroutine panic recovered") || !strings.Contains(out.String(), "nightly job exploded") {
			t.Errorf("the panic log does not show the goroutine's panic:\n%s", out.String())
		}

		// Go: the same (another group: its callers differ).
		m.Go(gorJobThatPanics)
		deadline := time.Now().Add(20 * time.Second)
		for m.Stats().Stored < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		recs = allRecords(t, tdb.DB)
		if len(recs) != 2 {
			t.Fatalf("after Go: %d rows, want 2", len(recs))
		}
		for _, r := range recs {
			if top := topFunction(r.Traceback); r.Count != 1 || !strings.HasSuffix(top, "gorJobThatPanics") {
				t.Errorf("after Go: %q seen %d times from %q, want once from gorJobThatPanics", r.Message, r.Count, top)
			}
		}
	})
}

const gorChildEnv = "ERRMON_GOROUTINE_CHILD"

// TestGoroutineChildProcess is not a test: it is the body of the child of
// TestGoroutinePanicInChildProcess. It records a goroutine's panic with
// the default monitor, then exits at once, without Close.
func TestGoroutineChildProcess(t *testing.T) {
	dsn := os.Getenv(gorChildEnv)
	if dsn == "" {
		t.Skip("child process of TestGoroutinePanicInChildProcess")
	}
	db, err := gorm.Open(sqlite.Open(dsn), quietGorm())
	if err != nil {
		os.Exit(3)
	}
	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.FlushInterval = time.Hour // nothing but the goroutine's own wait writes
	m, err := errmon.New(cfg)
	if err != nil {
		os.Exit(4)
	}
	errmon.SetDefault(m)
	done := make(chan struct{})
	errmon.Go(func() {
		go func() {
			defer close(done)
			defer errmon.Recover()
			gorJobThatPanics()
		}()
		panic("ticker job exploded")
	})
	<-done
	for m.Stats().Stored < 2 {
		time.Sleep(5 * time.Millisecond) // the Go goroutine's own wait
	}
	os.Exit(0) // no Close, no Flush: what was stored, was stored by the goroutines
}

// TestGoroutinePanicInChildProcess: a real process whose goroutines panic
// (one started with errmon.Go, one deferring errmon.Recover) does not
// crash, and exits with both panics stored.
func TestGoroutinePanicInChildProcess(t *testing.T) {
	tdb := openSQLite(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestGoroutineChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), gorChildEnv+"="+tdb.DSN)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v (a goroutine's panic ended the process?)\n%s", err, out.String())
	}
	recs := allRecords(t, tdb.DB)
	msgs := map[string]int64{}
	for _, r := range recs {
		msgs[r.Message] = r.Count
	}
	if msgs["ticker job exploded"] != 1 || msgs["nightly job exploded"] != 1 || len(recs) != 2 {
		t.Errorf("stored by the child: %v, want both goroutine panics once", msgs)
	}
	if !strings.Contains(out.String(), "goroutine panic recovered") {
		t.Errorf("the child's panic log does not show the panics:\n%s", out.String())
	}
}
