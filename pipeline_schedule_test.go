package errmon

import (
	"fmt"
	"testing"
	"time"
)

// The writer's timing, white-box: when a pass is due (schedule), when the
// queue wakes a sleeping writer (its thresholds), and the two together on
// a simulated clock: an idle writer sleeps until an error comes, a
// trickle costs about a pass per interval, and a storm starting during its
// sleep is stored within the interval. The real
// writer on real databases: internal/tests' scale_writer_test.go.

// within reports whether got is want to the millisecond.
func within(got, want time.Duration) bool {
	d := got - want
	return d > -time.Millisecond && d < time.Millisecond
}

// TestScheduleWait: the next pass is due when the age of the pending
// set's first error plus the time the set can grow to before the writer
// is woken again would take to write reaches the interval, less the
// margin. A pass's time is its chunks' own time (measured on passes of a
// few errors) plus its errors' (measured on passes of many, priorRate
// before), and a quarter more. An empty set needs no pass.
func TestScheduleWait(t *testing.T) {
	first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const interval = time.Second
	margin := interval / marginPerInterval
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	s := schedule{interval: interval}
	if got := s.wait(first, time.Time{}, firstWake); got != idleSleep {
		t.Errorf("nothing pending: wait %v, want %v (until the queue signals)", got, idleSleep)
	}
	// Before any pass: 16 errors at priorRate (2,000/s) take 8ms, 10 with
	// the quarter.
	if got, want := s.wait(first, first, firstWake), interval-margin-ms(10); !within(got, want) {
		t.Errorf("a first error, nothing measured: wait %v, want %v", got, want)
	}
	if got := s.wait(first.Add(interval/2), first, 1000); got != 0 {
		t.Errorf("half an interval after the first error, a set that may reach 1,000 errors at 2,000/s: wait %v, want 0", got)
	}
	s.passed(ms(5), 1) // a chunk's own time: 5ms
	if got, want := s.wait(first, first, firstWake), interval-margin-ms(16.25); !within(got, want) {
		t.Errorf("after a pass of one error in 5ms: wait %v, want %v", got, want)
	}
	s.passed(ms(140), 1000) // 8 chunks (40ms) and 1,000 errors in 100ms: 10,000/s
	if s.perChunk != ms(5) || s.perError != 100*time.Microsecond {
		t.Fatalf("after a pass of 1,000 errors in 140ms: per chunk %v, per error %v; want 5ms, 100µs", s.perChunk, s.perError)
	}
	for _, tc := range []struct {
		since time.Duration
		bound int
		want  time.Duration
	}{
		{0, firstWake, interval - margin - ms(8.25)}, // a few: sleep to the pass
		{800 * time.Millisecond, 100, ms(131.25)},    // due at 931.25ms
		{300 * time.Millisecond, 6500, 0},            // 51 chunks and 6,500 errors: 1.13s of writing, due now
		{0, 100_000, 0},                              // behind: at once
	} {
		if got := s.wait(first.Add(tc.since), first, tc.bound); !within(got, tc.want) {
			t.Errorf("%v after the first error, at most %d errors: wait %v, want %v", tc.since, tc.bound, got, tc.want)
		}
	}
	s.passed(ms(1040), 1000) // 1ms an error: smoothed to 550µs
	if s.perError != 550*time.Microsecond {
		t.Errorf("after a second pass of many: per error %v, want 550µs", s.perError)
	}
	for _, p := range []struct {
		took time.Duration
		errs int
	}{{ms(1), 0}, {ms(500), 20}} { // an empty pass; one between few (8) and many (64)
		s.passed(p.took, p.errs)
		if s.perChunk != ms(5) || s.perError != 550*time.Microsecond {
			t.Errorf("a pass of %d errors in %v changed the estimate: per chunk %v, per error %v", p.errs, p.took, s.perChunk, s.perError)
		}
	}
	// A pass of many barely slower than a small one: its errors still
	// cost half their average.
	s = schedule{interval: interval, perChunk: ms(5)}
	if s.passed(ms(6), 64); s.perError != ms(6)/64/2 {
		t.Errorf("64 errors in 6ms after chunks of 5ms: per error %v, want %v", s.perError, ms(6)/64/2)
	}
}

// TestScheduleCatchesUpAfterSlowPass: after a pass that took longer than
// the interval (or half of it, with as many errors left to write as it
// wrote), the next pass is due at once, not an interval later; after a
// quick pass it sleeps until the pass is due. The writer's catching up
// end to end is internal/tests' TestWriterCatchesUpWithoutWaiting.
func TestScheduleCatchesUpAfterSlowPass(t *testing.T) {
	const interval = time.Hour
	margin := interval / marginPerInterval
	cut := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		took  time.Duration
		wrote int
		bound int
		want  time.Duration
	}{
		{"a pass of 2h, errors pending", 2 * time.Hour, 300, 320, 0},
		{"a pass of 2h, one error pending", 2 * time.Hour, 300, firstWake, 0},
		{"a pass of half the interval, as many pending", interval / 2, 300, 320, 0},
		// 300 errors/s: 320 take 1.33s with the quarter, 16 take 67ms.
		{"a quick pass, as many pending", time.Second, 300, 320, interval - margin - time.Second - 1333333333},
		{"a quick pass, one error pending", time.Second, 300, firstWake, interval - margin - time.Second - 66666667},
	} {
		s := schedule{interval: interval}
		s.passed(tc.took, tc.wrote)
		// The first error pending came right after the pass's cut.
		if got := s.wait(cut.Add(tc.took), cut, tc.bound); !within(got, tc.want) {
			t.Errorf("%s: wait %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestWakeThresholds: 16, then four steps per doubling: the set grows by
// at most a quarter between two signals.
func TestWakeThresholds(t *testing.T) {
	for n, want := range map[int]int{0: 16, 1: 16, 15: 16, 16: 20, 19: 20, 20: 24, 63: 64, 64: 80, 79: 80, 80: 96, 112: 128, 127: 128, 128: 160,
		255: 256, 256: 320, 1000: 1024, 1024: 1280, 100_000: 114_688} {
		if got := wakeThreshold(n); got != want {
			t.Errorf("wakeThreshold(%d) = %d, want %d", n, got, want)
		}
	}
	for n := firstWake; n < 1<<20; n++ {
		if w := wakeThreshold(n); w <= n || w > n+n/4 {
			t.Fatalf("wakeThreshold(%d) = %d: want above n, by at most a quarter", n, w)
		}
	}
}

// bound is the queue's wake bound.
func bound(q *queue) int {
	_, b := q.wakeState()
	return b
}

// TestQueueWakesWriter: the queue signals the writer at the pending set's
// first error and when its distinct errors reach each threshold, never
// for a repeat of a pending error, without blocking when a signal is
// already waiting; a take starts again from an empty set, and errors
// coming back from a failed write keep the state true without a signal
// (the writer knows).
func TestQueueWakesWriter(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := at
	q := &queue{pending: map[string]*pending{}, max: 1 << 20, clock: func() time.Time { return clock }}
	wake := q.wakeup()
	signalled := func() bool {
		select {
		case <-wake:
			return true
		default:
			return false
		}
	}
	next := 0
	addNew := func(n int) {
		for range n {
			q.add(&Occurrence{Hash: fmt.Sprintf("h%06d", next), Time: at})
			next++
		}
	}
	if since, b := q.wakeState(); !since.IsZero() || b != firstWake {
		t.Fatalf("empty: wakeState = %v, %d; want zero, %d", since, b, firstWake)
	}
	addNew(1)
	if !signalled() {
		t.Fatal("no signal at the first error")
	}
	clock = clock.Add(time.Second)
	addNew(firstWake - 2)
	for range 1000 { // a storm of repeats
		q.add(&Occurrence{Hash: "h000007", Time: at})
	}
	if signalled() {
		t.Fatalf("signalled at %d distinct errors (and repeats), before the threshold %d", firstWake-1, firstWake)
	}
	if since, b := q.wakeState(); !since.Equal(at) || b != firstWake {
		t.Fatalf("wakeState = %v, %d with %d pending, want the first error's time %v, %d", since, b, firstWake-1, at, firstWake)
	}
	addNew(1)
	if !signalled() {
		t.Fatalf("no signal at %d distinct errors", firstWake)
	}
	if got := bound(q); got != 20 {
		t.Fatalf("bound = %d after the signal at 16, want 20", got)
	}
	addNew(3)
	if signalled() {
		t.Fatal("signalled again below the next threshold (20)")
	}
	// Past several thresholds with nobody listening: add never blocks,
	// and one signal waits.
	addNew(1000)
	if !signalled() || signalled() {
		t.Fatal("want exactly one signal waiting after several thresholds")
	}
	if got, n := bound(q), len(q.pending); got <= n || got > n+n/4 {
		t.Fatalf("bound = %d with %d pending: want above, by at most a quarter", got, n)
	}

	// A take starts again from an empty set.
	batch := q.take()
	if since, b := q.wakeState(); !since.IsZero() || b != firstWake {
		t.Fatalf("after a take: wakeState = %v, %d; want zero, %d", since, b, firstWake)
	}
	addNew(firstWake)
	if !signalled() || signalled() {
		t.Fatal("want one signal waiting after a first error and the first threshold after a take")
	}
	// The batch fails and comes back: the bound stays above the set.
	q.settle(0, batch)
	if got, n := bound(q), len(q.pending); got <= n {
		t.Fatalf("bound = %d with %d pending after a failed write came back: want above", got, n)
	}
	if signalled() {
		t.Fatal("a failed write coming back signalled the writer (its own doing)")
	}
	// Into an empty set, it sets the set's time.
	batch = q.take()
	q.settle(0, batch)
	if since, _ := q.wakeState(); !since.Equal(clock) {
		t.Fatalf("a failed write came back into an empty set: since %v, want now (%v)", since, clock)
	}

	// A repeat of a pending error costs nothing more than before: no
	// allocation, no signal.
	o := &Occurrence{Hash: "h000001", Time: at}
	if allocs := testing.AllocsPerRun(1000, func() { q.add(o) }); allocs != 0 {
		t.Errorf("a repeat of a pending error allocates %.1f times, want 0", allocs)
	}
	if signalled() {
		t.Error("a repeat signalled the writer")
	}
}

// simWriter runs the writer's loop (the timer, the queue's signal, a pass
// when sleep says 0) on a simulated clock, in steps of a millisecond: the
// database writes rate distinct errors per second, each pass committing
// at its end (the real writer commits chunk by chunk, oldest first, which
// only shortens the window). record is called every step before the
// writer looks, to add what the step records. deaf leaves the queue's
// signals unheard (the writer looks only when its sleep ends: the first
// error of an empty set is still heard), to show what they are for. It
// returns the wakeups (timer or signal), the passes with something to
// store, and the longest an error waited from its recording to its
// commit.
func simWriter(q *queue, s *schedule, start time.Time, steps int, rate float64, deaf bool, record func(now time.Time)) (wakeups, passes int, worst time.Duration) {
	now := start
	q.clock = func() time.Time { return now }
	wake := q.wakeup()
	idle := false // the writer sleeps with nothing pending
	sleep := func() time.Duration {
		since, b := q.wakeState()
		idle = since.IsZero()
		return s.wait(now, since, b)
	}
	due := now.Add(sleep())
	type pass struct {
		end    time.Time
		oldest time.Time
		n      int
	}
	var inPass *pass
	for range steps {
		now = now.Add(time.Millisecond)
		record(now)
		if inPass != nil {
			if now.Before(inPass.end) {
				continue
			}
			q.settle(inPass.n, nil)
			worst = max(worst, inPass.end.Sub(inPass.oldest))
			inPass = nil
			due = now.Add(sleep())
		}
		select {
		case <-wake:
			if !deaf || idle {
				wakeups++
				due = now.Add(sleep())
			}
		default:
		}
		if now.Before(due) {
			continue
		}
		wakeups++
		if w := sleep(); w > 0 {
			due = now.Add(w)
			continue
		}
		batch := q.take()
		took := time.Duration(float64(len(batch)) / rate * float64(time.Second))
		s.passed(took, len(batch))
		if len(batch) == 0 {
			q.settle(0, nil)
			due = now.Add(sleep())
			continue
		}
		p := &pass{end: now.Add(took), oldest: now, n: len(batch)}
		for _, e := range batch {
			if e.first.Before(p.oldest) {
				p.oldest = e.first
			}
		}
		passes++
		inPass = p
	}
	return wakeups, passes, worst
}

// TestIdleWriterSleeps: with nothing pending, the writer sleeps until the
// queue signals a first error; a trickle of errors costs about one pass
// per interval, each storing its errors within the interval.
func TestIdleWriterSleeps(t *testing.T) {
	const interval = 100 * time.Millisecond
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	steps := 100 * int(interval/time.Millisecond)
	for _, measured := range []bool{false, true} {
		q := &queue{pending: map[string]*pending{}, max: 1000}
		s := schedule{interval: interval}
		if measured {
			s.passed(2*time.Millisecond, 10) // a small pass: 5,000/s
		}
		wakeups, passes, _ := simWriter(q, &s, start, steps, 5000, false, func(time.Time) {})
		if wakeups > 1 || passes != 0 {
			t.Errorf("rate measured %v: an idle writer woke %d times and stored %d times in 100 intervals, want at most once (idleSleep %v) and 0", measured, wakeups, passes, idleSleep)
		}
	}
	q := &queue{pending: map[string]*pending{}, max: 1000}
	s := schedule{interval: interval}
	n := 0
	wakeups, passes, worst := simWriter(q, &s, start, steps, 5000, false, func(now time.Time) {
		if now.Sub(start)%(10*time.Millisecond) == 0 { // 100 errors/s, a few per interval
			q.add(&Occurrence{Hash: fmt.Sprintf("t%d", n), Time: now})
			n++
		}
	})
	if passes > 125 || wakeups > 2*passes+1 || worst > interval {
		t.Errorf("a trickle: %d wakeups, %d passes in 100 intervals, an error waited up to %v; want at most 125 passes, two wakeups each (a first error, then the pass), %v", wakeups, passes, worst, interval)
	}
}

// TestStormDuringSleepNoticed: a storm of new errors starting while the
// writer sleeps wakes it through the queue's thresholds: every error is
// stored within the interval of its recording. The writer that only
// looked when its sleep ended would store the storm's first errors about
// 1.5 intervals after they were recorded here.
func TestStormDuringSleepNoticed(t *testing.T) {
	const interval = time.Second
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	storm := func(perMS int, deaf bool) (passes int, worst time.Duration) {
		q := &queue{pending: map[string]*pending{}, max: 1 << 20}
		s := schedule{interval: interval}
		s.passed(2*time.Millisecond, 10) // the last pass: 10 errors at 5,000/s
		n := 0
		_, passes, worst = simWriter(q, &s, start, 5000, 5000, deaf, func(now time.Time) {
			if now.Sub(start) == 50*time.Millisecond {
				q.add(&Occurrence{Hash: "a first error", Time: now}) // the writer sleeps until its pass
			}
			if now.Sub(start) < 100*time.Millisecond || now.Sub(start) > 4*time.Second {
				return // the storm: from 100ms, for 3.9s
			}
			for range perMS {
				q.add(&Occurrence{Hash: fmt.Sprintf("s%d", n), Time: now})
				n++
			}
		})
		return passes, worst
	}
	_, deafWorst := storm(3, true)
	t.Logf("3,000 new errors/s, a writer deaf to the queue: the longest wait %v", deafWorst)
	if deafWorst <= interval {
		t.Errorf("a writer deaf to the queue stored a storm within %v: the test tests nothing", deafWorst)
	}
	for _, perMS := range []int{1, 3, 4} { // 1,000 to 4,000 new errors/s, against 5,000/s written
		passes, worst := storm(perMS, false)
		t.Logf("%d new errors/s: %d passes, the longest wait %v", perMS*1000, passes, worst)
		if worst > interval {
			t.Errorf("a storm of %d new errors/s: an error waited %v to be stored (%d passes), over the interval %v", perMS*1000, worst, passes, interval)
		}
		if passes < 4 {
			t.Errorf("a storm of %d new errors/s over 4s: %d passes, want at least one per interval", perMS*1000, passes)
		}
	}
}
