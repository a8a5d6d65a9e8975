package bench

import (
	"context"
	"errors"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"gorm.io/gorm"
)

// Storms: everything fails at once. 100,000 occurrences from 64 goroutines
// are recorded while the writer flushes every 100ms, as a service under a
// storm would; then one Flush stores the rest. The benchmark checks the
// counts exactly, counts the SQL statements, and samples the heap.

const (
	stormEvents     = 100_000
	stormGoroutines = 64
	stormFlushEvery = 100 * time.Millisecond
)

// word spells i in letters that no fingerprint normalizer treats as a
// number or a hex id, so that each i is a different bug.
func word(i int) string {
	const letters = "ghijklmnopqrstuvwxyz"
	b := []byte{'x', 'x', 'x', 'x', 'x'}
	for p := len(b) - 1; p >= 0; p-- {
		b[p] = letters[i%len(letters)]
		i /= len(letters)
	}
	return string(b)
}

// distinctErrors returns n errors that fingerprint differently.
func distinctErrors(n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = errors.New("storm failure in step " + word(i))
	}
	return errs
}

// heapSampler records the peak of live heap objects while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: heapMetric}}
	read := func() {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > h.peak.Load() {
			h.peak.Store(v)
		}
	}
	read()
	go func() {
		defer close(h.done)
		t := time.NewTicker(time.Millisecond)
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

// end stops sampling and returns the peak, in bytes.
func (h *heapSampler) end() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// storm records events occurrences of errs (round robin) from goroutines
// goroutines at once.
func storm(m *errmon.Monitor, errs []error, events, goroutines int) {
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < events; i += goroutines {
				m.Record(nil, errs[i%len(errs)])
			}
		})
	}
	wg.Wait()
}

type errorCount struct {
	Hash  string
	Count int64
}

func storedCounts(b *testing.B, db *gorm.DB) (rows int, total int64, min, max int64) {
	b.Helper()
	var counts []errorCount
	if err := db.Table("app_errors").Select("hash, count").Scan(&counts).Error; err != nil {
		b.Fatalf("read counts: %v", err)
	}
	min = -1
	for _, c := range counts {
		total += c.Count
		if min < 0 || c.Count < min {
			min = c.Count
		}
		max = maxInt(max, c.Count)
	}
	return len(counts), total, min, max
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// BenchmarkStorm records 100,000 occurrences from 64 goroutines, of one
// error (errors=1) or spread over 10,000 distinct errors (errors=10000),
// into SQLite, and checks that every occurrence is stored.
func BenchmarkStorm(b *testing.B) {
	for _, distinct := range []int{1, 10_000} {
		b.Run("errors="+itoa(distinct), func(b *testing.B) {
			errs := distinctErrors(distinct)
			var stmts, upserts, peak, elapsed float64
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				db := openSQLite(b)
				sc := countStatements(b, db)
				m := newMonitorOn(b, db, func(cfg *errmon.Config) {
					cfg.FlushInterval = stormFlushEvery
					cfg.MaxPending = errmon.DefaultConfig().MaxPending
				})
				sc.reset()
				runtime.GC()
				heap := sampleHeap()
				start := time.Now()
				b.StartTimer()

				storm(m, errs, stormEvents, stormGoroutines)
				if err := m.Flush(context.Background()); err != nil {
					b.Fatalf("flush: %v", err)
				}

				b.StopTimer()
				elapsed += time.Since(start).Seconds()
				peak += float64(heap.end())
				stmts += float64(sc.stmts.Load())
				upserts += float64(sc.upserts.Load())
				st := m.Stats()
				if st.Dropped != 0 || st.Recorded != stormEvents || st.Stored != stormEvents {
					b.Fatalf("stats %+v: want %d recorded and stored, none dropped", st, stormEvents)
				}
				rows, total, lo, hi := storedCounts(b, db)
				want := int64(stormEvents / distinct)
				if rows != distinct || total != stormEvents || lo != want || hi != want {
					b.Fatalf("stored %d rows, total %d, counts %d..%d; want %d rows of %d, total %d",
						rows, total, lo, hi, distinct, want, stormEvents)
				}
				m.Close()
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(elapsed/n*1e9/stormEvents, "ns/event")
			b.ReportMetric(stmts/n, "stmts")
			b.ReportMetric(upserts/n, "upserts")
			// Statements per error per flush: one upsert of app_errors, its
			// hourly count, one occurrence sample and its pruning.
			b.ReportMetric(stmts/upserts, "stmts/upsert")
			b.ReportMetric(stormEvents*n/upserts, "events/upsert")
			b.ReportMetric(peak/n/(1<<20), "peak-heap-MB")
		})
	}
}

// BenchmarkStormFull fills the pending set: MaxPending is 100 and the
// writer does not run, so of 10,000 distinct errors 9,900 are dropped and
// counted, and recording never blocks (compare ns/event with BenchmarkStorm).
func BenchmarkStormFull(b *testing.B) {
	const (
		events     = 10_000
		maxPending = 100
	)
	errs := distinctErrors(events)
	var elapsed float64
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m := newMonitor(b, func(cfg *errmon.Config) {
			cfg.MaxPending = maxPending
			cfg.FlushInterval = time.Hour
		})
		start := time.Now()
		b.StartTimer()

		storm(m, errs, events, stormGoroutines)

		b.StopTimer()
		elapsed += time.Since(start).Seconds()
		st := m.Stats()
		if st.Recorded != events || st.Dropped != events-maxPending || st.PendingErrors != maxPending {
			b.Fatalf("stats %+v: want %d recorded, %d dropped, %d pending", st, events, events-maxPending, maxPending)
		}
		if err := m.Flush(context.Background()); err != nil {
			b.Fatalf("flush: %v", err)
		}
		if st := m.Stats(); st.Stored != maxPending {
			b.Fatalf("stored %d, want %d", st.Stored, maxPending)
		}
		m.Close()
		b.StartTimer()
	}
	b.ReportMetric(elapsed/float64(b.N)*1e9/events, "ns/event")
	b.ReportMetric(float64(events-maxPending), "dropped")
}

func itoa(n int) string {
	return strconv.Itoa(n)
}
