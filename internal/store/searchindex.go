package store

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/errmon/errmon/internal/text"
	"gorm.io/gorm"
)

// The dashboard's indexes: one per list order and status filter, so that
// every page of the list is one index range, and on PostgreSQL a trigram
// index for the search.
//
// The ordered indexes are declared on ErrorRecord (GORM creates them on
// SQLite and PostgreSQL) and written out in mysqlTables. What a migration
// cannot declare is done here: the single-column indexes of earlier
// versions, which the composite ones make redundant, are dropped; MySQL
// tables created by an earlier version get the new indexes; PostgreSQL
// gets pg_trgm's GIN index (and loses the one-column ones of earlier
// versions) when the extension can be had.

// searchIndex tells how the dashboard searches a store.
type searchIndex struct {
	// trigram is set when PostgreSQL's GIN trigram index serves the
	// search: it then covers every error.
	trigram bool
	// missing says why the search is bounded to the newest errors on
	// PostgreSQL (pg_trgm is not available); "" elsewhere.
	missing string
	once    sync.Once // the one log line about missing
}

// SearchIndexed reports whether PostgreSQL's trigram index serves the
// search (it then covers every error) and, when the search is bounded to
// the newest errors on PostgreSQL, why.
func (s *Store) SearchIndexed() (trigram bool, missing string) {
	return s.search.trigram, s.search.missing
}

// ListIndexes are the ordered indexes of app_errors, as mysqlTables
// writes them.
var ListIndexes = []struct{ Name, Cols string }{
	{"idx_app_errors_last_seen_id", "last_seen, id"},
	{"idx_app_errors_count_id", "count, id"},
	{"idx_app_errors_created_on_id", "created_on, id"},
	{"idx_app_errors_resolved_last_seen_id", "resolved, last_seen, id"},
	{"idx_app_errors_resolved_count_id", "resolved, count, id"},
	{"idx_app_errors_resolved_created_on_id", "resolved, created_on, id"},
	{"idx_app_errors_muted_id", "muted, id"}, // the Muted tab (workflow)
	{"idx_app_errors_users_id", "users, id"},
	{"idx_app_errors_resolved_users_id", "resolved, users, id"},
}

// oldListIndexes are indexes of earlier versions that listIndexes replace.
var oldListIndexes = []string{
	"idx_app_errors_count", "idx_app_errors_created_on", "idx_app_errors_last_seen", "idx_app_errors_resolved_last_seen",
}

// trigramColumns are the searched columns.
var trigramColumns = []string{"exception_name", "message", "path"}

// searchedText is trigramColumns as one lower-case text, a space between
// each: the expression of PostgreSQL's GIN trigram index, one index for
// the three, so that the terms of a search are ANDed inside one index scan
// (three indexes would AND bitmaps of every row that holds a common term).
// A term without a space is in one of the columns exactly when it is in
// this text.
const searchedText = "lower(exception_name || ' ' || message || ' ' || path)"

// TrigramIndex is the name of the GIN trigram index on searchedText.
const TrigramIndex = "idx_app_errors_trgm_text"

// oldTrigramIndexes are the one-column trigram indexes of earlier
// versions, which TrigramIndex replaces.
var oldTrigramIndexes = []string{"idx_app_errors_trgm_exception_name", "idx_app_errors_trgm_message", "idx_app_errors_trgm_path"}

// migrateListIndexes completes a migration that succeeded (err == nil)
// with the dashboard's indexes, and returns err otherwise.
func (s *Store) migrateListIndexes(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	db := s.db.WithContext(ctx)
	switch {
	case db.Dialector.Name() == "postgres":
		return db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrateLockKey).Error; err != nil {
				return fmt.Errorf("take the migration lock: %w", err)
			}
			var schema string
			if err := tx.Raw("SELECT current_schema()").Scan(&schema).Error; err != nil {
				return fmt.Errorf("current schema: %w", err)
			}
			for _, name := range oldListIndexes {
				if err := tx.Exec(fmt.Sprintf("DROP INDEX IF EXISTS %s.%s", quoteIdent(schema), name)).Error; err != nil {
					return fmt.Errorf("drop index %s: %w", name, err)
				}
			}
			return s.trigramIndexes(tx, schema)
		})
	case isMySQL(db):
		return mysqlListIndexes(db)
	default:
		for _, name := range oldListIndexes {
			if err := db.Exec("DROP INDEX IF EXISTS " + name).Error; err != nil {
				return fmt.Errorf("drop index %s: %w", name, err)
			}
		}
	}
	return nil
}

// TrigramExtension is the extension the search index needs (a variable
// for the test of its absence).
var TrigramExtension = "pg_trgm"

// trigramIndexes creates pg_trgm (a trusted extension since PostgreSQL 13:
// the CREATE privilege on the database is enough) and the GIN index of
// the search, inside the migration's transaction. When either cannot be
// had, what was done of it is rolled back (to a savepoint), the search is
// bounded (see searchWindow) and the dashboard says why once in the log:
// the migration itself goes on.
func (s *Store) trigramIndexes(tx *gorm.DB, schema string) error {
	s.search.trigram, s.search.missing = false, ""
	if err := tx.SavePoint("errmon_trgm").Error; err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := createTrigramIndexes(tx, schema); err != nil {
		if err := tx.RollbackTo("errmon_trgm").Error; err != nil {
			return fmt.Errorf("rollback to savepoint: %w", err)
		}
		s.search.missing = text.Cut(err.Error(), 300)
		return nil
	}
	s.search.trigram = true
	return nil
}

// createTrigramIndexes creates the extension and TrigramIndex (and
// analyzes the table when it made the index), and drops the indexes it
// replaces.
func createTrigramIndexes(tx *gorm.DB, schema string) error {
	if err := tx.Exec("CREATE EXTENSION IF NOT EXISTS " + quoteIdent(TrigramExtension)).Error; err != nil {
		return err
	}
	// The extension may live in another schema than the tables (it is
	// one per database): its operator class is named with its schema.
	var extSchema string
	if err := tx.Raw("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = ?", TrigramExtension).
		Scan(&extSchema).Error; err != nil {
		return err
	}
	if extSchema == "" {
		return fmt.Errorf("extension %s not found after CREATE EXTENSION", TrigramExtension)
	}
	var had bool
	if err := tx.Raw("SELECT to_regclass(?) IS NOT NULL", quoteIdent(schema)+"."+TrigramIndex).Scan(&had).Error; err != nil {
		return err
	}
	ddl := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON app_errors USING gin ((%s) %s.gin_trgm_ops)",
		TrigramIndex, searchedText, quoteIdent(extSchema))
	if err := tx.Exec(ddl).Error; err != nil {
		return fmt.Errorf("create trigram index: %w", err)
	}
	if !had {
		// The planner's statistics of the indexed expression come with
		// the next ANALYZE, which autovacuum may not run for long on a
		// table that has settled; without them it misjudges every
		// search. (A role that does not own the table gets a warning.)
		if err := tx.Exec("ANALYZE app_errors").Error; err != nil {
			return fmt.Errorf("analyze app_errors: %w", err)
		}
	}
	for _, name := range oldTrigramIndexes {
		if err := tx.Exec(fmt.Sprintf("DROP INDEX IF EXISTS %s.%s", quoteIdent(schema), name)).Error; err != nil {
			return fmt.Errorf("drop index %s: %w", name, err)
		}
	}
	return nil
}

// LogSearchOnce logs, once per store, that the search is bounded because
// pg_trgm is missing.
func (s *Store) LogSearchOnce(log func(msg string, args ...any)) {
	if s.search.missing == "" {
		return
	}
	s.search.once.Do(func() {
		log("errmon: dashboard search looks at the newest errors only: PostgreSQL's pg_trgm extension is not available",
			"limit", SearchWindow, "err", s.search.missing)
	})
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// mysqlListIndexes brings the indexes of an app_errors table created by an
// earlier version up to listIndexes in one ALTER TABLE (CREATE TABLE IF
// NOT EXISTS leaves an existing table as it is).
func mysqlListIndexes(db *gorm.DB) error {
	var names []string
	if err := db.Raw("SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'app_errors'").
		Scan(&names).Error; err != nil {
		return fmt.Errorf("list indexes: %w", err)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	var changes []string
	for _, idx := range ListIndexes {
		if !have[idx.Name] {
			changes = append(changes, fmt.Sprintf("ADD INDEX %s (%s)", idx.Name, idx.Cols))
		}
	}
	for _, name := range oldListIndexes {
		if have[name] {
			changes = append(changes, "DROP INDEX "+name)
		}
	}
	if len(changes) == 0 {
		return nil
	}
	if err := db.Exec("ALTER TABLE app_errors " + strings.Join(changes, ", ")).Error; err != nil {
		return fmt.Errorf("update indexes: %w", err)
	}
	return nil
}
