package errmon

import (
	"fmt"
	"testing"
	"time"
)

// Lost answers: the database stores a write but the client never hears
// so. The writer must neither count the write twice (retrying it blindly)
// nor lose it (giving it up): it parks the write and asks its receipt.
// Here, the queue's bookkeeping of parked writes; the lost answers
// themselves, through a proxy that cuts the connection, are tested in
// internal/tests (receipts_test.go).

// TestQueueParkedBookkeeping: parked errors stay counted as pending (in
// Stats and against MaxPending) until resolved, and a new occurrence of a
// parked error adds no distinct error.
func TestQueueParkedBookkeeping(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	occ := func(hash string) *Occurrence { return &Occurrence{Hash: hash, Time: at} }
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprintf("stored=%v", stored), func(t *testing.T) {
			q := &queue{pending: map[string]*pending{}, max: 2}
			for _, h := range []string{"a", "a", "b"} {
				if !q.add(occ(h)) {
					t.Fatalf("add %s dropped", h)
				}
			}
			batch := q.take()
			q.park(&parkedChunk{token: "t", items: batch})
			q.settle(0, nil)
			if occs, errs, _ := q.size(); occs != 3 || errs != 2 {
				t.Fatalf("parked: size = %d occurrences of %d errors, want 3 of 2", occs, errs)
			}
			if !q.add(occ("a")) {
				t.Fatal("a new occurrence of a parked error was dropped")
			}
			if q.add(occ("c")) {
				t.Fatal("a third distinct error was kept beyond max 2 while two are parked")
			}
			if occs, errs, dropped := q.size(); occs != 4 || errs != 2 || dropped != 1 {
				t.Fatalf("size = %d occurrences of %d errors, %d dropped; want 4 of 2, 1", occs, errs, dropped)
			}
			c := q.parkedChunks()
			if len(c) != 1 {
				t.Fatalf("%d parked chunks, want 1", len(c))
			}
			q.unpark(c[0], stored)
			occs, errs, _ := q.size()
			wantOccs, wantErrs := int64(1), 1 // the new occurrence of a
			if !stored {
				wantOccs, wantErrs = 4, 2 // merged back
			}
			if occs != wantOccs || errs != wantErrs || q.inflight != 0 || q.overlap != 0 || len(q.parkedN) != 0 {
				t.Fatalf("after unpark: %d occurrences of %d errors, inflight %d, overlap %d, parkedN %v; want %d of %d, 0, 0, empty",
					occs, errs, q.inflight, q.overlap, q.parkedN, wantOccs, wantErrs)
			}
			if !stored && q.pending["a"].count != 3 {
				t.Fatalf("a merged back with count %d, want 3", q.pending["a"].count)
			}
		})
	}
}
