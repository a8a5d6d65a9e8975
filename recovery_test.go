package errmon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// Helpers shared by the root package's tests. The recovery tests
// themselves are black-box tests in internal/tests/recovery_test.go (they
// need a database), and internal/tests/monitor_test.go has its own copy of
// these helpers; the ones here stay while root tests of other files use
// them (panicIndex also serves TestExceptionName).

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testMonitor is a monitor with its panic log and its slog output captured.
type testMonitor struct {
	*Monitor
	db   *gorm.DB
	out  *syncBuffer // Config.Output
	logs *syncBuffer // Config.Logger
}

// newTestMonitor creates a monitor on db, with a long flush interval (tests
// call Flush), Output and Logger captured; tweak adjusts the config. The
// monitor is closed when the test ends.
func newTestMonitor(t testing.TB, db *gorm.DB, tweak func(*Config)) *testMonitor {
	t.Helper()
	tm := &testMonitor{db: db, out: &syncBuffer{}, logs: &syncBuffer{}}
	cfg := DefaultConfig()
	cfg.DB = db
	cfg.Output = tm.out
	cfg.Logger = slog.New(slog.NewTextHandler(tm.logs, nil))
	cfg.FlushInterval = time.Hour
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tm.Monitor = m
	t.Cleanup(func() { m.Close() })
	return tm
}

// sqliteMonitor is newTestMonitor on a fresh SQLite file.
func sqliteMonitor(t testing.TB, tweak func(*Config)) *testMonitor {
	t.Helper()
	return newTestMonitor(t, openSQLite(t).DB, tweak)
}

func (tm *testMonitor) flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := tm.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// records flushes and returns every stored error, oldest first.
func (tm *testMonitor) records(t testing.TB) []ErrorRecord {
	t.Helper()
	tm.flush(t)
	return allRecords(t, tm.db)
}

func allRecords(t testing.TB, db *gorm.DB) []ErrorRecord {
	t.Helper()
	var recs []ErrorRecord
	if err := db.Order("id").Find(&recs).Error; err != nil {
		t.Fatalf("read app_errors: %v", err)
	}
	return recs
}

// engine returns a gin engine with the monitor's middleware (unless bare).
func (tm *testMonitor) engine(bare bool) *gin.Engine {
	r := gin.New()
	if !bare {
		r.Use(tm.Middleware())
	}
	return r
}

// serve sends one request to h and returns the recorder.
func serve(h http.Handler, method, target string, body io.Reader, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// withGinMode sets gin's mode for the rest of the test.
func withGinMode(t testing.TB, mode string) {
	prev := gin.Mode()
	gin.SetMode(mode)
	t.Cleanup(func() { gin.SetMode(prev) })
}

//go:noinline
func panicWithString() { panic("boom-value") }

//go:noinline
func panicIndex(i int) int {
	s := []int{1, 2, 3}
	return s[i]
}
