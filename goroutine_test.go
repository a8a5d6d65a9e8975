package errmon

import (
	"testing"
)

// TestRecoverWithoutDefaultMonitor: the package-level Recover, with no
// default monitor, does not swallow the panic.
func TestRecoverWithoutDefaultMonitor(t *testing.T) {
	prev := Default()
	SetDefault(nil)
	t.Cleanup(func() { SetDefault(prev) })
	got := func() (r any) {
		defer func() { r = recover() }()
		func() {
			defer Recover()
			panic("no monitor to record me")
		}()
		return nil
	}()
	if got != "no monitor to record me" {
		t.Errorf("the panic went on as %v, want it unrecovered by Recover", got)
	}
}
