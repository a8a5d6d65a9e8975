package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	pkgerrors "github.com/pkg/errors"
)

// Storage on real databases: upserts racing across monitors, first-seen
// times, a database gone or locked, values past every cap. sanitize itself
// is unit-tested in the root (store_test.go).

//go:noinline
func sharedStackError() error { return pkgerrors.New("shared failure with a stack") }

// TestDedupAtomic records the same errors from many goroutines through
// several monitors sharing one database, each with its own writer flushing
// often, so that their upserts race: one row per error, exact counts, no
// unique-constraint error.
func TestDedupAtomic(t *testing.T) {
	withGinMode(t, gin.TestMode)
	const (
		monitors   = 4
		goroutines = 32
		perG       = 200
	)
	eachDB(t, func(t *testing.T, tdb testDB) {
		tms := make([]*testMonitor, monitors)
		engines := make([]*gin.Engine, monitors)
		for i := range tms {
			tms[i] = newTestMonitor(t, tdb.DB, func(c *errmon.Config) { c.FlushInterval = 2 * time.Millisecond })
			engines[i] = tms[i].engine(false)
			engines[i].GET("/boom/:n", func(c *gin.Context) { panicIndex(3 + len(c.Param("n"))) })
		}
		var wg sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				tm := tms[g%monitors]
				for i := 0; i < perG; i++ {
					switch i % 3 {
					case 0:
						tm.Record(nil, fmt.Errorf("queue %d is full", g*perG+i)) // no stack: message normalized
					case 1:
						tm.Record(nil, sharedStackError())
					case 2:
						req := httptest.NewRequest("GET", fmt.Sprintf("/boom/%d", i), nil)
						w := httptest.NewRecorder()
						engines[g%monitors].ServeHTTP(w, req)
						if w.Code != 500 {
							t.Errorf("status %d", w.Code)
							return
						}
					}
				}
			}(g)
		}
		wg.Wait()
		for _, tm := range tms {
			tm.flush(t)
		}
		recs := allRecords(t, tdb.DB)
		want := map[string]int64{
			"*errors.errorString": 0, "*errors.fundamental": 0, "runtime.boundsError": 0,
		}
		for g := 0; g < goroutines; g++ {
			for i := 0; i < perG; i++ {
				want[[]string{"*errors.errorString", "*errors.fundamental", "runtime.boundsError"}[i%3]]++
			}
		}
		if len(recs) != len(want) {
			t.Fatalf("%d rows, want %d: %+v", len(recs), len(want), recs)
		}
		var total int64
		for _, rec := range recs {
			if rec.Count != want[rec.ExceptionName] {
				t.Errorf("%s: count %d, want %d", rec.ExceptionName, rec.Count, want[rec.ExceptionName])
			}
			total += rec.Count
		}
		var stored int64
		for _, tm := range tms {
			s := tm.Stats()
			stored += s.Stored
			if s.Dropped != 0 {
				t.Errorf("monitor dropped %d", s.Dropped)
			}
			for _, bad := range []string{"UNIQUE", "unique", "duplicate key", "level=ERROR"} {
				if strings.Contains(tm.logs.String(), bad) {
					t.Errorf("log holds %q:\n%s", bad, tm.logs)
				}
			}
		}
		if stored != total || total != goroutines*perG {
			t.Errorf("stored %d, rows total %d, want %d", stored, total, goroutines*perG)
		}
		// The hourly counts add up too.
		var hourly int64
		if err := tdb.DB.Table("app_error_hourly").Select("COALESCE(SUM(count),0)").Scan(&hourly).Error; err != nil {
			t.Fatal(err)
		}
		if hourly != total {
			t.Errorf("hourly counts sum to %d, want %d", hourly, total)
		}
	})
}

// TestCreatedOnNeverMoves: an error's first-seen time is that of the write
// that created its row, whichever instance writes it next, even one
// writing an older occurrence late; its last-seen time advances.
func TestCreatedOnNeverMoves(t *testing.T) {
	withGinMode(t, gin.TestMode)
	eachDB(t, func(t *testing.T, tdb testDB) {
		a := newTestMonitor(t, tdb.DB, nil)
		b := newTestMonitor(t, tdb.DB, nil)
		err := errors.New("always the same")
		// An occurrence older than the row, stored late by another
		// instance (recorded before the row exists, written after it),
		// does not move CreatedOn either.
		late := newTestMonitor(t, tdb.DB, nil)
		late.Record(nil, err)
		waitClockPast(store.DBTime(time.Now()).Add(10 * time.Millisecond))
		a.Record(nil, err)
		first := a.records(t)
		if len(first) != 1 || first[0].Count != 1 {
			t.Fatalf("rows %+v", first)
		}
		if !first[0].LastSeen.Equal(first[0].CreatedOn) {
			t.Errorf("first write: LastSeen %v != CreatedOn %v", first[0].LastSeen, first[0].CreatedOn)
		}
		if st := late.Stats(); st.Pending != 1 || st.Stored != 0 {
			t.Fatalf("late monitor: stats %+v, want its older occurrence pending", st)
		}
		late.flush(t)
		if recs := allRecords(t, tdb.DB); len(recs) != 1 || recs[0].Count != 2 || !recs[0].CreatedOn.Equal(first[0].CreatedOn) {
			t.Fatalf("after the older occurrence: rows %+v, want one of count 2 created on %v", recs, first[0].CreatedOn)
		}
		first[0].Count++
		prevSeen := first[0].LastSeen
		for i, tm := range []*testMonitor{a, b, a} {
			waitClockPast(prevSeen)
			tm.Record(nil, err)
			tm.Record(nil, err)
			recs := tm.records(t)
			if len(recs) != 1 {
				t.Fatalf("round %d: %d rows", i, len(recs))
			}
			rec := recs[0]
			if !rec.CreatedOn.Equal(first[0].CreatedOn) {
				t.Errorf("round %d: CreatedOn moved from %v to %v", i, first[0].CreatedOn, rec.CreatedOn)
			}
			if !rec.LastSeen.After(prevSeen) {
				t.Errorf("round %d: LastSeen %v did not advance past %v", i, rec.LastSeen, prevSeen)
			}
			if want := int64(4 + 2*i); rec.Count != want {
				t.Errorf("round %d: count %d, want %d", i, rec.Count, want)
			}
			prevSeen = rec.LastSeen
		}
	})
}

// waitClockPast waits until the stored clock (microseconds) is past t, so
// that a later occurrence has a later time.
func waitClockPast(t time.Time) {
	for !store.DBTime(time.Now()).After(t) {
		time.Sleep(time.Millisecond)
	}
}

// TestNeverHurtTheHost: a database that is gone or locked never panics,
// blocks or fails a request; failures are logged with what was not stored,
// and nothing is lost once the database answers again.
func TestNeverHurtTheHost(t *testing.T) {
	withGinMode(t, gin.TestMode)
	t.Run("closed database", func(t *testing.T) {
		eachDB(t, func(t *testing.T, tdb testDB) {
			tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) { c.CloseTimeout = 5 * time.Second })
			r := tm.engine(false)
			r.GET("/p", func(c *gin.Context) { panicWithString() })
			r.GET("/e", func(c *gin.Context) { _ = c.AbortWithError(502, errors.New("upstream down")) })
			r.GET("/ok", func(c *gin.Context) { c.String(200, "fine") })
			sqlDB, err := tdb.DB.DB()
			if err != nil {
				t.Fatal(err)
			}
			sqlDB.Close()
			for i := 0; i < 5; i++ {
				if w := serve(r, "GET", "/p", nil, nil); w.Code != 500 {
					t.Fatalf("panic route: %d", w.Code)
				}
				if w := serve(r, "GET", "/e", nil, nil); w.Code != 502 {
					t.Fatalf("error route: %d", w.Code)
				}
				if w := serve(r, "GET", "/ok", nil, nil); w.Code != 200 || w.Body.String() != "fine" {
					t.Fatalf("ok route: %d %q", w.Code, w.Body)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := tm.Flush(ctx); err == nil {
				t.Error("Flush on a closed database returned nil")
			} else if !strings.Contains(err.Error(), "10 occurrences of 2 errors") {
				t.Errorf("Flush error %q does not say what was not stored", err)
			}
			logs := tm.logs.String()
			if !strings.Contains(logs, "could not store errors") || !strings.Contains(logs, "occurrences=10") {
				t.Errorf("failure not logged with its count:\n%s", logs)
			}
			if s := tm.Stats(); s.Pending != 10 || s.Recorded != 10 {
				t.Errorf("stats %+v, want 10 pending", s)
			}
			if err := tm.Close(); err == nil || !strings.Contains(err.Error(), "not stored") {
				t.Errorf("Close = %v, want an error saying what was not stored", err)
			}
		})
	})
	t.Run("locked table", func(t *testing.T) {
		tdb := openPostgres(t)
		tm := newTestMonitor(t, tdb.DB, nil)
		r := tm.engine(false)
		r.GET("/p", func(c *gin.Context) { panicWithString() })

		// Hold an exclusive lock on app_errors from another connection.
		tx := tdb.DB.Begin()
		if err := tx.Exec("LOCK TABLE app_errors IN ACCESS EXCLUSIVE MODE").Error; err != nil {
			t.Fatal(err)
		}
		released := false
		defer func() {
			if !released {
				tx.Rollback()
			}
		}()
		// The first flush blocks on the lock; requests must not.
		served := make(chan int, 1)
		go func() {
			codes := 0
			for i := 0; i < 20; i++ {
				if i == 10 {
					go tm.Flush(context.Background()) // the writer now waits on the lock
				}
				if w := serve(r, "GET", "/p", nil, nil); w.Code == 500 {
					codes++
				}
			}
			served <- codes
		}()
		select {
		case n := <-served:
			if n != 20 {
				t.Errorf("%d of 20 requests answered 500", n)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("requests blocked on a locked table")
		}
		short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := tm.Flush(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Flush while locked = %v, want its context's deadline", err)
		}
		tx.Rollback()
		released = true
		recs := tm.records(t)
		if len(recs) != 1 || recs[0].Count != 20 {
			t.Errorf("rows %+v, want one with count 20", recs)
		}
	})
}

// TestOversizedAndHostileValues stores values past every cap and text
// PostgreSQL rejects raw (NUL bytes, invalid UTF-8), sanitized.
func TestOversizedAndHostileValues(t *testing.T) {
	withGinMode(t, gin.TestMode)
	eachDB(t, func(t *testing.T, tdb testDB) {
		tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) { c.MaxBodyBytes = 10 << 20 })
		r := tm.engine(false)
		huge := strings.Repeat("é", 512<<10) // 1 MB, multi-byte
		r.POST("/big/*rest", func(c *gin.Context) { panic(huge) })
		r.POST("/nul/*rest", func(c *gin.Context) { panic("nul\x00byte and \xff\xfe invalid") })
		r.POST("/err", func(c *gin.Context) { _ = c.AbortWithError(500, errors.New("bad\x00\xc3(")) })
		longMethod := strings.Repeat("PROPFIND", 6) // 48 bytes, past the 16 of the method column
		r.Handle(longMethod, "/method", func(c *gin.Context) { panic("long method") })

		bigBody := strings.Repeat(`{"k":"`+strings.Repeat("v", 1000)+`"},`, 10<<10) // ~10 MB
		w := serve(r, "POST", "/big/"+strings.Repeat("p", 5000), strings.NewReader(bigBody), map[string]string{
			"Content-Type": "text/plain",
			"X-Huge":       strings.Repeat("h", 100<<10),
		})
		if w.Code != 500 {
			t.Fatalf("status %d", w.Code)
		}
		w = serve(r, "POST", "/nul/a%00b%ff", strings.NewReader("{\"a\":\"\x00\xff\"}"), map[string]string{
			"Content-Type": "application/json",
			"X-Bad":        "v\xffv",
		})
		if w.Code != 500 {
			t.Fatalf("status %d", w.Code)
		}
		serve(r, "POST", "/err", strings.NewReader("raw \x00 body \xfe"), map[string]string{"Content-Type": "text/plain"})
		if w := serve(r, longMethod, "/method", nil, nil); w.Code != 500 {
			t.Fatalf("long method: status %d", w.Code)
		}
		recs := tm.records(t)
		if len(recs) != 4 {
			t.Fatalf("%d rows, want 4; log:\n%s", len(recs), tm.logs)
		}
		for _, rec := range recs {
			for name, v := range map[string]string{
				"host": rec.Host, "path": rec.Path, "method": rec.Method, "route": rec.Route,
				"exception": rec.ExceptionName, "message": rec.Message, "traceback": rec.Traceback, "request_data": rec.RequestData,
			} {
				if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
					t.Errorf("%s of %s is not sanitized: %q", name, rec.Path, v[:min(len(v), 200)])
				}
			}
			if len(rec.Message) > store.MaxMessageBytes || len(rec.RequestData) > store.MaxRequestDataBytes ||
				len(rec.Path) > store.MaxPathBytes || len(rec.Traceback) > store.MaxTracebackBytes {
				t.Errorf("%s: a value is past its cap: message %d, request data %d, path %d, traceback %d",
					rec.Route, len(rec.Message), len(rec.RequestData), len(rec.Path), len(rec.Traceback))
			}
			switch rec.Route {
			case "/big/*rest":
				if !strings.HasSuffix(rec.Message, "bytes cut]") || !strings.HasPrefix(rec.Message, "éé") {
					t.Errorf("big message not cut with a marker: ...%q", rec.Message[max(0, len(rec.Message)-40):])
				}
				if !strings.HasSuffix(rec.Path, "bytes cut]") {
					t.Errorf("big path not cut: %d bytes", len(rec.Path))
				}
				decodeRequestData(t, rec.RequestData) // still JSON
			case "/nul/*rest":
				if rec.Message != "nul\uFFFDbyte and \uFFFD invalid" && rec.Message != "nul\uFFFDbyte and \uFFFD\uFFFD invalid" {
					t.Errorf("message %q", rec.Message)
				}
				data := decodeRequestData(t, rec.RequestData)
				if v, _ := jsonAt(data, "headers", "X-Bad"); v != "v\uFFFDv" {
					t.Errorf("header X-Bad stored as %q", v)
				}
			case "/method":
				if rec.Method != longMethod[:store.MaxMethodBytes] {
					t.Errorf("method stored as %q", rec.Method)
				}
			case "/err":
				if !strings.HasPrefix(rec.Message, "bad\uFFFD") {
					t.Errorf("message %q", rec.Message)
				}
			}
		}
		if strings.Contains(tm.logs.String(), "level=ERROR") {
			t.Errorf("errors logged:\n%s", tm.logs)
		}
	})
}

// TestResponseDoesNotWaitForTheDatabase checks the panic's response is
// written before anything is stored: with the writer's flush interval long,
// nothing is in the table right after the request.
func TestResponseDoesNotWaitForTheDatabase(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tdb := openSQLite(t)
	tm := newTestMonitor(t, tdb.DB, nil)
	r := tm.engine(false)
	r.GET("/p", func(c *gin.Context) { panicWithString() })
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/p")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if recs := allRecords(t, tdb.DB); len(recs) != 0 {
		t.Errorf("stored on the request path: %+v", recs)
	}
	if recs := tm.records(t); len(recs) != 1 {
		t.Errorf("%d rows after Flush", len(recs))
	}
}

// BenchmarkPanicWithHugeBody is the error path of a request that panics
// with a 10 MB text body and a 1 MB message (storage excluded).
func BenchmarkPanicWithHugeBody(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	tm := newTestMonitor(b, openSQLite(b).DB, func(c *errmon.Config) { c.MaxBodyBytes = 10 << 20; c.Output = io.Discard })
	r := tm.engine(false)
	msg := strings.Repeat("m", 1<<20)
	r.POST("/p", func(c *gin.Context) { panic(msg) })
	body := strings.Repeat("x", 10<<20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve(r, "POST", "/p", strings.NewReader(body), map[string]string{"Content-Type": "text/plain"})
	}
}
