package tests

import (
	"io"
	"testing"

	"github.com/errmon/errmon"
)

// TestMiddlewareTwiceOneMonitor: the package-level Middleware called twice
// with one database serves one monitor, the default, which Close unsets.
func TestMiddlewareTwiceOneMonitor(t *testing.T) {
	prev := errmon.Default()
	t.Cleanup(func() { errmon.SetDefault(prev) })
	errmon.SetDefault(nil)
	tdb := openSQLite(t)
	cfg := errmon.DefaultConfig()
	cfg.DB = tdb.DB
	cfg.Output = io.Discard
	_ = errmon.Middleware(cfg)
	first := errmon.Default()
	_ = errmon.Middleware(cfg)
	if first == nil || errmon.Default() != first {
		t.Fatalf("default after two calls: %p then %p, want one monitor", first, errmon.Default())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if errmon.Default() != nil {
		t.Errorf("Close left the closed monitor as the default")
	}
}
