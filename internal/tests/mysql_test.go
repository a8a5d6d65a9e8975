package tests

import (
	"io"
	"slices"
	"testing"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
)

// TestMySQLSchemaMatchesModels: the tables errmon writes out for MySQL
// have exactly the columns of the GORM models, so that a column added to
// a model cannot be forgotten there.
func TestMySQLSchemaMatchesModels(t *testing.T) {
	tdb := openMySQL(t)
	cfg := errmon.DefaultConfig()
	cfg.DB = tdb.DB
	cfg.Output = io.Discard
	m, err := errmon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, model := range []any{&errmon.ErrorRecord{}, &store.ErrorOccurrence{}, &store.ErrorHourly{}, &store.ErrorWrite{}} {
		stmt := tdb.DB.Model(model).Statement
		if err := stmt.Parse(model); err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(stmt.Schema.DBNames)
		cols, err := tdb.DB.Migrator().ColumnTypes(model)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cols {
			got = append(got, c.Name())
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: MySQL columns %v, model columns %v", stmt.Schema.Table, got, want)
		}
		for _, idx := range stmt.Schema.ParseIndexes() {
			if !tdb.DB.Migrator().HasIndex(model, idx.Name) {
				t.Errorf("%s: index %s of the model is missing on MySQL", stmt.Schema.Table, idx.Name)
			}
		}
	}
}
