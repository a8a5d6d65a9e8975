package errmon

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"math/bits"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/errmon/errmon/internal/store"
)

// pending is one error's occurrences waiting to be stored: however many
// there are, they become one upsert.
type pending struct {
	last     *Occurrence // the newest sample
	count    int64
	first    time.Time
	lastSeen time.Time
	// The hourly counts: most errors of a pass fall in one hour, kept
	// inline (hourN > 0); hours holds the others.
	hour, hourN int64
	hours       map[int64]int64 // unix start of hour -> occurrences
	failures    int             // writes refused for the value (not the connection) while others succeeded
	// seq is the queue's sequence number of the oldest occurrence held:
	// the writer stores the oldest first.
	seq uint64
	// samples are the occurrences stored as samples when it is written (see
	// keepSample): up to store.OccurrenceHistory of distinct paths.
	samples []*Occurrence
	// users are the keys of the distinct users its occurrences hit, below
	// the threshold of usersScale (user.go): all of them while they are at
	// most maxPendingUsers (usersScale 1; 0 before the first).
	users      map[int64]struct{}
	usersScale int64
}

// maxSampleBytes bounds the texts of an error's extra samples held in
// memory (the newest occurrence is always kept, as its row's): an error
// with large request contexts keeps fewer samples per write.
const maxSampleBytes = 64 << 10

// keepSample adds o to the samples p stores: distinct paths first, each
// the newest of its path; when they are full (store.OccurrenceHistory of
// them, or maxSampleBytes of text), a new path takes the oldest one's
// place, so that the newest occurrence is always among them.
func (p *pending) keepSample(o *Occurrence) {
	oldest := -1
	for i, s := range p.samples {
		if s.Path == o.Path {
			if !o.Time.Before(s.Time) {
				p.samples[i] = o
			}
			return
		}
		if oldest < 0 || s.Time.Before(p.samples[oldest].Time) {
			oldest = i
		}
	}
	if len(p.samples) < store.OccurrenceHistory && p.sampleBytes()+sampleBytes(o) <= maxSampleBytes || len(p.samples) == 0 {
		p.samples = append(p.samples, o)
		return
	}
	if oldest >= 0 && !o.Time.Before(p.samples[oldest].Time) &&
		p.sampleBytes()-sampleBytes(p.samples[oldest])+sampleBytes(o) <= maxSampleBytes {
		p.samples[oldest] = o
	}
}

// sampleBytes is what a sample's texts weigh.
func sampleBytes(o *Occurrence) int {
	return len(o.Message) + len(o.RequestData) + len(o.Path) + len(o.Host)
}

// sampleBytes is what p's samples weigh.
func (p *pending) sampleBytes() int {
	n := 0
	for _, s := range p.samples {
		n += sampleBytes(s)
	}
	return n
}

func (p *pending) add(o *Occurrence) {
	p.count++
	if p.first.IsZero() || o.Time.Before(p.first) {
		p.first = o.Time
	}
	if !o.Time.Before(p.lastSeen) {
		p.lastSeen = o.Time
		p.last = o
	}
	p.keepSample(o)
	p.addHour(o.Time.Truncate(time.Hour).Unix(), 1)
	if o.User != "" {
		p.addUser(o.userKey)
	}
}

// addHour adds n occurrences to an hour's count.
func (p *pending) addHour(hour, n int64) {
	switch {
	case p.hourN == 0 || p.hour == hour:
		p.hour = hour
		p.hourN += n
	default:
		if p.hours == nil {
			p.hours = make(map[int64]int64, 1)
		}
		p.hours[hour] += n
	}
}

// sortedHours yields the hourly counts in order of the hour.
func (p *pending) sortedHours() iter.Seq2[int64, int64] {
	return func(yield func(int64, int64) bool) {
		if len(p.hours) == 0 {
			if p.hourN > 0 {
				yield(p.hour, p.hourN)
			}
			return
		}
		all := maps.Clone(p.hours)
		if p.hourN > 0 {
			all[p.hour] += p.hourN
		}
		for _, h := range slices.Sorted(maps.Keys(all)) {
			if !yield(h, all[h]) {
				return
			}
		}
	}
}

// merge adds q (a batch that could not be stored) back into p.
func (p *pending) merge(q *pending) {
	p.count += q.count
	if q.first.Before(p.first) {
		p.first = q.first
	}
	if q.lastSeen.After(p.lastSeen) {
		p.lastSeen, p.last = q.lastSeen, q.last
	}
	for h, n := range q.sortedHours() {
		p.addHour(h, n)
	}
	p.failures = max(p.failures, q.failures)
	p.seq = min(p.seq, q.seq)
	for _, o := range q.samples {
		p.keepSample(o)
	}
	p.mergeUsers(q)
}

// slim drops from an occurrence what storing it never reads (the error
// value and its parsed frames: the traceback is already text), so that a
// pending error holds only its texts.
func slim(o *Occurrence) {
	o.Value, o.Frames = nil, nil
}

// queue coalesces occurrences in memory between flushes. It holds at most
// max distinct errors, counting those being written.
type queue struct {
	mu       sync.Mutex
	pending  map[string]*pending
	inflight int // distinct errors taken by the writer and not yet settled
	// writing is the batch the writer holds (read-only for both sides), and
	// overlap how many pending errors are also in it or parked: a new
	// occurrence of an error being written is counted, since it adds no
	// distinct error.
	writing map[string]*pending
	overlap int
	// parked are chunks whose write failed in a way that may have committed
	// (the answer was lost): they stay inflight until the writer learns,
	// from their receipt, whether they were stored. parkedN counts the
	// parked chunks holding each error.
	parked  []*parkedChunk
	parkedN map[string]int
	max     int
	closed  bool
	dropped int64  // occurrences dropped because the queue was full or closed
	seq     uint64 // occurrences added so far: their order
	// tracebacks interns the tracebacks of the pending set: the distinct
	// errors of one code path (a storm of messages naming their ids) hold
	// one copy of their traceback between them. Reset at each take, and
	// when it holds as many tracebacks as max.
	tracebacks map[string]string
	// wake signals the writer (a send that never blocks, on a channel of
	// one) when the pending set gets its first error and when it grows to
	// nextWake distinct errors: a sleeping writer learns of new errors
	// and of a storm without looking. since is when the set got its first
	// error (zero while it is empty); nextWake is always above
	// len(pending), 0 standing for firstWake. clock is time.Now but in
	// tests.
	wake     chan struct{}
	since    time.Time
	nextWake int
	clock    func() time.Time
}

// firstWake is the pending set's size at which the queue signals the
// writer a second time after a take (the first is its first error); it
// signals again at each wakeThreshold above. While fewer are pending, the
// writer reckons with the time firstWake errors take to write.
const firstWake = 16

// wakeThreshold returns the first threshold above n: firstWake, then four
// steps per doubling (16, 20, 24, 28, 32, 40, ...), so that the set grows
// by at most a quarter before the writer hears of it again: a storm of
// 100,000 new errors signals it about 50 times.
func wakeThreshold(n int) int {
	if n < firstWake {
		return firstWake
	}
	step := 1 << (bits.Len(uint(n)) - 3)
	return (n/step + 1) * step
}

func (q *queue) now() time.Time {
	if q.clock != nil {
		return q.clock()
	}
	return time.Now()
}

// wakeup returns the channel on which the queue signals the writer.
func (q *queue) wakeup() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
	}
	return q.wake
}

// grew is called when a new error joins the pending set: the first one,
// and each past the next threshold, signal the writer. A repeat of a
// pending error never comes here.
func (q *queue) grew() {
	if q.since.IsZero() {
		q.since = q.now()
	} else if n := len(q.pending); n >= max(q.nextWake, firstWake) {
		q.nextWake = wakeThreshold(n)
	} else {
		return
	}
	select {
	case q.wake <- struct{}{}:
	default: // a signal is already waiting (or no writer listens)
	}
}

// cameBack keeps the wake state true after errors came back to the
// pending set (the writer's own doing: it needs no signal).
func (q *queue) cameBack() {
	if len(q.pending) == 0 {
		return
	}
	if q.since.IsZero() {
		q.since = q.now()
	}
	if n := len(q.pending); n >= max(q.nextWake, firstWake) {
		q.nextWake = wakeThreshold(n)
	}
}

// wakeState returns when the pending set got its first error (zero when
// it is empty) and the most distinct errors it can hold before the queue
// signals the writer again.
func (q *queue) wakeState() (since time.Time, bound int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.since, max(q.nextWake, firstWake)
}

// add counts one occurrence. It never blocks on I/O; it reports false when
// the occurrence was dropped.
func (q *queue) add(o *Occurrence) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.dropped++
		return false
	}
	p := q.pending[o.Hash]
	if p == nil {
		if q.held(o.Hash) {
			q.overlap++
		} else if len(q.pending)-q.overlap+q.inflight >= q.max {
			q.dropped++
			return false
		}
		p = &pending{seq: q.seq}
		q.pending[o.Hash] = p
		// Only a new entry's traceback is interned, and only a new entry
		// may wake the writer: a repeat of a pending error (a storm of
		// one error) costs no hashing here.
		q.intern(o)
		q.grew()
	}
	q.seq++
	slim(o)
	p.add(o)
	return true
}

// intern makes o share the traceback text of an earlier occurrence.
func (q *queue) intern(o *Occurrence) {
	if o.Traceback == "" {
		return
	}
	if t, ok := q.tracebacks[o.Traceback]; ok {
		o.Traceback = t
		return
	}
	if q.tracebacks == nil || len(q.tracebacks) >= q.max {
		q.tracebacks = make(map[string]string)
	}
	q.tracebacks[o.Traceback] = o.Traceback
}

// held reports whether an error is being written or parked.
func (q *queue) held(hash string) bool {
	if _, beingWritten := q.writing[hash]; beingWritten {
		return true
	}
	return q.parkedN[hash] > 0
}

// recountOverlap recomputes overlap once the writer holds no batch.
func (q *queue) recountOverlap() {
	q.overlap = 0
	if len(q.parkedN) == 0 {
		return
	}
	for hash := range q.pending {
		if q.parkedN[hash] > 0 {
			q.overlap++
		}
	}
}

// parkedChunk is a chunk of a batch whose write may or may not have been
// stored: the transaction carrying its receipt token failed without a
// definite answer.
type parkedChunk struct {
	token string
	items map[string]*pending
}

// park keeps a chunk whose write may have committed. Its errors stay
// counted as inflight (settle leaves them out) until unpark.
func (q *queue) park(c *parkedChunk) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.parkedN == nil {
		q.parkedN = make(map[string]int, len(c.items))
	}
	for hash := range c.items {
		q.parkedN[hash]++
	}
	q.parked = append(q.parked, c)
}

// parkedChunks returns the parked chunks (the writer's own; only the
// writer parks and unparks).
func (q *queue) parkedChunks() []*parkedChunk {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.parked)
}

// unpark ends a parked chunk: stored, it leaves; not stored, its
// occurrences come back to the queue like a failed batch.
func (q *queue) unpark(c *parkedChunk, stored bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.parked, c)
	if i < 0 {
		return
	}
	q.parked = slices.Delete(q.parked, i, i+1)
	q.inflight -= len(c.items)
	for hash, f := range c.items {
		if q.parkedN[hash]--; q.parkedN[hash] <= 0 {
			delete(q.parkedN, hash)
		}
		if stored {
			continue
		}
		if p := q.pending[hash]; p != nil {
			f.merge(p)
		}
		q.pending[hash] = f
	}
	q.cameBack()
	q.recountOverlap() // the writer unparks only between its batches
}

// take hands the pending set to the writer.
func (q *queue) take() map[string]*pending {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.pending
	q.pending = make(map[string]*pending, len(batch))
	q.tracebacks = nil
	q.since, q.nextWake = time.Time{}, 0
	q.inflight += len(batch)
	q.writing, q.overlap = batch, 0
	return batch
}

// settle ends a write: stored batches leave, failed ones come back.
func (q *queue) settle(stored int, failed map[string]*pending) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight -= stored + len(failed)
	q.writing = nil
	for hash, f := range failed {
		if p := q.pending[hash]; p != nil {
			f.merge(p)
		}
		q.pending[hash] = f
	}
	q.cameBack()
	q.recountOverlap()
}

// parkedSize returns the occurrences and errors parked.
func (q *queue) parkedSize() (occurrences int64, errs int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range q.parked {
		for _, p := range c.items {
			occurrences += p.count
		}
		errs += len(c.items)
	}
	return occurrences, errs
}

// distinct returns the distinct errors waiting (parked ones included),
// without counting their occurrences.
func (q *queue) distinct() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) - q.overlap + q.inflight
}

// size returns the occurrences and distinct errors waiting (parked ones
// included), and the dropped count.
func (q *queue) size() (occurrences int64, errs int, dropped int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range q.pending {
		occurrences += p.count
	}
	for _, c := range q.parked {
		for _, p := range c.items {
			occurrences += p.count
		}
	}
	return occurrences, len(q.pending) - q.overlap + q.inflight, q.dropped
}

// flushRequest asks the writer to store everything now.
type flushRequest struct {
	done chan error
}

const (
	// maxConsecutiveFailures ends a flush early when the database is down,
	// rather than waiting on each error in turn.
	maxConsecutiveFailures = 3
	// maxWriteFailures drops an error whose writes keep failing while
	// others succeed (a value the database rejects). Failures that say the
	// database is unreachable, busy or shutting down never count.
	maxWriteFailures = 5
	// writeBatchSize is how many errors one transaction stores at most.
	// Larger chunks (up to 1,024, 14,336 bind parameters, within every
	// database's limit) measured no clear gain on our machines, and commit
	// a storm's oldest errors later: a SIGKILL then loses more. The hourly
	// counts are split apart (maxHourlyPerStatement).
	writeBatchSize = 128
	// maxChunkBytes bounds the text one transaction's statements carry:
	// errors with request contexts of a few KB make chunks of a few
	// hundred, whose upsert stays within a MySQL server's
	// max_allowed_packet (4 MB on MySQL 5.7, 16 MB on MariaDB, 64 MB on
	// MySQL 8 by default).
	maxChunkBytes = 4 << 20
	// flushTimeout bounds one pass of the writer.
	flushTimeout = 30 * time.Second
	// failureLogEvery rate-limits the log of a database that stays down.
	failureLogEvery = 30 * time.Second
	// maxRetryBackoff caps the pause between the writer's own attempts
	// while the database fails; Flush always tries at once.
	maxRetryBackoff = 30 * time.Second
)

// writer is the monitor's one background goroutine for storage: it stores
// the queue about every FlushInterval and when asked by Flush. While the
// database fails, its own attempts back off (doubling up to
// maxRetryBackoff) so that a recovering database is not hammered;
// occurrences keep being counted in memory meanwhile.
//
// The crash window: a process killed without Close loses what is in
// memory, the occurrences recorded since the last pass took the pending
// set (its cut) plus those of that pass not committed yet. Passes are
// timed so that each stores its oldest occurrence within a FlushInterval
// of its recording (see schedule), and write the oldest errors first.
//
// The writer never polls. With nothing pending it sleeps until the
// queue signals its first error; then until the pass is due, unless the
// queue signals that the set has grown past the next threshold (see
// wakeThreshold), which brings the pass forward under a storm.
func (m *Monitor) writer() {
	defer m.wg.Done()
	wake := m.queue.wakeup()
	pruneEvery := time.NewTicker(time.Hour)
	defer pruneEvery.Stop()
	var (
		backoff     time.Duration
		retryAt     time.Time
		dropsLogged int64
		lastDropLog time.Time
	)
	defer func() { m.noteDrops(&dropsLogged, &lastDropLog, true) }()
	// Retention runs at start, then every hour: a service restarted more
	// often than hourly still prunes.
	m.prune()
	sched := schedule{interval: m.cfg.FlushInterval}
	// sleep is how long until the next pass: 0 when it is due now. After
	// a failure it is the retry, whatever is pending (a parked write is
	// settled by a pass too).
	sleep := func(now time.Time) time.Duration {
		if !retryAt.IsZero() {
			return max(retryAt.Sub(now), 0)
		}
		since, bound := m.queue.wakeState()
		return sched.wait(now, since, bound)
	}
	timer := time.NewTimer(sleep(time.Now()))
	defer timer.Stop()
	pass := func() error {
		errs := m.queue.distinct()
		start := time.Now()
		err := m.flushOnce()
		if err == nil {
			backoff, retryAt = 0, time.Time{}
			sched.passed(time.Since(start), errs)
		} else {
			backoff = min(max(2*backoff, m.cfg.FlushInterval), maxRetryBackoff)
			retryAt = time.Now().Add(backoff)
		}
		return err
	}
	// arm sets the timer for the next pass; a pass already due fires at
	// once (Go 1.23 timers: no stale tick survives a Reset).
	arm := func() { timer.Reset(sleep(time.Now())) }
	for {
		select {
		case <-m.stop:
			return
		case <-timer.C:
			m.noteDrops(&dropsLogged, &lastDropLog, false)
			if sleep(time.Now()) == 0 {
				_ = pass()
			}
			arm()
		case <-wake:
			// A first error, or a larger set: the pass may be due sooner.
			// While retrying, the backoff stands (sleep says so).
			arm()
		case req := <-m.flushReq:
			req.done <- pass()
			arm()
		case <-pruneEvery.C:
			m.prune()
		}
	}
}

// schedule times the writer's passes. A pass stores what was recorded
// before its cut (its start), oldest first; what is recorded after waits
// for the next pass. So the next pass is due when the age of the pending
// set's oldest occurrence plus the time writing the set will take
// reaches the interval, less a margin: then even its newest occurrences
// are stored about an interval after the oldest was recorded, however
// large the set has grown. While errors are few, passes come about every
// interval; under a storm of new errors sooner, at once when the writer
// is behind (it then writes at the database's speed until it catches up).
//
// The writer does not look at the set while it sleeps: it reckons with
// the size the set may reach before the queue signals it (the next wake
// threshold, at most a quarter above the size now), and reckons again when
// signalled.
type schedule struct {
	interval time.Duration
	// A pass of n distinct errors in k chunks takes about k*perChunk +
	// n*perError: each chunk's statements and round trips, and each
	// error's rows. Both are smoothed over the passes that show them:
	// perChunk over passes of a few errors, perError over passes of many;
	// 0 until measured (perError is then that of priorRate).
	perChunk, perError time.Duration
}

const (
	// marginPerInterval: a pass starts interval/marginPerInterval before
	// the time its estimate asks for, for the timer's lateness and the
	// estimate's error.
	marginPerInterval = 20
	// priorRate is the writing speed assumed until a pass of many errors
	// has measured the database's (distinct errors per second; a database
	// a few milliseconds away writes several thousand): a storm in the
	// first interval brings the first pass forward.
	priorRate = 2000
	// A pass of at most fewErrors errors measures perChunk; one of at
	// least manyErrors, perError.
	fewErrors, manyErrors = 8, 64
	// idleSleep is the writer's sleep with nothing pending: the queue
	// signals its first error.
	idleSleep = time.Hour
)

// chunksFor is about how many chunks a pass of n errors writes.
func chunksFor(n int) int { return (n + writeBatchSize - 1) / writeBatchSize }

// smooth averages a new measure with the last ones.
func smooth(old, v time.Duration) time.Duration {
	if old == 0 {
		return v
	}
	return (old + v) / 2
}

// passed notes a pass that took took and wrote errs distinct errors.
func (s *schedule) passed(took time.Duration, errs int) {
	switch {
	case errs <= 0 || took <= 0:
	case errs <= fewErrors:
		s.perChunk = smooth(s.perChunk, took)
	case errs >= manyErrors:
		n := time.Duration(errs)
		// What the chunks' own time leaves, but at least half the
		// average: a slow small pass must not make errors look free.
		e := max((took-time.Duration(chunksFor(errs))*s.perChunk)/n, took/n/2)
		s.perError = smooth(s.perError, e)
	}
}

// write is about how long a pass of n distinct errors takes, a quarter
// more than the last passes measured: the next pass writes into a larger
// table, maybe on a busier machine.
func (s *schedule) write(n int) time.Duration {
	perError := s.perError
	if perError == 0 {
		perError = time.Second / priorRate
	}
	d := time.Duration(chunksFor(n))*s.perChunk + time.Duration(n)*perError
	return d + d/4
}

// wait returns how long until the next pass is due, for a pending set
// whose first error came at since (zero: the set is empty) and which holds
// at most bound distinct errors until the queue signals again; 0 means
// now.
func (s *schedule) wait(now, since time.Time, bound int) time.Duration {
	if since.IsZero() {
		return idleSleep
	}
	margin := max(s.interval/marginPerInterval, time.Millisecond)
	return max(since.Add(s.interval-margin-s.write(bound)).Sub(now), 0)
}

// noteDrops logs the occurrences the full pending set dropped since the
// last report, at most once per failureLogEvery, or now when forced (the
// writer stopping).
func (m *Monitor) noteDrops(logged *int64, last *time.Time, force bool) {
	m.queue.mu.Lock()
	dropped := m.queue.dropped
	m.queue.mu.Unlock()
	now := time.Now()
	if dropped == *logged || (!force && !last.IsZero() && now.Sub(*last) < failureLogEvery) {
		return
	}
	m.log.Warn("errmon: occurrences dropped: the pending set was full or the monitor closed",
		"dropped", dropped-*logged, "dropped_total", dropped, "max_pending", m.cfg.MaxPending)
	*logged, *last = dropped, now
}

// prune deletes old hourly counts; a failure or a panic there is logged
// and never stops the writer.
func (m *Monitor) prune() {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("errmon: internal panic while pruning", "panic", sanitize(m.mask.Text(messageOf(r)), 1024))
		}
	}()
	ctx, cancel := context.WithTimeout(m.base, flushTimeout)
	defer cancel()
	if err := m.store.PruneHourly(ctx, time.Now()); err != nil {
		m.log.Warn("errmon: could not prune hourly counts", "err", err)
	}
	if err := m.store.PruneReceipts(ctx, time.Now()); err != nil {
		m.log.Warn("errmon: could not prune write receipts", "err", err)
	}
	n, err := m.store.PruneErrors(ctx, time.Now(), m.cfg.RetentionDays, m.cfg.MaxErrors)
	m.stats.pruned.Add(n)
	if n > 0 {
		m.log.Info("errmon: pruned errors past retention", "errors", n,
			"retention_days", m.cfg.RetentionDays, "max_errors", m.cfg.MaxErrors)
	}
	if err != nil {
		m.log.Warn("errmon: could not prune errors past retention", "err", err)
	}
}

// mayHaveCommitted reports whether a failed write may nevertheless have
// been stored: its COMMIT was sent, and the connection broke or the wait
// was cancelled before the answer came, so the answer may be what was
// lost. A failure before the commit, an error the database answered (an
// SQLSTATE) or a lock SQLite reported means the transaction was rolled
// back.
func mayHaveCommitted(err error) bool {
	var ce *store.CommitError
	if !errors.As(err, &ce) {
		return false
	}
	var coded interface{ SQLState() string }
	if errors.As(err, &coded) {
		return false
	}
	return !store.SQLiteBusy(err)
}

// resolveParked settles the chunks parked by earlier passes: stored ones
// are counted as stored, the others come back to the queue to be written
// again. A chunk whose receipt cannot be checked stays parked; the first
// such error is returned.
func (m *Monitor) resolveParked(ctx context.Context) error {
	var firstErr error
	for _, c := range m.queue.parkedChunks() {
		stored, err := m.settledSafely(ctx, c.token)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if !stored {
			m.queue.unpark(c, false)
			continue
		}
		hashes := slices.Sorted(maps.Keys(c.items))
		results, err := m.store.LostWriteResults(ctx, c.token, hashes)
		if err != nil {
			m.log.Warn("errmon: could not tell which errors a lost write created; no alert for them", "err", err)
		}
		var n int64
		for _, p := range c.items {
			n += p.count
		}
		m.stats.stored.Add(n)
		m.queue.unpark(c, true)
		m.log.Info("errmon: a write whose answer was lost had been stored", "occurrences", n, "errors", len(c.items))
		var written []writtenError
		for _, hash := range hashes {
			if res, ok := results[hash]; ok {
				written = append(written, writtenError{c.items[hash], res})
			}
		}
		m.afterWriteSafely(written)
	}
	return firstErr
}

// settledSafely is store.settled with a panic turned into an error.
func (m *Monitor) settledSafely(ctx context.Context, token string) (stored bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("errmon: panic while checking a write receipt: %s", sanitize(m.mask.Text(messageOf(r)), 1024))
		}
	}()
	return m.store.Settled(ctx, token)
}

// flushOnce stores everything pending and returns what could not be stored.
// Errors are written in chunks, one transaction each, so a failed write is
// retried later without double counting; its occurrences go back to the
// queue and merge with those recorded meanwhile. A chunk whose write may
// have committed although it failed (the answer was lost) is parked
// instead, until the next pass finds out from its receipt whether it was
// stored: that pass starts by resolving the parked chunks.
func (m *Monitor) flushOnce() error {
	ctx, cancel := context.WithTimeout(m.base, flushTimeout)
	defer cancel()
	parkedErr := m.resolveParked(ctx)
	defer m.writeSources(ctx) // sourcecontext.go: after the errors' writes
	batch := m.queue.take()
	if len(batch) == 0 {
		m.queue.settle(0, nil)
		return m.parkedError(parkedErr)
	}
	failed := make(map[string]*pending)
	var (
		settled, consecutive, successes int
		firstErr                        error
		rejected                        = map[string]error{} // failures that may be about the value
	)
	var written []writtenError // the chunk's stored errors, for its alert decisions
	one := func(hash string, p *pending, res store.Result, err error) {
		if err != nil {
			consecutive++
			if firstErr == nil {
				firstErr = err
			}
			if mayHaveCommitted(err) {
				return // parked by the caller
			}
			failed[hash] = p
			if !transientDBError(err) {
				rejected[hash] = err
			}
			return
		}
		consecutive = 0
		successes++
		settled++
		m.stats.stored.Add(p.count)
		written = append(written, writtenError{p, res})
	}
	// Errors are written in chunks (see chunksOf), one transaction (one
	// commit) each, oldest first, each in hash order so that processes
	// sharing a database take row locks in the same order. Where the
	// database writes transactions in parallel, the next chunk is sent
	// while one is being written (see writeDepth); the answers are taken
	// in order.
	chunks := chunksOf(batch)
	depth := 1
	if len(chunks) > 1 {
		depth = m.writeDepth()
	}
	var inFlight []*chunkWrite
	for next := 0; next < len(chunks) || len(inFlight) > 0; {
		for len(inFlight) < depth && next < len(chunks) {
			chunk := chunks[next]
			next++
			if consecutive >= maxConsecutiveFailures || ctx.Err() != nil {
				for _, hash := range chunk {
					failed[hash] = batch[hash]
				}
				continue
			}
			inFlight = append(inFlight, m.startChunk(ctx, batch, chunk, depth > 1))
		}
		if len(inFlight) == 0 {
			continue
		}
		w := inFlight[0]
		inFlight = inFlight[1:]
		<-w.done
		chunk, ps, token, results, err := w.chunk, w.ps, w.token, w.results, w.err
		switch {
		case err == nil:
			for i, hash := range chunk {
				one(hash, ps[i], results[i], nil)
			}
		case len(chunk) == 1 || transientDBError(err) || mayHaveCommitted(err):
			for i, hash := range chunk {
				one(hash, ps[i], store.Result{}, err)
			}
			if mayHaveCommitted(err) {
				m.park(token, chunk, ps)
			}
		default:
			// A value the database rejects fails its whole chunk: write the
			// chunk's errors one by one, so that only that one is held back.
			for i, hash := range chunk {
				if consecutive >= maxConsecutiveFailures || ctx.Err() != nil {
					failed[hash] = ps[i]
					continue
				}
				token := store.NewToken()
				res, err := m.writeSafely(ctx, token, ps[i])
				one(hash, ps[i], res, err)
				if mayHaveCommitted(err) {
					m.park(token, chunk[i:i+1], ps[i:i+1])
				}
			}
		}
		m.afterWriteSafely(written) // the chunk's alert decisions, in a few statements
		written = written[:0]
	}
	// A write that fails while others succeed, with an error that is not
	// about the connection, is about the value: give up on it after a few
	// tries rather than retry forever.
	var lost int64
	if successes > 0 {
		for hash, err := range rejected {
			p := failed[hash]
			if p.failures++; p.failures >= maxWriteFailures {
				delete(failed, hash)
				settled++
				lost += p.count
				m.stats.dropped.Add(p.count)
				m.log.Error("errmon: giving up on storing an error the database keeps rejecting",
					"hash", hash, "occurrences", p.count, "attempts", p.failures, "err", err)
			}
		}
	}
	// Count before settling: from then on the queue owns the batches again.
	var n int64
	for _, p := range failed {
		n += p.count
	}
	errs := len(failed)
	m.queue.settle(settled, failed)
	// A pass cut short by its deadline fails chunks it never tried: the
	// deadline is then the cause.
	firstErr = cmp.Or(firstErr, parkedErr, ctx.Err())
	if errs == 0 {
		if err := m.parkedError(firstErr); err != nil {
			return err
		}
		m.noteRecovered()
		return nil
	}
	if pn, perrs := m.queue.parkedSize(); perrs > 0 {
		n, errs = n+pn, errs+perrs
	}
	err := fmt.Errorf("errmon: %d occurrences of %d errors not stored yet (kept in memory to retry): %w", n, errs, firstErr)
	m.noteFailure(n, errs, lost, firstErr)
	return err
}

// chunkWrite is the write of one chunk, done when done is closed.
type chunkWrite struct {
	chunk   []string
	ps      []*pending
	token   string
	results []store.Result
	err     error
	done    chan struct{}
}

// startChunk writes a chunk of batch: in a goroutine of its own when
// concurrent, else at once.
func (m *Monitor) startChunk(ctx context.Context, batch map[string]*pending, chunk []string, concurrent bool) *chunkWrite {
	w := &chunkWrite{chunk: chunk, ps: make([]*pending, len(chunk)), token: store.NewToken(), done: make(chan struct{})}
	for i, hash := range chunk {
		w.ps[i] = batch[hash]
	}
	write := func() {
		defer close(w.done)
		w.results, w.err = m.writeBatchSafely(ctx, w.token, w.ps)
	}
	if concurrent {
		go write()
	} else {
		write()
	}
	return w
}

// writeDepth is how many chunks a pass writes at once. PostgreSQL writes
// concurrent transactions in parallel, and two chunks in flight keep its
// server busy while the writer sends and reads: two there, when the pool
// allows at least minPoolForDepth connections (the application's own
// queries keep the others). Elsewhere one: SQLite writes one transaction
// at a time, and MySQL's gap locks make concurrent upserts deadlock.
func (m *Monitor) writeDepth() int {
	db := m.cfg.DB
	if db == nil || db.Dialector == nil || db.Dialector.Name() != "postgres" {
		return 1
	}
	sqlDB, err := db.DB()
	if err != nil {
		return 1
	}
	if n := sqlDB.Stats().MaxOpenConnections; n != 0 && n < minPoolForDepth {
		return 1
	}
	return 2
}

// minPoolForDepth: a pool capped below it gets one chunk at a time.
const minPoolForDepth = 4

// chunksOf splits a batch into the chunks of its transactions: oldest
// errors first (by the sequence of their oldest occurrence), at most
// writeBatchSize errors and about maxChunkBytes of text each, each chunk in
// hash order.
func chunksOf(batch map[string]*pending) [][]string {
	hashes := slices.SortedFunc(maps.Keys(batch), func(a, b string) int {
		return cmp.Compare(batch[a].seq, batch[b].seq)
	})
	var (
		out   [][]string
		start int
		bytes int
	)
	for i, hash := range hashes {
		size := batch[hash].textBytes()
		if i > start && (i-start == writeBatchSize || bytes+size > maxChunkBytes) {
			out = append(out, hashes[start:i:i])
			start, bytes = i, 0
		}
		bytes += size
	}
	if start < len(hashes) {
		out = append(out, hashes[start:])
	}
	for _, c := range out {
		slices.Sort(c)
	}
	return out
}

// textBytes is about how much text writing p sends: the row's texts, and
// the sample's message and request context.
func (p *pending) textBytes() int {
	o := p.last
	n := len(o.Hash) + len(o.Host) + len(o.Path) + len(o.Route) + len(o.ExceptionName) +
		2*len(o.Message) + len(o.Traceback) + 2*len(o.RequestData) + 256
	if len(p.samples) > 1 {
		n += p.sampleBytes() + 128*len(p.samples)
	}
	return n
}

// park keeps a chunk whose write may have committed for the next pass.
func (m *Monitor) park(token string, hashes []string, ps []*pending) {
	items := make(map[string]*pending, len(hashes))
	for i, hash := range hashes {
		items[hash] = ps[i]
	}
	m.queue.park(&parkedChunk{token: token, items: items})
}

// parkedError is the error of a pass that leaves parked chunks, which are
// not known to be stored yet; nil when there are none.
func (m *Monitor) parkedError(cause error) error {
	n, errs := m.queue.parkedSize()
	if errs == 0 {
		return nil
	}
	if cause == nil {
		cause = errors.New("errmon: the answer to a write was lost")
	}
	err := fmt.Errorf("errmon: %d occurrences of %d errors not stored yet, as far as known (the answer to their write was lost; the next pass checks whether it was stored): %w", n, errs, cause)
	m.noteFailure(n, errs, 0, cause)
	return err
}

// writeSafely stores one error in a transaction of its own.
func (m *Monitor) writeSafely(ctx context.Context, token string, p *pending) (store.Result, error) {
	res, err := m.writeBatchSafely(ctx, token, []*pending{p})
	if err != nil {
		return store.Result{}, err
	}
	return res[0], nil
}

// writeBatchSafely is Store.WriteBatch with a panic (in a GORM plugin or
// driver) turned into an error, so that the writer goroutine never dies.
func (m *Monitor) writeBatchSafely(ctx context.Context, token string, ps []*pending) (res []store.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("errmon: panic while storing errors: %s", sanitize(m.mask.Text(messageOf(r)), 1024))
		}
	}()
	return m.store.WriteBatch(ctx, token, writes(ps))
}

// writes is what the store writes of ps.
func writes(ps []*pending) []store.Write {
	ws := make([]store.Write, len(ps))
	for i, p := range ps {
		o := p.last
		ws[i] = store.Write{
			Hash: o.Hash, Host: o.Host, Path: o.Path, Method: o.Method, Route: o.Route,
			ExceptionName: o.ExceptionName, Message: o.Message, Traceback: o.Traceback, RequestData: o.RequestData,
			Release: o.Release, Environment: o.Environment, Server: o.Server, Status: o.Status, Culprit: o.Culprit,
			User:  o.User,
			Count: p.count, First: p.first, Last: p.lastSeen, Hours: p.sortedHours(),
			Samples:  samplesOf(p),
			UserKeys: p.userKeys(), UsersScale: max(p.usersScale, 1),
		}
	}
	return ws
}

// samplesOf is what p stores as samples, oldest first.
func samplesOf(p *pending) []store.Sample {
	if len(p.samples) <= 1 {
		return nil // the one sample is the newest occurrence's: the row's fields
	}
	kept := p.samples
	if !slices.Contains(kept, p.last) {
		// The newest was too large to keep besides the others: it takes
		// the oldest one's place.
		kept = slices.Clone(kept)
		oldest := 0
		for i, o := range kept {
			if o.Time.Before(kept[oldest].Time) {
				oldest = i
			}
		}
		kept[oldest] = p.last
	}
	out := make([]store.Sample, len(kept))
	for i, o := range kept {
		out[i] = store.Sample{SeenAt: o.Time, Host: o.Host, Path: o.Path, Method: o.Method, Message: o.Message,
			RequestData: o.RequestData, Release: o.Release, Environment: o.Environment, Server: o.Server, Status: o.Status, User: o.User}
	}
	slices.SortFunc(out, func(a, b store.Sample) int { return a.SeenAt.Compare(b.SeenAt) })
	return out
}

// afterWriteSafely runs the alert decisions of a chunk; a panic there is logged and
// never stops the writer.
func (m *Monitor) afterWriteSafely(items []writtenError) {
	if len(items) == 0 {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("errmon: internal panic while deciding alerts", "errors", len(items),
				"panic", sanitize(m.mask.Text(messageOf(r)), 1024))
		}
	}()
	m.afterWrite(items)
}

// transientDBError reports whether err says that the database could not be
// reached or could not serve the write now (down, restarting, busy,
// locked, cancelled), rather than that it refused the value: such failures
// are retried for as long as it takes and never make errmon give up on an
// error.
func transientDBError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, sql.ErrTxDone) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var coded interface{ SQLState() string }
	state, isCoded := "", errors.As(err, &coded)
	if isCoded {
		state = coded.SQLState()
	} else if m := mysqlState.FindStringSubmatch(err.Error()); m != nil {
		// go-sql-driver/mysql holds the state in a field, not a method:
		// its text says "Error 1213 (40001): ...".
		state, isCoded = m[1], true
		if m[0] == "Error 1205 (HY000)" { // lock wait timeout
			return true
		}
	}
	if isCoded {
		switch {
		case strings.HasPrefix(state, "08"), // connection exception
			strings.HasPrefix(state, "40"), // serialization failure, deadlock
			strings.HasPrefix(state, "53"), // insufficient resources (disk full, too many connections)
			strings.HasPrefix(state, "55"), // lock not available, object in use
			strings.HasPrefix(state, "57"), // admin shutdown, query cancelled, cannot connect now
			strings.HasPrefix(state, "58"), // system error (I/O)
			strings.HasPrefix(state, "42"): // undefined table or column: a schema being migrated
			return true
		}
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{
		"database is locked", "database table is locked", "busy", "connection refused", "connection reset",
		"broken pipe", "no such table", "disk i/o error", "database or disk is full", "closed", "timeout",
		"invalid connection", "server has gone away", "lost connection",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// mysqlState finds the SQLSTATE in a go-sql-driver/mysql error's text.
var mysqlState = regexp.MustCompile(`Error \d+ \(([0-9A-Z]{5})\)`)

// noteFailure logs a failed flush, at most once per failureLogEvery while
// the database stays down.
func (m *Monitor) noteFailure(occurrences int64, errs int, lost int64, err error) {
	m.stats.failedFlushes.Add(1)
	m.logMu.Lock()
	defer m.logMu.Unlock()
	now := time.Now()
	if !m.failingSince.IsZero() && now.Sub(m.lastFailureLog) < failureLogEvery {
		return
	}
	if m.failingSince.IsZero() {
		m.failingSince = now
	}
	m.lastFailureLog = now
	m.log.Error("errmon: could not store errors; will retry",
		"occurrences", occurrences, "errors", errs, "given_up", lost,
		"failing_since", m.failingSince, "err", err)
}

func (m *Monitor) noteRecovered() {
	m.logMu.Lock()
	defer m.logMu.Unlock()
	if !m.failingSince.IsZero() {
		m.log.Info("errmon: storing errors again", "after", time.Since(m.failingSince).Round(time.Millisecond))
		m.failingSince = time.Time{}
	}
}

// Flush waits until everything recorded before the call is stored and its
// alerts delivered, or ctx is done. It returns what could not be stored
// (the occurrences stay in memory and are retried) or ctx's error.
func (m *Monitor) Flush(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	req := flushRequest{done: make(chan error, 1)}
	select {
	case m.flushReq <- req:
	case <-ctx.Done():
		return fmt.Errorf("errmon: flush: %w", ctx.Err())
	case <-m.stop:
		return ErrClosed
	}
	select {
	case err := <-req.done:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("errmon: flush: %w", ctx.Err())
	}
	return m.alerts.wait(ctx)
}

// ErrClosed is returned by Flush after Close.
var ErrClosed = errors.New("errmon: monitor closed")
