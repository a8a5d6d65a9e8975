package errmon

import (
	"testing"
)

// The dashboard's mount point: the Host check of the default permission.
// The route tests, on real databases, are in internal/tests/routes_test.go.
//
// The helpers below (dashEnv, newDash, dashRecord, seed, do, get,
// dashFlush, dashQuietGin) stay only for the root tests that still use them
// (browser_test.go, errorid_test.go, retention_test.go, writepass_test.go,
// until those move); internal/tests/dash_test.go has their black-box
// twins.

// TestLoopbackHost lists the Host headers LocalOnly accepts as naming this
// machine, and the look-alikes it refuses.
func TestLoopbackHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"localhost:8080", true},
		{"LocalHost:8080", true},
		{"localhost.", true},
		{"localhost.:8080", true},
		{"localhost:", true}, // an empty port, as net/url allows
		{"app.localhost", true},
		{"app.localhost:3000", true},
		{"127.0.0.1", true},
		{"127.0.0.1:8080", true},
		{"127.1.2.3:80", true},
		{"[::1]", true},
		{"[::1]:8080", true},
		{"[::ffff:127.0.0.1]:80", true},

		{"", false},
		{":8080", false},
		{".localhost", false},
		{"localhost.evil.example", false},
		{"evil-localhost", false},
		{"evil.example", false},
		{"evil.example:8080", false},
		{"127.0.0.1.nip.io", false},
		{"10.0.0.1", false},
		{"0.0.0.0:8080", false},
		{"2130706433", false}, // 127.0.0.1 as one number
		{"0x7f.1", false},
		{"127.000.000.001", false},
		{"::1", false}, // IPv6 needs brackets in a Host
		{"[::1", false},
		{"[127.0.0.1]", false},
		{"[localhost]:80", false},
		{"[::2]", false},
		{"localhost:http", false},
		{"localhost:80:80", false},
		{"[::1]%lo:80", false},
	}
	for _, tc := range tests {
		if got := loopbackHost(tc.host); got != tc.want {
			t.Errorf("loopbackHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}
