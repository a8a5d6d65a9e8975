package tests

import (
	"errors"
	"slices"
	"testing"

	"github.com/errmon/errmon"
)

// TestConfigIgnoreStatusValidated: every IgnoreStatus entry must be an
// HTTP status, reported as Config.IgnoreStatus by Validate and New.
func TestConfigIgnoreStatusValidated(t *testing.T) {
	db := openSQLite(t).DB
	for _, tc := range []struct {
		statuses []int
		bad      int // how many ConfigErrors
	}{
		{nil, 0},
		{[]int{100, 404, 503, 599}, 0},
		{[]int{99}, 1},
		{[]int{404, 600, 0}, 2},
	} {
		cfg := errmon.DefaultConfig()
		cfg.IgnoreStatus = tc.statuses
		err := cfg.Validate()
		keys := configErrorKeys(err)
		if len(keys) != tc.bad || slices.ContainsFunc(keys, func(k string) bool { return k != "Config.IgnoreStatus" }) {
			t.Errorf("Validate with IgnoreStatus %v: keys %q, want %d × Config.IgnoreStatus (%v)", tc.statuses, keys, tc.bad, err)
		}
		cfg.DB = db
		m, err := errmon.New(cfg)
		if got := len(configErrorKeys(err)); got != tc.bad {
			t.Errorf("New with IgnoreStatus %v: %d ConfigErrors, want %d (%v)", tc.statuses, got, tc.bad, err)
		}
		if m != nil {
			m.Close()
		}
	}
}

// TestConfigIgnoreDeepCopy: New and Config() copy IgnoreErrors and
// IgnoreStatus; the defaults leave every rule off.
func TestConfigIgnoreDeepCopy(t *testing.T) {
	def := errmon.DefaultConfig()
	if def.IgnoreErrors != nil || def.IgnoreStatus != nil || def.Ignore != nil || def.RecordClientGone {
		t.Errorf("DefaultConfig sets ignore rules: %v %v %v %v", def.IgnoreErrors, def.IgnoreStatus, def.Ignore != nil, def.RecordClientGone)
	}
	errListed := errors.New("listed")
	errs := []error{errListed}
	statuses := []int{503}
	tm := sqliteMonitor(t, func(c *errmon.Config) { c.IgnoreErrors, c.IgnoreStatus = errs, statuses })
	errs[0], statuses[0] = errors.New("changed"), 502
	got := tm.Config()
	if got.IgnoreErrors[0] != errListed || got.IgnoreStatus[0] != 503 {
		t.Errorf("New shares the caller's slices: %v %v", got.IgnoreErrors, got.IgnoreStatus)
	}
	got.IgnoreErrors[0], got.IgnoreStatus[0] = errors.New("changed"), 502
	if again := tm.Config(); again.IgnoreErrors[0] != errListed || again.IgnoreStatus[0] != 503 {
		t.Errorf("Config() shares the monitor's slices: %v %v", again.IgnoreErrors, again.IgnoreStatus)
	}
}
