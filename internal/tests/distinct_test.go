package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// Distinct errors at database speed: a pass of new errors, each with a
// realistic occurrence (request data of a few KB from the middleware's
// context builder, a traceback of about 20 frames), is measured against the
// floor of the database: a bare multi-row INSERT of the same rows into a
// copy of app_errors, with the same chunks, one transaction per chunk.

// distinctBody is a JSON request body of about 3 KB.
var distinctBody = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"customer":{"name":"Ada Lovelace","email":"ada@example.com","tier":"gold"},"items":[`)
	for i := range 24 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","title":"Analytical engine part number %d","qty":%d,"price":"%d.99"}`, i*7919, i, i%5+1, i*3+10)
	}
	b.WriteString(`],"note":"leave at the door, ring twice"}`)
	return b.Bytes()
}()

// deepRecord calls record at the bottom of depth frames of its own.
//
//go:noinline
func deepRecord(depth int, record func()) {
	if depth == 0 {
		record()
		return
	}
	deepRecord(depth-1, record)
}

// distinctRouter serves POST /api/orders/:id: the handler reads the JSON
// body and records an error whose message names the order (letters only,
// so that each order is a distinct error) from ~20 frames down.
func distinctRouter(m *errmon.Monitor) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(m.Middleware())
	r.POST("/api/orders/:id", func(c *gin.Context) {
		var body map[string]any
		if err := c.ShouldBindJSON(&body); err != nil {
			c.AbortWithStatus(http.StatusBadRequest)
			return
		}
		deepRecord(12, func() {
			m.Record(c, errors.New("order "+c.Param("id")+" could not be charged: card declined by issuer"))
		})
		c.Status(http.StatusInternalServerError)
	})
	return r
}

// recordDistinct records n distinct errors (ids from..from+n) through the
// middleware, from g goroutines.
func recordDistinct(m *errmon.Monitor, r http.Handler, from, n, g int) {
	var wg sync.WaitGroup
	for w := range g {
		wg.Go(func() {
			for i := from + w; i < from+n; i += g {
				req := httptest.NewRequest(http.MethodPost, "/api/orders/"+letters6(i), bytes.NewReader(distinctBody))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36")
				req.Header.Set("Accept", "application/json")
				req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
				req.Header.Set("X-Request-Id", "req-"+letters6(i))
				req.Header.Set("Authorization", "Bearer very-secret-token")
				r.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
	wg.Wait()
}

// letters6 spells i in six letters that no normalizer treats as a number.
func letters6(i int) string {
	const abc = "ghijklmnopqrstuvwxyz"
	b := []byte("gggggg")
	for p := len(b) - 1; p >= 0; p-- {
		b[p] = abc[i%len(abc)]
		i /= len(abc)
	}
	return string(b)
}

// floorTable creates table+"_floor", a copy of table with its indexes,
// empty.
func floorTable(tb testing.TB, db *gorm.DB, table string) {
	tb.Helper()
	var err error
	switch db.Dialector.Name() {
	case "postgres":
		err = db.Exec("CREATE TABLE " + table + "_floor (LIKE " + table + " INCLUDING ALL)").Error
	case "mysql":
		err = db.Exec("CREATE TABLE " + table + "_floor LIKE " + table).Error
	default:
		var ddl []string
		if err := db.Raw("SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL", table).Scan(&ddl).Error; err != nil {
			tb.Fatal(err)
		}
		for _, s := range ddl {
			s = strings.ReplaceAll(s, table, table+"_floor")
			if err = db.Exec(s).Error; err != nil {
				break
			}
		}
	}
	if err != nil {
		tb.Fatalf("create the floor table: %v", err)
	}
}

// floorInsert writes rows into app_errors_floor with bare multi-row
// INSERTs of chunk rows, one transaction each (with samples, also each
// row's sample into app_error_occurrences_floor, as errmon's pass does),
// and returns how long it took.
func floorInsert(tb testing.TB, db *gorm.DB, rows []errmon.ErrorRecord, chunk int, samples bool) time.Duration {
	tb.Helper()
	const cols = "(hash, host, path, method, route, exception_name, message, traceback, request_data, count, created_on, last_seen, resolved, regressions, write_token)"
	start := time.Now()
	for i := 0; i < len(rows); i += chunk {
		part := rows[i:min(i+chunk, len(rows))]
		var q, sq strings.Builder
		q.WriteString("INSERT INTO app_errors_floor " + cols + " VALUES ")
		// The samples' columns errmon writes (server has no default on MySQL).
		sq.WriteString("INSERT INTO app_error_occurrences_floor (hash, seen_at, host, path, method, message, request_data, server, status) VALUES ")
		args := make([]any, 0, 14*len(part))
		sargs := make([]any, 0, 9*len(part))
		for j, r := range part {
			if j > 0 {
				q.WriteString(", ")
				sq.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)")
			args = append(args, r.Hash, r.Host, r.Path, r.Method, r.Route, r.ExceptionName, r.Message,
				r.Traceback, r.RequestData, r.Count, r.CreatedOn, r.LastSeen, false, r.WriteToken)
			sq.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
			sargs = append(sargs, r.Hash, r.LastSeen, r.Host, r.Path, r.Method, r.Message, r.RequestData, "server", 500)
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(q.String(), args...).Error; err != nil || !samples {
				return err
			}
			return tx.Exec(sq.String(), sargs...).Error
		})
		if err != nil {
			tb.Fatalf("floor insert: %v", err)
		}
	}
	return time.Since(start)
}

// heapPeak samples HeapInuse every millisecond until stopped.
type heapPeak struct {
	stop, done chan struct{}
	peak       atomic.Uint64
}

func sampleHeapInuse() *heapPeak {
	h := &heapPeak{stop: make(chan struct{}), done: make(chan struct{})}
	read := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > h.peak.Load() {
			h.peak.Store(ms.HeapInuse)
		}
	}
	read()
	go func() {
		defer close(h.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return h
}

func (h *heapPeak) end() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// BenchmarkDistinctErrors: per database, a write pass of distinctPass new
// errors (recorded through the middleware first, untimed), against the
// floor measured in the same run. errors/s is errmon's pass, floor-errors/s
// the bare INSERT of the same rows, x-floor their ratio.
func BenchmarkDistinctErrors(b *testing.B) {
	const distinctPass = 10_000
	for _, kind := range dbKinds {
		b.Run("db="+kind, func(b *testing.B) {
			tdb := openTestDB(b, kind)
			m := benchMonitor(b, tdb.DB, distinctPass)
			r := distinctRouter(m)
			floorTable(b, tdb.DB, "app_errors")
			floorTable(b, tdb.DB, "app_error_occurrences")
			var pass, floor, floorSamples time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				recordDistinct(m, r, i*distinctPass, distinctPass, 4)
				if st := m.Stats(); st.PendingErrors != distinctPass {
					b.Fatalf("stats %+v: want %d errors pending", st, distinctPass)
				}
				runtime.GC() // the recording's garbage: not the pass's to collect
				b.StartTimer()
				start := time.Now()
				if err := m.Flush(context.Background()); err != nil {
					b.Fatalf("flush: %v", err)
				}
				pass += time.Since(start)
				b.StopTimer()
				var rows []errmon.ErrorRecord
				if err := tdb.DB.Where("id > ?", i*distinctPass).Order("id").Find(&rows).Error; err != nil {
					b.Fatal(err)
				}
				if len(rows) != distinctPass {
					b.Fatalf("%d rows stored, want %d", len(rows), distinctPass)
				}
				runtime.GC()
				floor += floorInsert(b, tdb.DB, rows, writeBatchSize, false)
				if err := tdb.DB.Exec("DELETE FROM app_errors_floor").Error; err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				floorSamples += floorInsert(b, tdb.DB, rows, writeBatchSize, true)
				b.StartTimer()
			}
			n := float64(b.N * distinctPass)
			b.ReportMetric(n/pass.Seconds(), "errors/s")
			b.ReportMetric(n/floor.Seconds(), "floor-errors/s")
			b.ReportMetric(pass.Seconds()/floor.Seconds(), "x-floor")
			b.ReportMetric(n/floorSamples.Seconds(), "floor+samples-errors/s")
			b.ReportMetric(pass.Seconds()/floorSamples.Seconds(), "x-floor+samples")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func benchMonitor(tb testing.TB, db *gorm.DB, maxPending int) *errmon.Monitor {
	tb.Helper()
	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = nil
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.FlushInterval = time.Hour // only Flush writes
	cfg.MaxPending = maxPending
	cfg.CloseTimeout = time.Minute
	m, err := errmon.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// TestDistinctStorm100k (ERRMON_STORM=1): a storm of 100,000 distinct
// errors, MaxPending 200,000, is stored completely by one Flush within
// the default pass timeout; it reports the time and the peak heap
// (HeapInuse, sampled every 5ms).
func TestDistinctStorm100k(t *testing.T) {
	if os.Getenv("ERRMON_STORM") != "1" {
		t.Skip("set ERRMON_STORM=1 to run the 100,000-error storm (tens of seconds)")
	}
	const storm = 100_000
	kinds := dbKinds
	if k := os.Getenv("ERRMON_STORM_DB"); k != "" {
		kinds = strings.Split(k, ",")
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tdb := openTestDB(t, kind)
			m := benchMonitor(t, tdb.DB, 2*storm)
			r := distinctRouter(m)
			runtime.GC()
			heap := sampleHeapInuse()
			start := time.Now()
			recordDistinct(m, r, 0, storm, 4)
			recorded := time.Since(start)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			live := ms.HeapAlloc // what the pending set holds
			startFlush := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			defer cancel()
			err := m.Flush(ctx)
			took := time.Since(startFlush)
			peak := heap.end()
			if err != nil {
				t.Fatalf("Flush after %v: %v", took, err)
			}
			var rows, total int64
			tdb.DB.Model(&errmon.ErrorRecord{}).Count(&rows)
			tdb.DB.Model(&errmon.ErrorRecord{}).Select("COALESCE(SUM(count), 0)").Scan(&total)
			if st := m.Stats(); rows != storm || total != storm || st.Stored != storm || st.Dropped != 0 {
				t.Fatalf("%d rows, total %d, stats %+v; want %d stored", rows, total, st, storm)
			}
			t.Logf("%s: %d distinct errors recorded in %v, stored by one Flush in %v (%.0f errors/s); peak HeapInuse %.0f MB, live heap with all pending %.0f MB (%.1f KB per error)",
				kind, storm, recorded.Round(time.Millisecond), took.Round(time.Millisecond),
				storm/took.Seconds(), float64(peak)/(1<<20), float64(live)/(1<<20), float64(live)/storm/1024)
		})
	}
}
