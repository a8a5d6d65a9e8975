package tests

import (
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

// TestWorkflowWriterEventsPerChunk: a pass over 1,000 new errors records
// each one's creation in its history with one insert per chunk, not per
// error; and every statement count of the pass stays per chunk.
func TestWorkflowWriterEventsPerChunk(t *testing.T) {
	const (
		errs   = 1000
		chunks = (errs + writeBatchSize - 1) / writeBatchSize
		// Per chunk of new errors: the upsert, the hourly counts, the
		// samples, the events and the receipt; plus a few per pass.
		maxStmts = 5*chunks + 10
	)
	eachDB(t, func(t *testing.T, tdb testDB) {
		log := &wpLogger{Interface: logger.Discard}
		m := coalesceMonitor(t, tdb.DB.Session(&gorm.Session{Logger: log}), func(c *errmon.Config) {
			c.FlushInterval, c.Release = time.Hour, "r1"
		})
		flush(t, m)
		log.take()
		for i := range errs {
			m.Record(nil, errors.New("new error "+letters(i)))
		}
		flush(t, m)
		stmts := log.take()
		var inserts int
		for _, s := range stmts {
			if strings.HasPrefix(strings.TrimSpace(s), "INSERT INTO app_error_events") {
				inserts++
			}
		}
		if inserts != chunks || len(stmts) > maxStmts {
			t.Errorf("a pass over %d new errors: %d statements, %d inserts of events; want at most %d, and %d",
				errs, len(stmts), inserts, maxStmts, chunks)
		}
		var evs []store.ErrorEvent
		if err := tdb.DB.Find(&evs).Error; err != nil {
			t.Fatal(err)
		}
		hashes := map[string]bool{}
		for _, e := range evs {
			if e.Kind != store.EventCreated || e.Release != "r1" || e.Actor != "" {
				t.Fatalf("event %+v, want created in r1 by nobody", e)
			}
			hashes[e.Hash] = true
		}
		if len(evs) != errs || len(hashes) != errs {
			t.Errorf("%d events for %d errors, want one per error (%d)", len(evs), len(hashes), errs)
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
