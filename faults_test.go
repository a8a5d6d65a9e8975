package errmon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

// The classification of write failures: which ones the writer waits out
// and which ones count toward giving up on an error. The fault tests
// themselves (a database stopped, locked, partitioned, rejecting writes;
// extensions that panic) cause each fault for real, and live in
// internal/tests (faults_test.go).

// The logger method, hzConfig, hzNew and hzReleaseMode serve the root's
// hardening tests until they move to internal/tests, which has its own
// copies (monitor_test.go, faults_harness_test.go).

// hzStateErr is a driver error carrying a SQLSTATE, as pgconn.PgError does.
type hzStateErr struct{ state string }

func (e hzStateErr) Error() string    { return "ERROR: something (SQLSTATE " + e.state + ")" }
func (e hzStateErr) SQLState() string { return e.state }

// Only failures about the value count toward giving up on an error; a
// database that is down, busy, locked or restarting is waited for.
func TestFaultTransientErrorClassification(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("upsert app_errors: %w", context.Canceled), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, true},
		{fmt.Errorf("upsert: %w", hzStateErr{"08006"}), true},  // connection failure
		{fmt.Errorf("upsert: %w", hzStateErr{"57P01"}), true},  // admin shutdown
		{fmt.Errorf("upsert: %w", hzStateErr{"40P01"}), true},  // deadlock detected
		{fmt.Errorf("upsert: %w", hzStateErr{"53100"}), true},  // disk full
		{fmt.Errorf("upsert: %w", hzStateErr{"42P01"}), true},  // table missing (being migrated)
		{fmt.Errorf("upsert: %w", hzStateErr{"22021"}), false}, // invalid byte sequence: the value
		{fmt.Errorf("upsert: %w", hzStateErr{"54000"}), false}, // program limit: the value
		{fmt.Errorf("upsert: %w", hzStateErr{"P0001"}), false}, // raised by a trigger
		{errors.New("database is locked"), true},
		{errors.New("no such table: app_errors"), true},
		{errors.New("unexpected EOF"), false},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{errors.New("string or blob too big"), false},
	}
	for _, tc := range cases {
		if got := transientDBError(tc.err); got != tc.want {
			t.Errorf("transientDBError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// ---------------------------------------------------------------------------
// A network partition: the database neither answers nor refuses
