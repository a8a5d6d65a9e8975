package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	pkgerrors "github.com/pkg/errors"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// The multi-process tests start several copies of the test binary, each
// running TestHelperProcess: a Monitor of its own that records the same
// three errors from many goroutines into one database, then closes.

const (
	helperEnv        = "ERRMON_HELPER_PROCESS"
	helperDriverEnv  = "ERRMON_HELPER_DRIVER"
	helperDSNEnv     = "ERRMON_HELPER_DSN"
	helperPerGEnv    = "ERRMON_HELPER_PER_GOROUTINE"
	helperGoroutines = 8
)

//go:noinline
func multiProcessStackError() error { return pkgerrors.New("shared error with a stack") }

// TestHelperProcess is not a test: it is the body of a child process.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("child process of the multi-process tests")
	}
	if err := helperMain(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helperMain() error {
	perG, err := strconv.Atoi(os.Getenv(helperPerGEnv))
	if err != nil {
		return fmt.Errorf("bad %s: %w", helperPerGEnv, err)
	}
	var dial gorm.Dialector
	switch os.Getenv(helperDriverEnv) {
	case "postgres":
		dial = postgres.Open(os.Getenv(helperDSNEnv))
	case "sqlite":
		dial = sqlite.Open(os.Getenv(helperDSNEnv))
	case "mysql":
		dial = mysql.Open(os.Getenv(helperDSNEnv))
	default:
		return errors.New("no driver")
	}
	db, err := gorm.Open(dial, quietGorm())
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	var logs syncBuffer
	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.FlushInterval = 3 * time.Millisecond
	cfg.CloseTimeout = time.Minute
	gin.SetMode(gin.ReleaseMode)
	m, err := errmon.New(cfg)
	if err != nil {
		return fmt.Errorf("New: %w", err)
	}
	r := gin.New()
	r.Use(m.Middleware())
	r.GET("/boom/:i", func(c *gin.Context) { panicIndex(10 + len(c.Param("i"))) })

	var wg sync.WaitGroup
	for g := 0; g < helperGoroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				switch i % 3 {
				case 0:
					m.Record(nil, fmt.Errorf("job %d of worker %d failed", i, g))
				case 1:
					m.Record(nil, multiProcessStackError())
				case 2:
					r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom/"+strconv.Itoa(i), nil))
				}
			}
		}(g)
	}
	wg.Wait()
	if err := m.Close(); err != nil {
		return fmt.Errorf("Close: %w\n%s", err, logs.String())
	}
	s := m.Stats()
	if s.Stored != int64(helperGoroutines*perG) || s.Dropped != 0 {
		return fmt.Errorf("stats %+v, want %d stored\n%s", s, helperGoroutines*perG, logs.String())
	}
	if strings.Contains(logs.String(), "level=ERROR") || strings.Contains(logs.String(), "level=WARN") {
		return fmt.Errorf("errors logged:\n%s", logs.String())
	}
	return nil
}

// runHelpers starts n child processes against one database and waits.
func runHelpers(t *testing.T, n, perG int, driver, dsn string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]bytes.Buffer, n)
	for p := 0; p < n; p++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			helperEnv+"=1", helperDriverEnv+"="+driver, helperDSNEnv+"="+dsn,
			helperPerGEnv+"="+strconv.Itoa(perG))
		cmd.Stdout, cmd.Stderr = &outs[p], &outs[p]
		if err := cmd.Start(); err != nil {
			t.Fatalf("start child: %v", err)
		}
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			errs[p] = cmd.Wait()
		}(p)
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			t.Errorf("child %d: %v\n%s", p, err, outs[p].String())
		}
	}
}

func checkMultiProcessRows(t *testing.T, db *gorm.DB, total int64) {
	t.Helper()
	recs := allRecords(t, db)
	if len(recs) != 3 {
		for _, r := range recs {
			t.Logf("row %s %q count %d", r.ExceptionName, r.Message, r.Count)
		}
		t.Fatalf("%d rows, want 3 (one per shared error)", len(recs))
	}
	var sum int64
	for _, rec := range recs {
		if rec.Count != total/3 {
			t.Errorf("%s %q: count %d, want %d", rec.ExceptionName, rec.Message, rec.Count, total/3)
		}
		sum += rec.Count
	}
	if sum != total {
		t.Errorf("counts sum to %d, want %d", sum, total)
	}
	var hourly int64
	if err := db.Table("app_error_hourly").Select("COALESCE(SUM(count),0)").Scan(&hourly).Error; err != nil {
		t.Fatal(err)
	}
	if hourly != total {
		t.Errorf("hourly counts sum to %d, want %d", hourly, total)
	}
}

func TestMultiProcessPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	const processes, perG = 4, 300 // perG a multiple of 3: equal counts per error
	tdb := openPostgres(t)
	// The children create the tables themselves, all at once, as instances
	// of a service starting together do.
	runHelpers(t, processes, perG, "postgres", tdb.DSN)
	checkMultiProcessRows(t, tdb.DB, processes*helperGoroutines*perG)
}

func TestMultiProcessMySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	const processes, perG = 4, 300
	tdb := openMySQL(t)
	runHelpers(t, processes, perG, "mysql", tdb.DSN)
	checkMultiProcessRows(t, tdb.DB, processes*helperGoroutines*perG)
}

func TestMultiProcessSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	const processes, perG = 3, 150
	tdb := openSQLite(t)
	runHelpers(t, processes, perG, "sqlite", tdb.DSN)
	checkMultiProcessRows(t, tdb.DB, processes*helperGoroutines*perG)
}
