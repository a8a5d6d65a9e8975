package bench

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Databases for the benchmarks: a fresh SQLite file in a temp dir, or a
// fresh schema on the PostgreSQL server named by ERRMON_TEST_PG_DSN (skipped
// without it, unless ERRMON_REQUIRE_PG=1). The main module's testdb_test.go
// cannot be imported from here, so this is a small copy of its idea.

func quietGorm() *gorm.Config {
	return &gorm.Config{Logger: logger.Default.LogMode(logger.Silent)}
}

// openSQLite opens a fresh SQLite file in WAL mode, as a service would.
func openSQLite(b testing.TB) *gorm.DB {
	b.Helper()
	dsn := filepath.Join(b.TempDir(), "errors.db") + "?_journal_mode=WAL&_busy_timeout=10000"
	db, err := gorm.Open(sqlite.Open(dsn), quietGorm())
	if err != nil {
		b.Fatalf("open sqlite: %v", err)
	}
	b.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

// pgDSN returns ERRMON_TEST_PG_DSN, or skips (fails under ERRMON_REQUIRE_PG=1).
func pgDSN(b testing.TB) string {
	b.Helper()
	dsn := os.Getenv("ERRMON_TEST_PG_DSN")
	if dsn == "" {
		if os.Getenv("ERRMON_REQUIRE_PG") == "1" {
			b.Fatal("ERRMON_REQUIRE_PG=1 but ERRMON_TEST_PG_DSN is empty")
		}
		b.Skip("PostgreSQL benchmarks skipped: set ERRMON_TEST_PG_DSN to run them")
	}
	return dsn
}

// openPostgres opens the benchmark server in a new schema, dropped at the end.
func openPostgres(b testing.TB) *gorm.DB {
	b.Helper()
	base := pgDSN(b)
	admin, err := gorm.Open(postgres.Open(base), quietGorm())
	if err != nil {
		b.Fatalf("open postgres: %v", err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	schema := "errmon_bench_" + hex.EncodeToString(r[:])
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		b.Fatalf("create schema: %v", err)
	}
	db, err := gorm.Open(postgres.Open(withSearchPath(base, schema)), quietGorm())
	if err != nil {
		b.Fatalf("open postgres schema: %v", err)
	}
	b.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		if sqlDB, err := admin.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

// withSearchPath adds search_path to a key=value or URL DSN.
func withSearchPath(dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "search_path=" + schema
	}
	return fmt.Sprintf("%s search_path=%s", dsn, schema)
}

// openDB opens the named kind: "sqlite" or "postgres".
func openDB(b testing.TB, kind string) *gorm.DB {
	if kind == "postgres" {
		return openPostgres(b)
	}
	return openSQLite(b)
}

// stmtCounter counts the SQL statements GORM runs on a DB, through
// callbacks on every processor (Exec is Raw, Raw(...).Scan is Row), and the
// upserts of app_errors among them (one per error per flush).
type stmtCounter struct {
	stmts, upserts atomic.Int64
}

func countStatements(b testing.TB, db *gorm.DB) *stmtCounter {
	b.Helper()
	sc := &stmtCounter{}
	count := func(tx *gorm.DB) {
		sc.stmts.Add(1)
		if strings.HasPrefix(strings.TrimSpace(tx.Statement.SQL.String()), "INSERT INTO app_errors") {
			sc.upserts.Add(1)
		}
	}
	cb := db.Callback()
	regs := []error{
		cb.Create().After("gorm:create").Register("bench:count", count),
		cb.Query().After("gorm:query").Register("bench:count", count),
		cb.Update().After("gorm:update").Register("bench:count", count),
		cb.Delete().After("gorm:delete").Register("bench:count", count),
		cb.Row().After("gorm:row").Register("bench:count", count),
		cb.Raw().After("gorm:raw").Register("bench:count", count),
	}
	for _, err := range regs {
		if err != nil {
			b.Fatalf("register statement counter: %v", err)
		}
	}
	return sc
}

func (sc *stmtCounter) reset() {
	sc.stmts.Store(0)
	sc.upserts.Store(0)
}
