package tests

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/errmon/errmon"
)

var errSlogNoise = errors.New("slog noise")

// TestSlogHandlerIgnoreRules: log records are kept out by IgnoreErrors
// (their error attribute) and by Ignore, and counted, like other errors.
func TestSlogHandlerIgnoreRules(t *testing.T) {
	tm := sqliteMonitor(t, func(c *errmon.Config) {
		c.IgnoreErrors = []error{errSlogNoise}
		c.Ignore = func(o *errmon.Occurrence) bool { return strings.Contains(o.Message, "ignored by func") }
	})
	log := slog.New(tm.SlogHandler(slog.DiscardHandler))
	log.Error("wrapped noise", "err", errors.Join(errors.New("context"), errSlogNoise))
	log.Error("ignored by func")
	log.Error("kept", "err", errors.New("a real failure"))
	recs := tm.records(t)
	if len(recs) != 1 || recs[0].Message != "a real failure" {
		var msgs []string
		for _, r := range recs {
			msgs = append(msgs, r.Message)
		}
		t.Fatalf("stored %q, want only the real failure", msgs)
	}
	if st := tm.Stats(); st.Ignored != 2 || st.Recorded != 1 {
		t.Errorf("Stats: Ignored %d Recorded %d, want 2 and 1", st.Ignored, st.Recorded)
	}
}
