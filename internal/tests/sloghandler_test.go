package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	pkgerrors "github.com/pkg/errors"
)

//go:noinline
func slLogTwice(l *slog.Logger, id int) {
	l.Error("sync failed", "user", id)
	l.Error("sync failed", "user", id+1) // another line, the same function
}

//go:noinline
func slLogElsewhere(l *slog.Logger) { l.Error("sync failed", "user", 7) }

//go:noinline
func slStackError() error { return pkgerrors.New("disk full") }

// TestSlogHandler: records pass on unchanged; errors (and above) are
// recorded, grouped by the log call's function or by the error's own stack,
// with the record's attributes masked as the context; errmon's own lines
// are not recorded.
func TestSlogHandler(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		m := coalesceMonitor(t, tdb.DB, nil)
		var out bytes.Buffer
		next := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})
		l := slog.New(m.SlogHandler(next))

		l.Info("just so", "k", "v")
		l.Debug("not wanted by next")
		slLogTwice(l, 41)
		slLogElsewhere(l)
		l.With("password", "hunter2-sl").WithGroup("req").Error("payment refused",
			"err", fmt.Errorf("charge: %w", slStackError()), "amount", 42, "card", map[string]string{"secret": "x"})
		l.Error("errmon: could not store 3 occurrences") // errmon's own log line
		l.Warn("a warning")
		dashFlush(t, m)

		text := out.String()
		for _, want := range []string{"just so", "sync failed", "payment refused", "a warning", "errmon: could not store"} {
			if !strings.Contains(text, want) {
				t.Errorf("next did not get %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "not wanted by next") {
			t.Errorf("next got a record below its level:\n%s", text)
		}

		recs := allRecords(t, tdb.DB)
		byMsg := map[string][]errmon.ErrorRecord{}
		for _, r := range recs {
			byMsg[r.Message] = append(byMsg[r.Message], r)
		}
		// Two functions logging the same message: two groups; one
		// function logging it twice on two lines: one group.
		sync := byMsg["sync failed"]
		if len(sync) != 2 {
			t.Fatalf("%d groups for \"sync failed\", want one per function: %+v", len(sync), sync)
		}
		counts := map[string]int64{}
		for _, r := range sync {
			if r.ExceptionName != "slog.ERROR" {
				t.Errorf("exception %q, want slog.ERROR", r.ExceptionName)
			}
			counts[topFunction(r.Traceback)] = r.Count
		}
		if counts[pkgPath+"slLogTwice"] != 2 || counts[pkgPath+"slLogElsewhere"] != 1 {
			t.Errorf("counts by log call site: %v", counts)
		}
		pay := byMsg["charge: disk full"]
		if len(pay) != 1 {
			t.Fatalf("the error attribute was not the recorded error: %v", byMsg)
		}
		if pay[0].ExceptionName != "*errors.fundamental" || !strings.HasSuffix(topFunction(pay[0].Traceback), "slStackError") {
			t.Errorf("error attribute: exception %q, top frame %q; want the error's type and its own stack",
				pay[0].ExceptionName, topFunction(pay[0].Traceback))
		}
		ctx := pay[0].RequestData
		for _, want := range []string{`"message":"payment refused"`, `"level":"ERROR"`, `"amount":42`, `"req":{`} {
			if !strings.Contains(ctx, want) {
				t.Errorf("context lacks %s: %s", want, ctx)
			}
		}
		if strings.Contains(ctx, "hunter2-sl") || strings.Contains(ctx, `"secret":"x"`) {
			t.Errorf("context shows a secret attribute: %s", ctx)
		}
		if len(byMsg["errmon: could not store 3 occurrences"]) != 0 || len(byMsg["a warning"]) != 0 {
			t.Errorf("recorded errmon's own line or a warning: %v", byMsg)
		}
		if len(recs) != 3 {
			t.Errorf("%d errors stored, want 3", len(recs))
		}
	})
}

// TestSlogHandlerNilNextAndEnabled: without next, records are only
// recorded; Enabled wants errors whatever next wants.
func TestSlogHandlerNilNextAndEnabled(t *testing.T) {
	tdb := openSQLite(t)
	m := coalesceMonitor(t, tdb.DB, nil)
	quiet := slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError + 4})
	h := m.SlogHandler(quiet)
	if !h.Enabled(context.Background(), slog.LevelError) || h.Enabled(context.Background(), slog.LevelWarn) {
		t.Errorf("Enabled: error %v, warn %v; want true, false",
			h.Enabled(context.Background(), slog.LevelError), h.Enabled(context.Background(), slog.LevelWarn))
	}
	slog.New(m.SlogHandler(nil)).Error("no next", "err", errors.New("boom"))
	dashFlush(t, m)
	if recs := allRecords(t, tdb.DB); len(recs) != 1 || recs[0].Message != "boom" {
		t.Errorf("stored %+v, want the one error", recs)
	}
}
