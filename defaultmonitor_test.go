package errmon

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

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
