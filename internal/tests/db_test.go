package tests

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Test databases. SQLite is a real file in a temp dir. PostgreSQL is the
// server named by ERRMON_TEST_PG_DSN (scripts/test.sh sets it, starting a
// server when none runs); each test gets a schema of its own, dropped at
// the end. MySQL (MariaDB) is the server named by ERRMON_TEST_MYSQL_DSN, a
// go-sql-driver DSN without a database ("root@tcp(127.0.0.1:3306)/"); each
// test gets a database of its own. Without a DSN the cases of that
// database skip, unless ERRMON_REQUIRE_PG=1 or ERRMON_REQUIRE_MYSQL=1 (as
// in CI), where they fail.

// testDB is one database under test.
type testDB struct {
	Name string   // "sqlite" or "postgres"
	DB   *gorm.DB // open, with errmon's tables not yet created
	DSN  string   // what another process opens to reach the same data
}

// pgDSN returns the PostgreSQL DSN for tests, or skips (or fails) the test.
func pgDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("ERRMON_TEST_PG_DSN")
	if dsn == "" {
		if os.Getenv("ERRMON_REQUIRE_PG") == "1" {
			t.Fatal("ERRMON_REQUIRE_PG=1 but ERRMON_TEST_PG_DSN is empty: run scripts/test.sh")
		}
		t.Skip("PostgreSQL tests skipped: set ERRMON_TEST_PG_DSN (scripts/test.sh does) to run them")
	}
	return dsn
}

func quietGorm() *gorm.Config {
	return &gorm.Config{Logger: logger.Default.LogMode(logger.Silent)}
}

// openSQLite opens a fresh SQLite file, in WAL mode with a busy timeout so
// that several connections (and processes) can share it.
func openSQLite(t testing.TB) testDB {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "errors.db") + "?_journal_mode=WAL&_busy_timeout=10000"
	db, err := gorm.Open(sqlite.Open(dsn), quietGorm())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return testDB{Name: "sqlite", DB: db, DSN: dsn}
}

// pgTrgmOnce creates the pg_trgm extension of the test database once.
var pgTrgmOnce sync.Once

// openPostgres opens the test server in a new schema of its own.
func openPostgres(t testing.TB) testDB {
	t.Helper()
	base := pgDSN(t)
	admin, err := gorm.Open(postgres.Open(base), quietGorm())
	if err != nil {
		t.Fatalf("open postgres %q: %v", base, err)
	}
	// pg_trgm exists once per database, in the schema that created it: made
	// by a test's migration it would live in that test's schema, and
	// dropping the schema would drop it (and every trigram index) under the
	// tests still running. It is made once, in public, before any test.
	pgTrgmOnce.Do(func() { admin.Exec("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public") })
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "errmon_test_" + hex.EncodeToString(b[:])
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	dsn := withSearchPath(base, schema)
	db, err := gorm.Open(postgres.Open(dsn), quietGorm())
	if err != nil {
		t.Fatalf("open postgres schema: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		if sqlDB, err := admin.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return testDB{Name: "postgres", DB: db, DSN: dsn}
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

func init() {
	// go-sql-driver/mysql logs each connection the fault tests cut; the
	// tests check what errmon makes of it instead.
	_ = mysqldriver.SetLogger(log.New(io.Discard, "", 0))
}

// mysqlDSN returns the MySQL server's DSN for tests (no database), or
// skips (or fails) the test.
func mysqlDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("ERRMON_TEST_MYSQL_DSN")
	if dsn == "" {
		if os.Getenv("ERRMON_REQUIRE_MYSQL") == "1" {
			t.Fatal("ERRMON_REQUIRE_MYSQL=1 but ERRMON_TEST_MYSQL_DSN is empty: run scripts/test.sh")
		}
		t.Skip("MySQL tests skipped: set ERRMON_TEST_MYSQL_DSN (scripts/test.sh does) to run them")
	}
	return dsn
}

// mysqlOptions are what errmon needs of a MySQL DSN: times scanned as
// time.Time, in UTC.
const mysqlOptions = "?parseTime=true&loc=UTC"

// openMySQL opens the test server in a new database of its own.
func openMySQL(t testing.TB) testDB {
	t.Helper()
	base := mysqlDSN(t)
	admin, err := gorm.Open(mysql.Open(base+mysqlOptions), quietGorm())
	if err != nil {
		t.Fatalf("open mysql %q: %v", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "errmon_test_" + hex.EncodeToString(b[:])
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("create database: %v", err)
	}
	dsn := base + name + mysqlOptions
	db, err := gorm.Open(mysql.Open(dsn), quietGorm())
	if err != nil {
		t.Fatalf("open mysql database: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		admin.Exec("DROP DATABASE " + name)
		if sqlDB, err := admin.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return testDB{Name: "mysql", DB: db, DSN: dsn}
}

// openTestDB opens the named database kind.
func openTestDB(t testing.TB, kind string) testDB {
	switch kind {
	case "postgres":
		return openPostgres(t)
	case "mysql":
		return openMySQL(t)
	}
	return openSQLite(t)
}

// dbKinds is what every storage test runs on.
var dbKinds = []string{"sqlite", "postgres", "mysql"}

// eachDB runs f once per database kind, as subtests.
func eachDB(t *testing.T, f func(t *testing.T, tdb testDB)) {
	for _, kind := range dbKinds {
		t.Run(kind, func(t *testing.T) { f(t, openTestDB(t, kind)) })
	}
}
