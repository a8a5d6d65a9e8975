package errmon

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The pipeline's pure logic: how a pass cuts its batch into chunks (the
// writer's schedule is in pipeline_schedule_test.go). Coalescing end to
// end, on real databases, is tested in internal/tests (coalesce_test.go).

// coalesceMonitor, flush and letters serve the root's other tests (context,
// error ids, metrics, scrubbing, the slog handler, fingerprints, notify)
// until they move to internal/tests, which has its own copies.

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
