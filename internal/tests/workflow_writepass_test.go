package tests

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// TestWorkflowWriterEventsPerChunk: a pass over 1,000 new errors writes no
// history (each one's creation is made from its row), and a pass over
// their regressions records them with one insert per chunk, not per
// error; every statement count of the passes stays per chunk.
func TestWorkflowWriterEventsPerChunk(t *testing.T) {
	const (
		errs   = 1000
		chunks = (errs + writeBatchSize - 1) / writeBatchSize
		// Per chunk of new errors: the upsert, the hourly counts, the
		// samples and the receipt; plus a few per pass. A chunk of
		// regressions adds its events.
		maxStmts = 4*chunks + 10
	)
	eachDB(t, func(t *testing.T, tdb testDB) {
		log := &wpLogger{Interface: logger.Discard}
		m := coalesceMonitor(t, tdb.DB.Session(&gorm.Session{Logger: log}), func(c *errmon.Config) {
			c.FlushInterval, c.Release = time.Hour, "r1"
		})
		flush(t, m)
		log.take()
		record := func() (stmts []string, inserts int) {
			for i := range errs {
				m.Record(nil, errors.New("new error "+letters(i)))
			}
			flush(t, m)
			stmts = log.take()
			for _, s := range stmts {
				if strings.HasPrefix(strings.TrimSpace(s), "INSERT INTO app_error_events") {
					inserts++
				}
			}
			return stmts, inserts
		}
		if stmts, inserts := record(); inserts != 0 || len(stmts) > maxStmts {
			t.Errorf("a pass over %d new errors: %d statements, %d inserts of events; want at most %d, and none",
				errs, len(stmts), inserts, maxStmts)
		}
		st := store.New(tdb.DB)
		recs := allRecords(t, tdb.DB)
		for _, rec := range []errmon.ErrorRecord{recs[0], recs[len(recs)-1]} {
			evs, err := st.History(context.Background(), &rec, store.EventHistory)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Kind != store.EventCreated || evs[0].Release != "r1" || !evs[0].At.Equal(rec.CreatedOn) {
				t.Errorf("history of a new error: %+v, want created in r1 at %v", evs, rec.CreatedOn)
			}
		}

		if err := tdb.DB.Exec("UPDATE app_errors SET resolved = ?", true).Error; err != nil {
			t.Fatal(err)
		}
		if stmts, inserts := record(); inserts != chunks || len(stmts) > maxStmts+chunks {
			t.Errorf("a pass over %d regressions: %d statements, %d inserts of events; want at most %d, and %d",
				errs, len(stmts), inserts, maxStmts+chunks, chunks)
		}
		var evs []store.ErrorEvent
		if err := tdb.DB.Find(&evs).Error; err != nil {
			t.Fatal(err)
		}
		hashes := map[string]bool{}
		for _, e := range evs {
			if e.Kind != store.EventRegressed || e.Release != "r1" || e.Actor != "" {
				t.Fatalf("event %+v, want regressed in r1 by nobody", e)
			}
			hashes[e.Hash] = true
		}
		if len(evs) != errs || len(hashes) != errs {
			t.Errorf("%d events for %d errors, want one per error (%d)", len(evs), len(hashes), errs)
		}
		evsOf, err := st.History(context.Background(), &recs[0], store.EventHistory)
		if err != nil {
			t.Fatal(err)
		}
		if len(evsOf) != 2 || evsOf[0].Kind != store.EventRegressed || evsOf[1].Kind != store.EventCreated {
			t.Errorf("history after a regression: %+v, want regressed, then created", evsOf)
		}
	})
}

// TestWorkflowMySQLSchema: the events table errmon writes out for MySQL
// has exactly the columns and indexes of its model.
func TestWorkflowMySQLSchema(t *testing.T) {
	tdb := openMySQL(t)
	cfg := errmon.DefaultConfig()
	cfg.DB, cfg.Output = tdb.DB, io.Discard
	m, err := errmon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	model := &store.ErrorEvent{}
	stmt := tdb.DB.Model(model).Statement
	if err := stmt.Parse(model); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(stmt.Schema.DBNames))
	cols, err := tdb.DB.Migrator().ColumnTypes(model)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cols {
		got = append(got, c.Name())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("app_error_events: MySQL columns %v, model columns %v", got, want)
	}
	for _, idx := range stmt.Schema.ParseIndexes() {
		if !tdb.DB.Migrator().HasIndex(model, idx.Name) {
			t.Errorf("app_error_events: index %s is missing on MySQL", idx.Name)
		}
	}
}
