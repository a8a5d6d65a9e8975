package errmon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon/internal/store"
)

// TestKeepSamples: an error's samples of one write are of distinct paths
// first, each the newest of its path, at most store.OccurrenceHistory, and
// always hold the newest occurrence; large contexts keep fewer.
func TestKeepSamples(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	occ := func(i int, path string, data int) *Occurrence {
		return &Occurrence{Hash: "h", Path: path, Time: t0.Add(time.Duration(i) * time.Second), RequestData: strings.Repeat("x", data)}
	}
	paths := func(p *pending) string {
		var b []string
		for _, s := range samplesOf(p) {
			b = append(b, fmt.Sprintf("%s@%d", s.Path, s.SeenAt.Sub(t0)/time.Second))
		}
		return strings.Join(b, " ")
	}

	p := &pending{}
	for i := range 3 {
		p.add(occ(i, "/items/1", 10)) // one path thrice: one sample, the newest
	}
	if got := samplesOf(p); got != nil {
		t.Errorf("one path: %d extra samples, want none (the row's own)", len(got))
	}
	p.add(occ(3, "/items/2", 10))
	p.add(occ(4, "/items/1", 10))
	if got, want := paths(p), "/items/2@3 /items/1@4"; got != want {
		t.Errorf("two paths: %q, want %q", got, want)
	}

	p = &pending{}
	for i := range 25 {
		p.add(occ(i, fmt.Sprintf("/items/%d", i), 10))
	}
	got := samplesOf(p)
	if len(got) != store.OccurrenceHistory || got[len(got)-1].Path != "/items/24" {
		t.Errorf("25 paths: %d samples, newest %q; want %d ending with /items/24", len(got), got[len(got)-1].Path, store.OccurrenceHistory)
	}

	p = &pending{}
	for i := range 5 {
		p.add(occ(i, fmt.Sprintf("/big/%d", i), 40<<10))
	}
	if got := samplesOf(p); got != nil || p.last.Path != "/big/4" || p.sampleBytes() > maxSampleBytes {
		t.Errorf("40 KiB contexts: extra samples %q (%d bytes held), want none: the newest (/big/4) alone", paths(p), p.sampleBytes())
	}

	a, b := &pending{}, &pending{}
	a.add(occ(0, "/a", 10))
	b.add(occ(1, "/b", 10))
	a.merge(b)
	if got, want := paths(a), "/a@0 /b@1"; got != want {
		t.Errorf("merged: %q, want %q", got, want)
	}
}
