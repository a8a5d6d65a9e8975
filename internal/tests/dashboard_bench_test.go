package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// The dashboard with 100,000 stored errors, on SQLite, from the repository
// root (go.work wires this module):
//
//	go test -run '^$' -bench BenchmarkDashboard -benchmem -count 3 ./internal/tests/
//
// The seeded database is a SQLite file of about 180 MB kept at
// $TMPDIR/errmon-dashboard-bench-v1.db: made once (outside the timed part,
// under a sync.Once), shared by every sub-benchmark and -count run, and
// reused by later runs when it holds the expected rows. Delete it to reseed.

const benchErrors = 100_000

var benchSeed struct {
	once sync.Once
	dsn  string
	err  error
}

// benchDashboardDSN returns the DSN of a SQLite file holding benchErrors
// errors, each with one occurrence sample and one hourly count.
func benchDashboardDSN(b *testing.B) string {
	b.Helper()
	benchSeed.once.Do(func() {
		file := filepath.Join(os.TempDir(), "errmon-dashboard-bench-v1.db")
		benchSeed.dsn = file + "?_journal_mode=WAL&_busy_timeout=10000"
		if benchSeeded(benchSeed.dsn) {
			return
		}
		// Seed a private file and move it in place, so that a run that
		// stops half-way leaves nothing that looks complete.
		tmp := fmt.Sprintf("%s.%d.tmp", file, os.Getpid())
		defer os.Remove(tmp)
		if err := seedBenchDB(tmp + "?_journal_mode=OFF&_synchronous=OFF"); err != nil {
			benchSeed.err = err
			return
		}
		os.Remove(file + "-wal")
		os.Remove(file + "-shm")
		benchSeed.err = os.Rename(tmp, file)
	})
	if benchSeed.err != nil {
		b.Fatalf("seed %d errors: %v", benchErrors, benchSeed.err)
	}
	return benchSeed.dsn
}

// benchSeeded reports whether the file at dsn already holds the seed.
func benchSeeded(dsn string) bool {
	if _, err := os.Stat(dsn[:strings.IndexByte(dsn, '?')]); err != nil {
		return false
	}
	db, err := gorm.Open(sqlite.Open(dsn), quietGorm())
	if err != nil {
		return false
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	var n int64
	return db.Model(&errmon.ErrorRecord{}).Count(&n).Error == nil && n == benchErrors
}

var benchKinds = []struct{ name, msg string }{
	{"runtime.boundsError", "runtime error: index out of range [%d] with length %d"},
	{"*errors.errorString", "payment gateway timeout after %dms (attempt %d)"},
	{"*net.OpError", "dial tcp 10.0.%d.%d:5432: connect: connection refused"},
	{"*json.SyntaxError", "invalid character 'x' looking for beginning of value at offset %d (%d)"},
	{"runtime.Error", "invalid memory address or nil pointer dereference in worker %d/%d"},
	{"*fs.PathError", "open /var/data/upload-%d-%d.bin: no such file or directory"},
	{"*url.Error", "Get \"https://inventory.internal/items/%d?rev=%d\": context deadline exceeded"},
	{"string", "unexpected state %d in order %d"},
}

func seedBenchDB(dsn string) error {
	db, err := gorm.Open(sqlite.Open(dsn), quietGorm())
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	return seedBench(db)
}

// seedBench creates errmon's tables in db and stores benchErrors errors,
// each with one occurrence sample and one hourly count.
func seedBench(db *gorm.DB) error {
	st := store.New(db)
	if err := st.Migrate(context.Background()); err != nil {
		return err
	}
	now := store.DBTime(time.Now())
	const batch = 2000
	tb := "main.(*Server).handleOrder\n\t/app/server.go:214\nmain.(*Server).routes.func3\n\t/app/routes.go:88\n" +
		"github.com/gin-gonic/gin.(*Context).Next\n\t/go/pkg/mod/github.com/gin-gonic/gin@v1.12.0/context.go:192\n" +
		"net/http.serverHandler.ServeHTTP\n\t/usr/local/go/src/net/http/server.go:3340\n"
	return db.Transaction(func(tx *gorm.DB) error {
		recs := make([]errmon.ErrorRecord, 0, batch)
		occ := make([]store.ErrorOccurrence, 0, batch)
		hours := make([]store.ErrorHourly, 0, batch)
		for i := range benchErrors {
			k := benchKinds[i%len(benchKinds)]
			last := now.Add(-time.Duration(i) * 12 * time.Second) // spread over ~2 weeks
			path := fmt.Sprintf("/api/v1/orders/%d/items", i)
			rd := fmt.Sprintf(`{"method":"GET","url":%q,"route":"/api/v1/orders/:id/items","client_ip":"10.1.%d.%d","headers":{"Accept":["application/json"],"Authorization":["**************"]}}`,
				path, i%250, i%200)
			h := dashHash(fmt.Sprint("bench", i))
			recs = append(recs, errmon.ErrorRecord{
				Hash: h, Host: "api.example.com", Path: path, Method: "GET", Route: "/api/v1/orders/:id/items",
				ExceptionName: k.name, Message: fmt.Sprintf(k.msg, i%977, i), Traceback: tb, RequestData: rd,
				Count: int64(1 + i%1000), CreatedOn: last.Add(-time.Duration(i%500) * time.Hour), LastSeen: last,
				Resolved: i%5 == 4,
			})
			occ = append(occ, store.ErrorOccurrence{Hash: h, SeenAt: last, Host: "api.example.com", Path: path, Method: "GET",
				Message: recs[len(recs)-1].Message, RequestData: rd})
			hours = append(hours, store.ErrorHourly{Hash: h, Hour: store.HourStart(last), Count: int64(1 + i%7)})
			if len(recs) == batch || i == benchErrors-1 {
				if err := tx.CreateInBatches(recs, 200).Error; err != nil {
					return fmt.Errorf("insert app_errors: %w", err)
				}
				if err := tx.CreateInBatches(occ, 200).Error; err != nil {
					return fmt.Errorf("insert app_error_occurrences: %w", err)
				}
				if err := tx.CreateInBatches(hours, 300).Error; err != nil {
					return fmt.Errorf("insert app_error_hourly: %w", err)
				}
				recs, occ, hours = recs[:0], occ[:0], hours[:0]
			}
		}
		return nil
	})
}

// BenchmarkDashboard renders dashboard pages over 100k errors stored in
// SQLite.
func BenchmarkDashboard(b *testing.B) {
	db, err := gorm.Open(sqlite.Open(benchDashboardDSN(b)), quietGorm())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	benchDashboardPages(b, db)
}

// BenchmarkDashboardPostgres is BenchmarkDashboard on the PostgreSQL server
// of ERRMON_TEST_PG_DSN (skipped without it). The 100k errors live in the
// schema errmon_dashboard_bench_v1, seeded once and reused by later runs;
// drop it to reseed.
func BenchmarkDashboardPostgres(b *testing.B) {
	base := pgDSN(b)
	const schema = "errmon_dashboard_bench_v1"
	benchPGSeed.once.Do(func() {
		admin, err := gorm.Open(postgres.Open(base), quietGorm())
		if err != nil {
			benchPGSeed.err = err
			return
		}
		defer func() {
			if s, err := admin.DB(); err == nil {
				s.Close()
			}
		}()
		var n int64
		if admin.Raw("SELECT count(*) FROM "+schema+".app_errors").Scan(&n).Error == nil && n == benchErrors {
			return
		}
		if err := admin.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE").Error; err != nil {
			benchPGSeed.err = err
			return
		}
		if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
			benchPGSeed.err = err
			return
		}
		db, err := gorm.Open(postgres.Open(withSearchPath(base, schema)), quietGorm())
		if err != nil {
			benchPGSeed.err = err
			return
		}
		defer func() {
			if s, err := db.DB(); err == nil {
				s.Close()
			}
		}()
		if benchPGSeed.err = seedBench(db); benchPGSeed.err == nil {
			// What autovacuum does to a table that has settled: without
			// it, COUNT(*) cannot use an index-only scan.
			benchPGSeed.err = db.Exec("VACUUM ANALYZE").Error
		}
	})
	if benchPGSeed.err != nil {
		b.Fatalf("seed PostgreSQL: %v", benchPGSeed.err)
	}
	db, err := gorm.Open(postgres.Open(withSearchPath(base, schema)), quietGorm())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	benchDashboardPages(b, db)
}

var benchPGSeed struct {
	once sync.Once
	err  error
}

// benchCase is one page the benchmarks time.
type benchCase struct{ name, target string }

// benchDashboardPages times the dashboard's pages over a seeded db (its
// errors' hashes as seedBench or seedScale make them), and the extra
// cases.
func benchDashboardPages(b *testing.B, db *gorm.DB, extra ...benchCase) {
	cfg := errmon.DefaultConfig()
	cfg.DB, cfg.Output = db, io.Discard
	cfg.FlushInterval = time.Hour
	cfg.RetentionDays, cfg.MaxErrors = -1, -1 // the seeds are kept between runs: nothing may prune them
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := errmon.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	dashQuietGin(b)
	e := gin.New()
	m.RegisterRoutes(e)
	var detail string
	if err := db.Model(&store.ErrorOccurrence{}).Select("hash").Order("id").Limit(1).Scan(&detail).Error; err != nil || detail == "" {
		b.Fatalf("no error with a sample to show: %v", err)
	}
	cases := []benchCase{
		{"list_page1", "/dev/error/"},
		{"list_open", "/dev/error/?status=open"},
		{"list_sort_count", "/dev/error/?sort=count"},
		{"list_page_2500", "/dev/error/?page=2500"},
		{"search_common", "/dev/error/?q=timeout"},
		{"search_rare", "/dev/error/?q=upload-5-"},
		{"search_none", "/dev/error/?q=no+such+text"},
		{"api_page1", "/dev/error/api/errors"},
		{"api_search", "/dev/error/api/errors?q=timeout"},
		{"detail", "/dev/error/" + detail},
	}
	cases = append(cases, extra...)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, tc.target, nil)
				r.RemoteAddr, r.Host = "127.0.0.1:40000", dashHost
				w := httptest.NewRecorder()
				e.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d", tc.target, w.Code)
				}
			}
		})
	}
}
