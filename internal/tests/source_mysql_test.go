package tests

import (
	"slices"
	"testing"

	"github.com/errmon/errmon/internal/store"
)

// TestSourceTableMatchesModelOnMySQL: the table errmon writes out for
// MySQL holds exactly the columns of store.ErrorSource, with (file, line)
// its primary key, as TestMySQLSchemaMatchesModels checks the other
// tables.
func TestSourceTableMatchesModelOnMySQL(t *testing.T) {
	tdb := openMySQL(t)
	newTestMonitor(t, tdb.DB, nil) // creates the tables
	model := &store.ErrorSource{}
	stmt := tdb.DB.Model(model).Statement
	if err := stmt.Parse(model); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(stmt.Schema.DBNames)
	cols, err := tdb.DB.Migrator().ColumnTypes(model)
	if err != nil {
		t.Fatal(err)
	}
	var got, keys []string
	for _, c := range cols {
		got = append(got, c.Name())
		if pk, ok := c.PrimaryKey(); ok && pk {
			keys = append(keys, c.Name())
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, want) {
		t.Errorf("%s: MySQL columns %v, model columns %v", stmt.Schema.Table, got, want)
	}
	if !slices.Equal(keys, []string{"file", "line"}) {
		t.Errorf("%s: primary key %v, want (file, line)", stmt.Schema.Table, keys)
	}
}
