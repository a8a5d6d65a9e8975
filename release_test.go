package errmon

import (
	"runtime/debug"
	"testing"
)

// TestReleaseOf: the default Config.Release is the main module's version,
// else its VCS revision (12 digits, -dirty when modified), else "".
func TestReleaseOf(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "4f1c2a9e8b7d6c5b4a39281706f5e4d3c2b1a098"}}
	dirty := append(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	for _, tc := range []struct {
		version  string
		settings []debug.BuildSetting
		want     string
	}{
		{"v1.2.3", rev, "v1.2.3"},
		{"(devel)", rev, "4f1c2a9e8b7d"},
		{"", dirty, "4f1c2a9e8b7d-dirty"},
		{"(devel)", nil, ""},
	} {
		bi := &debug.BuildInfo{Main: debug.Module{Version: tc.version}, Settings: tc.settings}
		if got := releaseOf(bi); got != tc.want {
			t.Errorf("releaseOf(%q, %v) = %q, want %q", tc.version, tc.settings, got, tc.want)
		}
	}
}

// TestReleaseValidated: Release and Environment are short printable labels.
func TestReleaseValidated(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		key string
	}{
		{Config{Release: "v1 beta"}, "APP_ERROR_RELEASE"},
		{Config{Environment: string(make([]byte, 65))}, "APP_ERROR_ENVIRONMENT"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !namesConfigKey(err, tc.key) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.key)
		}
	}
	if err := (Config{Release: "v1.2.3-rc.1+build.7", Environment: "production"}).Validate(); err != nil {
		t.Errorf("a valid release and environment: %v", err)
	}
}

// namesConfigKey reports whether err is, or joins, a ConfigError naming key.
func namesConfigKey(err error, key string) bool {
	if ce, ok := err.(*ConfigError); ok {
		return ce.Key == key
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if namesConfigKey(e, key) {
				return true
			}
		}
	}
	return false
}
