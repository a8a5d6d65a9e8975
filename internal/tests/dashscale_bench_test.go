package tests

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// The dashboard at 10,000 and 1,000,000 stored errors, on SQLite,
// PostgreSQL and MySQL (MariaDB): its pages must cost about the same at
// both sizes. From the repository root (go.work wires this module):
//
//	ERRMON_TEST_PG_DSN='host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable' \
//	ERRMON_TEST_MYSQL_DSN='root@tcp(127.0.0.1:3306)/' ERRMON_BENCH_1M=1 \
//	go test -run '^$' -bench BenchmarkDashboardScale -benchtime 300ms ./internal/tests/
//
// Without ERRMON_BENCH_1M=1 only the 10k rows run. The seeded data is made
// in SQL (a recursive CTE on SQLite, generate_series on PostgreSQL,
// MariaDB's seq_0_to_N sequence table), in well under a minute per
// database at 1M, and kept for later runs: the SQLite file
// $TMPDIR/errmon-scale-v1-N.db, the PostgreSQL schema and the MySQL
// database errmon_scale_v1_N. Drop them to reseed.

// scaleSeeds caches the seeded databases of one run.
var scaleSeeds sync.Map // "kind/n" -> *scaleSeed

type scaleSeed struct {
	once sync.Once
	dsn  string
	err  error
}

// scaleBase is the newest last_seen of the seeded errors: whole seconds,
// so that SQL-made times read back as Go writes them.
func scaleBase() time.Time { return time.Now().UTC().Truncate(time.Hour) }

// scaleColumns are the columns the seed fills.
const scaleColumns = "hash, host, path, method, route, exception_name, message, traceback, request_data, count, created_on, last_seen, resolved, regressions, write_token"

// scaleKinds are the exception names and messages of the seed, by i % 8;
// %[1]s is i % 977 and %[2]s is i, as SQL expressions.
var scaleKinds = []struct{ name, msg string }{
	{"runtime.boundsError", "'runtime error: index out of range [', %[1]s, '] with length ', %[2]s"},
	{"*errors.errorString", "'payment gateway timeout after ', %[1]s, 'ms (attempt ', %[2]s, ')'"},
	{"*net.OpError", "'dial tcp 10.0.', %[1]s, '.', %[2]s, ':5432: connect: connection refused'"},
	{"*json.SyntaxError", "'invalid character x looking for beginning of value at offset ', %[1]s, ' (', %[2]s, ')'"},
	{"runtime.Error", "'invalid memory address or nil pointer dereference in worker ', %[1]s, '/', %[2]s"},
	{"*fs.PathError", "'open /var/data/upload-', %[1]s, '-', %[2]s, '.bin: no such file or directory'"},
	{"*url.Error", "'Get https://inventory.internal/items/', %[1]s, '?rev=', %[2]s, ': context deadline exceeded'"},
	{"string", "'unexpected state ', %[1]s, ' in order ', %[2]s"},
}

// scaleSelect is the SELECT list that makes error i (the SQL expression
// i) from hash, lastSeen and createdOn, the dialect's expressions.
func scaleSelect(i, hash, lastSeen, createdOn string) string {
	var name, msg strings.Builder
	name.WriteString("CASE " + i + " % 8")
	msg.WriteString("CASE " + i + " % 8")
	for k, kind := range scaleKinds {
		fmt.Fprintf(&name, " WHEN %d THEN '%s'", k, kind.name)
		fmt.Fprintf(&msg, " WHEN %d THEN concat(%s)", k, fmt.Sprintf(kind.msg, "("+i+" % 977)", i))
	}
	name.WriteString(" END")
	msg.WriteString(" END")
	tb := `main.(*Server).handleOrder\n\t/app/server.go:214\nnet/http.serverHandler.ServeHTTP\n\t/usr/local/go/src/net/http/server.go:3340\n`
	return strings.Join([]string{
		hash, "'api.example.com'", "concat('/api/v1/orders/', " + i + ", '/items')", "'GET'", "'/api/v1/orders/:id/items'",
		name.String(), msg.String(), "'" + tb + "'",
		`concat('{"method":"GET","url":"/api/v1/orders/', ` + i + `, '/items"}')`,
		"1 + " + i + " % 1000", createdOn, lastSeen, "(" + i + " % 5 = 4)", "0", "''",
	}, ", ")
}

// seedScale creates errmon's tables in db and stores n errors in SQL; the
// newest 20,000 get an hourly count and the newest 2,000 a sample.
func seedScale(db *gorm.DB, kind string, n int) error {
	st := store.New(db)
	if err := st.Migrate(context.Background()); err != nil {
		return err
	}
	base := scaleBase()
	var stmts []string
	pgBase, myBase := base.Format("2006-01-02 15:04:05+00"), base.Format("2006-01-02 15:04:05")
	switch kind {
	case "sqlite":
		b := base.Format("2006-01-02 15:04:05")
		ls := fmt.Sprintf("strftime('%%Y-%%m-%%d %%H:%%M:%%S', '%s', '-' || (i * 12) || ' seconds') || '+00:00'", b)
		co := fmt.Sprintf("strftime('%%Y-%%m-%%d %%H:%%M:%%S', '%s', '-' || (i * 12) || ' seconds', '-' || (i %% 500) || ' hours') || '+00:00'", b)
		stmts = []string{
			fmt.Sprintf("INSERT INTO app_errors (%s) WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < %d) SELECT %s FROM seq",
				scaleColumns, n-1, scaleSelect("i", "printf('%064x', i)", ls, co)),
			"INSERT INTO app_error_hourly (hash, hour, count) SELECT hash, strftime('%Y-%m-%d %H:00:00', last_seen) || '+00:00', 1 + id % 7 FROM app_errors WHERE id <= 20000",
		}
	case "postgres":
		stmts = []string{
			fmt.Sprintf("INSERT INTO app_errors (%s) SELECT %s FROM generate_series(0, %d) AS i", scaleColumns,
				scaleSelect("i", "lpad(to_hex(i), 64, '0')", "'"+pgBase+"'::timestamptz - i * interval '12 seconds'",
					"'"+pgBase+"'::timestamptz - i * interval '12 seconds' - (i % 500) * interval '1 hour'"), n-1),
			"INSERT INTO app_error_hourly (hash, hour, count) SELECT hash, date_trunc('hour', last_seen), 1 + id % 7 FROM app_errors WHERE id <= 20000",
		}
	case "mysql":
		stmts = []string{
			fmt.Sprintf("INSERT INTO app_errors (%s) SELECT %s FROM seq_0_to_%d", scaleColumns,
				scaleSelect("seq", "LPAD(LOWER(HEX(seq)), 64, '0')", "TIMESTAMP'"+myBase+"' - INTERVAL (seq * 12) SECOND",
					"TIMESTAMP'"+myBase+"' - INTERVAL (seq * 12) SECOND - INTERVAL (seq % 500) HOUR"), n-1),
			"INSERT INTO app_error_hourly (hash, hour, count) SELECT hash, DATE_FORMAT(last_seen, '%Y-%m-%d %H:00:00'), 1 + id % 7 FROM app_errors WHERE id <= 20000",
		}
	}
	stmts = append(stmts, "INSERT INTO app_error_occurrences (hash, seen_at, host, path, method, message, request_data, server) "+
		"SELECT hash, last_seen, host, path, method, message, request_data, '' FROM app_errors WHERE id <= 2000")
	for _, s := range stmts {
		if err := db.Exec(s).Error; err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	switch kind {
	case "postgres":
		return db.Exec("VACUUM ANALYZE").Error // what autovacuum does to a settled table
	case "mysql":
		return db.Exec("ANALYZE TABLE app_errors, app_error_hourly, app_error_occurrences").Error
	}
	return nil
}

// scaleDB opens the database of kind holding n seeded errors, seeding it
// on first use.
func scaleDB(b *testing.B, kind string, n int) *gorm.DB {
	b.Helper()
	v, _ := scaleSeeds.LoadOrStore(fmt.Sprintf("%s/%d", kind, n), &scaleSeed{})
	seed := v.(*scaleSeed)
	name := fmt.Sprintf("errmon_scale_v1_%d", n)
	open := func(dsn string) (*gorm.DB, error) {
		switch kind {
		case "postgres":
			return gorm.Open(postgres.Open(dsn), quietGorm())
		case "mysql":
			return gorm.Open(mysql.Open(dsn), quietGorm())
		}
		return gorm.Open(sqlite.Open(dsn), quietGorm())
	}
	var admin func() (*gorm.DB, error)
	switch kind {
	case "postgres":
		base := pgDSN(b)
		seed.dsn = withSearchPath(base, name)
		admin = func() (*gorm.DB, error) { return gorm.Open(postgres.Open(base), quietGorm()) }
	case "mysql":
		base := mysqlDSN(b)
		seed.dsn = base + name + mysqlOptions
		admin = func() (*gorm.DB, error) { return gorm.Open(mysql.Open(base+mysqlOptions), quietGorm()) }
	default:
		seed.dsn = filepath.Join(os.TempDir(), name+".db") + "?_journal_mode=WAL&_busy_timeout=10000"
	}
	seed.once.Do(func() {
		if db, err := open(seed.dsn); err == nil {
			// The samples are the seed's last rows: a seed that failed
			// before them is made again.
			var got, samples int64
			ok := db.Model(&errmon.ErrorRecord{}).Count(&got).Error == nil && got == int64(n) &&
				db.Model(&store.ErrorOccurrence{}).Count(&samples).Error == nil && samples == int64(min(n, 2000))
			scaleCloseDB(db)
			if ok {
				return
			}
		}
		start := time.Now()
		if admin != nil {
			a, err := admin()
			if err != nil {
				seed.err = err
				return
			}
			ddl := []string{"DROP SCHEMA IF EXISTS " + name + " CASCADE", "CREATE SCHEMA " + name}
			if kind == "mysql" {
				ddl = []string{"DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name}
			}
			for _, s := range ddl {
				if seed.err = a.Exec(s).Error; seed.err != nil {
					break
				}
			}
			scaleCloseDB(a)
			if seed.err != nil {
				return
			}
		} else {
			file := seed.dsn[:strings.IndexByte(seed.dsn, '?')]
			for _, f := range []string{file, file + "-wal", file + "-shm"} {
				os.Remove(f)
			}
		}
		db, err := open(seed.dsn)
		if err != nil {
			seed.err = err
			return
		}
		defer scaleCloseDB(db)
		seed.err = seedScale(db, kind, n)
		b.Logf("seeded %d errors on %s in %v", n, kind, time.Since(start).Round(time.Second))
	})
	if seed.err != nil {
		b.Fatalf("seed %d errors on %s: %v", n, kind, seed.err)
	}
	db, err := open(seed.dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { scaleCloseDB(db) })
	return db
}

func scaleCloseDB(db *gorm.DB) {
	if s, err := db.DB(); err == nil {
		s.Close()
	}
}

// scaleCursor is the cursor of the row at offset off of a list order.
func scaleCursor(b *testing.B, db *gorm.DB, sort, status string, off int) string {
	b.Helper()
	var rec errmon.ErrorRecord
	q := store.WithStatus(db.Model(&errmon.ErrorRecord{}), store.ListQuery{Status: status})
	col := store.SortColumn(sort)
	if err := q.Select("id, count, created_on, last_seen").Order(col + " DESC, id DESC").Offset(off).Limit(1).Take(&rec).Error; err != nil {
		b.Fatalf("cursor at %d: %v", off, err)
	}
	return url.QueryEscape(store.CursorOf(&rec, sort))
}

// BenchmarkDashboardScale times the dashboard's pages at 10k and (with
// ERRMON_BENCH_1M=1) 1M stored errors on each database.
func BenchmarkDashboardScale(b *testing.B) {
	sizes := []int{10_000}
	if os.Getenv("ERRMON_BENCH_1M") == "1" {
		sizes = append(sizes, 1_000_000)
	}
	for _, kind := range dbKinds {
		b.Run(kind, func(b *testing.B) {
			for _, n := range sizes {
				b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
					db := scaleDB(b, kind, n)
					deep := scaleCursor(b, db, "", "", n/2)
					deepCount := scaleCursor(b, db, store.SortCount, store.StatusOpen, n/4)
					benchDashboardPages(b, db,
						benchCase{"list_deep_cursor", "/dev/error/?after=" + deep},
						benchCase{"list_open_count_cursor", "/dev/error/?status=open&sort=count&after=" + deepCount},
						benchCase{"api_open_count", "/dev/error/api/errors?status=open&sort=count"},
						benchCase{"api_next", "/dev/error/api/errors?after=" + deep},
						benchCase{"search_terms", "/dev/error/?q=" + url.QueryEscape("attempt payment timeout")},
						benchCase{"search_prefixes", "/dev/error/?q=" + url.QueryEscape("route:orders method:get timeout is:open")},
						benchCase{"search_hash", "/dev/error/?q=hash:" + fmt.Sprintf("%064x", n/2)},
					)
				})
			}
		})
	}
}
