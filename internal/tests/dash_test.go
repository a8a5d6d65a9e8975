package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/dashboard"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// dashHash is a valid fingerprint derived from s.
func dashHash(s string) string {
	sumCounts := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sumCounts[:])
}

// dashEnv is a monitor with its dashboard mounted on a gin engine.
type dashEnv struct {
	m  *errmon.Monitor
	db *gorm.DB
	h  *gin.Engine
}

// newDash creates a monitor on tdb (tune may change its Config) and mounts
// the dashboard with the given extra middleware.
func newDash(t *testing.T, tdb testDB, tune func(*errmon.Config), middleware ...gin.HandlerFunc) *dashEnv {
	t.Helper()
	cfg := errmon.DefaultConfig()
	cfg.DB = tdb.DB
	cfg.Output = io.Discard
	cfg.FlushInterval = time.Hour // tests flush by hand
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if tune != nil {
		tune(&cfg)
	}
	m, err := errmon.New(cfg)
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
func dashRecord(name string, count int64, age time.Duration) errmon.ErrorRecord {
	now := store.DBTime(time.Now())
	return errmon.ErrorRecord{
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

func (d *dashEnv) seed(t *testing.T, recs ...errmon.ErrorRecord) {
	t.Helper()
	for i := range recs {
		if err := d.db.Create(&recs[i]).Error; err != nil {
			t.Fatalf("seed %s: %v", recs[i].Message, err)
		}
	}
}

// seedSamples adds an occurrence sample and an hourly count for rec.
func (d *dashEnv) seedSamples(t *testing.T, rec errmon.ErrorRecord, hourly int64) {
	t.Helper()
	occ := store.ErrorOccurrence{Hash: rec.Hash, SeenAt: rec.LastSeen, Host: rec.Host, Path: rec.Path,
		Method: rec.Method, Message: rec.Message, RequestData: rec.RequestData}
	if err := d.db.Create(&occ).Error; err != nil {
		t.Fatalf("seed occurrence: %v", err)
	}
	h := store.ErrorHourly{Hash: rec.Hash, Hour: store.HourStart(time.Now()), Count: hourly}
	if err := d.db.Create(&h).Error; err != nil {
		t.Fatalf("seed hourly: %v", err)
	}
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func fromAddr(a string) reqOpt { return func(r *http.Request) { r.RemoteAddr = a } }

func withHost(h string) reqOpt { return func(r *http.Request) { r.Host = h } }

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
func (d *dashEnv) get(t *testing.T, hash string) *errmon.ErrorRecord {
	t.Helper()
	var recs []errmon.ErrorRecord
	if err := d.db.Where("hash = ?", hash).Find(&recs).Error; err != nil {
		t.Fatalf("get %s: %v", hash, err)
	}
	if len(recs) == 0 {
		return nil
	}
	return &recs[0]
}

// apiList calls GET api/errors with query and decodes the answer.
func (d *dashEnv) apiList(t *testing.T, query url.Values) dashboard.APIErrorList {
	t.Helper()
	w := d.do("GET", dashPrefix+"/api/errors?"+query.Encode(), nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET api/errors?%s: %d %s", query.Encode(), w.Code, w.Body)
	}
	var out dashboard.APIErrorList
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode api/errors: %v\n%s", err, w.Body)
	}
	return out
}

func hashesOf(list dashboard.APIErrorList) []string {
	out := make([]string, len(list.Errors))
	for i, e := range list.Errors {
		out[i] = e.Hash
	}
	return out
}

// dashFlush stores everything recorded so far.
func dashFlush(t *testing.T, m *errmon.Monitor) {
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

const dashPrefix = "/dev/error"

// dashHost is the Host of the tests' requests: a local one.
const dashHost = "localhost:8080"
