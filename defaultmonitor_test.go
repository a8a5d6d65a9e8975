package errmon

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestMiddlewareTwiceOneMonitor: the package-level Middleware called twice
// with one database serves one monitor, the default, which Close unsets.
func TestMiddlewareTwiceOneMonitor(t *testing.T) {
	prev := Default()
	t.Cleanup(func() { SetDefault(prev) })
	SetDefault(nil)
	tdb := openSQLite(t)
	cfg := DefaultConfig()
	cfg.DB = tdb.DB
	cfg.Output = io.Discard
	_ = Middleware(cfg)
	first := Default()
	_ = Middleware(cfg)
	if first == nil || Default() != first {
		t.Fatalf("default after two calls: %p then %p, want one monitor", first, Default())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if Default() != nil {
		t.Errorf("Close left the closed monitor as the default")
	}
}

// TestRecordWithoutDefaultLogsOnce: the package-level Record with no
// default monitor drops the error and says so, once.
func TestRecordWithoutDefaultLogsOnce(t *testing.T) {
	prev, prevLog := Default(), slog.Default()
	var logs syncBuffer
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	SetDefault(nil)
	noDefaultLogged.Store(false)
	t.Cleanup(func() { SetDefault(prev); slog.SetDefault(prevLog) })
	for range 3 {
		Record(nil, errors.New("nobody records me"))
	}
	if n := strings.Count(logs.String(), "no default monitor"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
}
