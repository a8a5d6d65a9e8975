package errmon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// The dashboard's mount point: the Host check of the default permission.
// The route tests, on real databases, are in internal/tests/routes_test.go.
//
// The helpers below (dashEnv, newDash, dashRecord, seed, do, get,
// dashFlush, dashQuietGin) stay only for the root tests that still use them
// (browser_test.go, errorid_test.go, retention_test.go, writepass_test.go,
// until those move); internal/tests/dash_test.go has their black-box
// twins.

// dashHash is a valid fingerprint derived from s.
func dashHash(s string) string {
	sumCounts := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sumCounts[:])
}

// dashEnv is a monitor with its dashboard mounted on a gin engine.
type dashEnv struct {
	m  *Monitor
	db *gorm.DB
	h  *gin.Engine
}

// newDash creates a monitor on tdb (tune may change its Config) and mounts
// the dashboard with the given extra middleware.
func newDash(t *testing.T, tdb testDB, tune func(*Config), middleware ...gin.HandlerFunc) *dashEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DB = tdb.DB
	cfg.Output = io.Discard
	cfg.FlushInterval = time.Hour // tests flush by hand
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if tune != nil {
		tune(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	dashQuietGin(t)
	e := gin.New()
	m.RegisterRoutes(e, middleware...)
	return &dashEnv{m: m, db: tdb.DB, h: e}
}

// dashRecord returns a seedable error: name says what it is, age how long
// ago it was last seen.
func dashRecord(name string, count int64, age time.Duration) ErrorRecord {
	now := store.DBTime(time.Now())
	return ErrorRecord{
		Hash:          dashHash(name),
		Host:          "api.example.com",
		Path:          "/items/" + name,
		Method:        "GET",
		Route:         "/items/:id",
		ExceptionName: "errors.errorString",
		Message:       "message of " + name,
		Traceback: "main.handler" + "\n\t/app/main.go:42\n" +
			"github.com/gin-gonic/gin.(*Context).Next\n\t/go/pkg/mod/github.com/gin-gonic/gin@v1.12.0/context.go:192\n" +
			"net/http.serverHandler.ServeHTTP\n\t/usr/local/go/src/net/http/server.go:3340\n",
		RequestData: `{"method":"GET","url":"/items/` + name + `","headers":{"Accept":["*/*"]},"client_ip":"127.0.0.1"}`,
		Count:       count,
		CreatedOn:   now.Add(-age - time.Hour),
		LastSeen:    now.Add(-age),
	}
}

func (d *dashEnv) seed(t *testing.T, recs ...ErrorRecord) {
	t.Helper()
	for i := range recs {
		if err := d.db.Create(&recs[i]).Error; err != nil {
			t.Fatalf("seed %s: %v", recs[i].Message, err)
		}
	}
}

type reqOpt func(*http.Request)

// dashHost is the Host of the tests' requests: a local one.
const dashHost = "localhost:8080"

// do serves one request from loopback to a loopback Host (unless an option
// changes them).
func (d *dashEnv) do(method, target string, form url.Values, opts ...reqOpt) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Host = dashHost
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	d.h.ServeHTTP(w, r)
	return w
}

// get fetches the error with hash from the database, or nil.
func (d *dashEnv) get(t *testing.T, hash string) *ErrorRecord {
	t.Helper()
	var recs []ErrorRecord
	if err := d.db.Where("hash = ?", hash).Find(&recs).Error; err != nil {
		t.Fatalf("get %s: %v", hash, err)
	}
	if len(recs) == 0 {
		return nil
	}
	return &recs[0]
}

// dashFlush stores everything recorded so far.
func dashFlush(t *testing.T, m *Monitor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// dashQuietGin puts gin in test mode (no route log) for the test.
func dashQuietGin(t testing.TB) {
	prev := gin.Mode()
	gin.SetMode(gin.TestMode)
	t.Cleanup(func() { gin.SetMode(prev) })
}

// TestLoopbackHost lists the Host headers LocalOnly accepts as naming this
// machine, and the look-alikes it refuses.
func TestLoopbackHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"localhost:8080", true},
		{"LocalHost:8080", true},
		{"localhost.", true},
		{"localhost.:8080", true},
		{"localhost:", true}, // an empty port, as net/url allows
		{"app.localhost", true},
		{"app.localhost:3000", true},
		{"127.0.0.1", true},
		{"127.0.0.1:8080", true},
		{"127.1.2.3:80", true},
		{"[::1]", true},
		{"[::1]:8080", true},
		{"[::ffff:127.0.0.1]:80", true},

		{"", false},
		{":8080", false},
		{".localhost", false},
		{"localhost.evil.example", false},
		{"evil-localhost", false},
		{"evil.example", false},
		{"evil.example:8080", false},
		{"127.0.0.1.nip.io", false},
		{"10.0.0.1", false},
		{"0.0.0.0:8080", false},
		{"2130706433", false}, // 127.0.0.1 as one number
		{"0x7f.1", false},
		{"127.000.000.001", false},
		{"::1", false}, // IPv6 needs brackets in a Host
		{"[::1", false},
		{"[127.0.0.1]", false},
		{"[localhost]:80", false},
		{"[::2]", false},
		{"localhost:http", false},
		{"localhost:80:80", false},
		{"[::1]%lo:80", false},
	}
	for _, tc := range tests {
		if got := loopbackHost(tc.host); got != tc.want {
			t.Errorf("loopbackHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}
