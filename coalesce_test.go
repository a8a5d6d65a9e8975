package errmon

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The pipeline's pure logic: the writer's schedule and how a pass cuts its
// batch into chunks. Coalescing end to end, on real databases, is tested
// in internal/tests (coalesce_test.go).

// coalesceMonitor, flush and letters serve the root's other tests (context,
// error ids, metrics, scrubbing, the slog handler, fingerprints, notify)
// until they move to internal/tests, which has its own copies.

// TestScheduleWait: the next pass is due when the time since the last cut
// plus the time the pending set takes to write reaches the interval (less
// a check period); the writer looks again at least every check period.
func TestScheduleWait(t *testing.T) {
	cut := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const interval = time.Second
	check := interval / checksPerInterval
	s := schedule{interval: interval, lastCut: cut}
	if got := s.wait(cut, 0); got != check {
		t.Errorf("right after a cut, nothing pending: wait %v, want the check period %v", got, check)
	}
	if got := s.wait(cut.Add(interval-check), 10); got != 0 {
		t.Errorf("an interval (less a check) after the cut, before any rate is known: wait %v, want 0", got)
	}
	s.passed(cut, 100*time.Millisecond, 1000) // 10,000 errors/s
	for _, tc := range []struct {
		since   time.Duration
		pending int
		want    time.Duration
	}{
		{0, 10, check},                      // a few: the full interval ahead
		{800 * time.Millisecond, 10, check}, // 149ms to go: look again in a check period
		{900 * time.Millisecond, 100, 40 * time.Millisecond},
		{300 * time.Millisecond, 6500, 0}, // 650ms of writing: due now
		{0, 100_000, 0},                   // behind: at once
	} {
		if got := s.wait(cut.Add(tc.since), tc.pending); got != tc.want {
			t.Errorf("%v after the cut, %d pending at 10,000/s: wait %v, want %v", tc.since, tc.pending, got, tc.want)
		}
	}
	s.passed(cut.Add(time.Second), time.Second, 1000) // 1,000/s: the rate is smoothed to 5,500/s
	if s.rate != 5500 || !s.lastCut.Equal(cut.Add(time.Second)) {
		t.Errorf("after a second pass: rate %v, last cut %v; want 5500, %v", s.rate, s.lastCut, cut.Add(time.Second))
	}
}

// TestScheduleCatchesUpAfterSlowPass: after a pass that took longer than
// the interval (or half of it, with as many errors left to write as it
// wrote), the next pass is due at once, not an interval later; after a
// quick pass it waits, looking again every check period. The writer's
// catching up end to end is internal/tests' TestWriterCatchesUpWithoutWaiting.
func TestScheduleCatchesUpAfterSlowPass(t *testing.T) {
	const interval = time.Hour
	check := interval / checksPerInterval
	cut := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		took    time.Duration
		wrote   int
		pending int
		want    time.Duration
	}{
		{"a pass of 2h, errors pending", 2 * time.Hour, 300, 300, 0},
		{"a pass of 2h, one error pending", 2 * time.Hour, 300, 1, 0},
		{"a pass of 2h, nothing pending", 2 * time.Hour, 300, 0, 0},
		{"a pass of half the interval, as many pending", interval / 2, 300, 300, 0},
		{"a quick pass, as many pending", time.Second, 300, 300, check},
		{"a quick pass, nothing pending", time.Second, 300, 0, check},
	} {
		s := schedule{interval: interval, lastCut: cut.Add(-interval)}
		s.passed(cut, tc.took, tc.wrote)
		if !s.lastCut.Equal(cut) {
			t.Errorf("%s: last cut %v, want the pass's start %v", tc.name, s.lastCut, cut)
		}
		if got := s.wait(cut.Add(tc.took), tc.pending); got != tc.want {
			t.Errorf("%s: wait %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestChunksOldestFirst: a pass writes its oldest errors first, in chunks
// of at most writeBatchSize errors and about maxChunkBytes of text, each
// chunk in hash order (the lock order shared by every process).
func TestChunksOldestFirst(t *testing.T) {
	batch := map[string]*pending{}
	const n = 3*writeBatchSize + 5
	for i := range n {
		// Hashes in the reverse order of age.
		hash := fmt.Sprintf("%08d", n-i)
		batch[hash] = &pending{seq: uint64(i), count: 1, last: &Occurrence{Hash: hash, Message: "m"}}
	}
	chunks := chunksOf(batch)
	if len(chunks) != 4 || len(chunks[0]) != writeBatchSize || len(chunks[3]) != 5 {
		t.Fatalf("%d chunks (first %d, last %d errors), want 4 of %d..5", len(chunks), len(chunks[0]), len(chunks[len(chunks)-1]), writeBatchSize)
	}
	var prevMax uint64
	for i, c := range chunks {
		if !slices.IsSorted(c) {
			t.Errorf("chunk %d not in hash order", i)
		}
		lo, hi := uint64(1<<63), uint64(0)
		for _, h := range c {
			lo, hi = min(lo, batch[h].seq), max(hi, batch[h].seq)
		}
		if i > 0 && lo <= prevMax {
			t.Errorf("chunk %d holds errors (oldest seq %d) older than chunk %d's newest (%d)", i, lo, i-1, prevMax)
		}
		prevMax = hi
	}

	// Large texts: a chunk stops at about maxChunkBytes.
	big := map[string]*pending{}
	data := strings.Repeat("x", 64<<10)
	for i := range 100 {
		hash := fmt.Sprintf("%08d", i)
		big[hash] = &pending{seq: uint64(i), count: 1, last: &Occurrence{Hash: hash, RequestData: data}}
	}
	var total int
	for _, c := range chunksOf(big) {
		var bytes int
		for _, h := range c {
			bytes += big[h].textBytes()
		}
		if bytes > maxChunkBytes && len(c) > 1 {
			t.Errorf("a chunk of %d errors carries %d bytes, over %d", len(c), bytes, maxChunkBytes)
		}
		total += len(c)
	}
	if total != 100 {
		t.Errorf("%d errors in the chunks, want 100", total)
	}
}

// TestMirroredConstants: the black-box tests of internal/tests count with
// the values of these unexported constants (internal/tests'
// pipeline_helpers_test.go); change them there too.
func TestMirroredConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"writeBatchSize", writeBatchSize, 128},
		{"maxWriteFailures", maxWriteFailures, 5},
		{"flushTimeout", flushTimeout, 30 * time.Second},
		{"alertAttempts", alertAttempts, 4},
		{"errLaneBlocked", errLaneBlocked.Error(), "still blocked in an earlier call that ignored its context"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, internal/tests counts with %v: update internal/tests/pipeline_helpers_test.go", c.name, c.got, c.want)
		}
	}
}
