package errmon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// pending is one error's occurrences waiting to be stored: however many
// there are, they become one upsert.
type pending struct {
	last     *Occurrence // the newest sample
	count    int64
	first    time.Time
	lastSeen time.Time
	hours    map[int64]int64 // unix start of hour -> occurrences
	failures int             // failed writes while other writes succeeded
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
	hour := o.Time.Truncate(time.Hour).Unix()
	if p.hours == nil {
		p.hours = make(map[int64]int64, 1)
	}
	p.hours[hour]++
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
	if p.hours == nil {
		p.hours = make(map[int64]int64, len(q.hours))
	}
	for h, n := range q.hours {
		p.hours[h] += n
	}
	p.failures = max(p.failures, q.failures)
}

// queue coalesces occurrences in memory between flushes. It holds at most
// max distinct errors, counting those being written.
type queue struct {
	mu       sync.Mutex
	pending  map[string]*pending
	inflight int // distinct errors taken by the writer and not yet settled
	max      int
	closed   bool
	dropped  int64 // occurrences dropped because the queue was full or closed
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
		if len(q.pending)+q.inflight >= q.max {
			q.dropped++
			return false
		}
		p = &pending{}
		q.pending[o.Hash] = p
	}
	p.add(o)
	return true
}

// take hands the pending set to the writer.
func (q *queue) take() map[string]*pending {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.pending
	q.pending = make(map[string]*pending, len(batch))
	q.inflight += len(batch)
	return batch
}

// settle ends a write: stored batches leave, failed ones come back.
func (q *queue) settle(stored int, failed map[string]*pending) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight -= stored + len(failed)
	for hash, f := range failed {
		if p := q.pending[hash]; p != nil {
			f.merge(p)
		}
		q.pending[hash] = f
	}
}

// size returns the occurrences and distinct errors waiting, and the
// dropped count.
func (q *queue) size() (occurrences int64, errs int, dropped int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range q.pending {
		occurrences += p.count
	}
	return occurrences, len(q.pending) + q.inflight, q.dropped
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
	// others succeed (a value the database rejects).
	maxWriteFailures = 5
	// flushTimeout bounds one pass of the writer.
	flushTimeout = 30 * time.Second
	// failureLogEvery rate-limits the log of a database that stays down.
	failureLogEvery = 30 * time.Second
)

// writer is the monitor's one background goroutine for storage: it stores
// the queue every FlushInterval and when asked by Flush.
func (m *Monitor) writer() {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.FlushInterval)
	defer tick.Stop()
	pruneEvery := time.NewTicker(time.Hour)
	defer pruneEvery.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			_ = m.flushOnce()
		case req := <-m.flushReq:
			req.done <- m.flushOnce()
		case <-pruneEvery.C:
			ctx, cancel := context.WithTimeout(m.base, flushTimeout)
			if err := m.store.pruneHourly(ctx, time.Now()); err != nil {
				m.log.Warn("errmon: could not prune hourly counts", "err", err)
			}
			cancel()
		}
	}
}

// flushOnce stores everything pending and returns what could not be stored.
func (m *Monitor) flushOnce() error {
	batch := m.queue.take()
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(m.base, flushTimeout)
	defer cancel()
	failed := make(map[string]*pending)
	var (
		stored, consecutive, successes int
		firstErr                       error
		lost                           int64
	)
	for hash, p := range batch {
		if consecutive >= maxConsecutiveFailures || ctx.Err() != nil {
			failed[hash] = p
			continue
		}
		res, err := m.store.write(ctx, p)
		if err != nil {
			consecutive++
			if firstErr == nil {
				firstErr = err
			}
			failed[hash] = p
			continue
		}
		consecutive = 0
		successes++
		stored++
		m.stats.stored.Add(p.count)
		m.afterWrite(p, res)
	}
	if len(failed) == 0 {
		m.noteRecovered()
		m.queue.settle(stored, nil)
		return nil
	}
	// A write that fails while others succeed is about the value, not the
	// database: give up on it after a few tries rather than retry forever.
	if successes > 0 {
		for hash, p := range failed {
			if p.failures++; p.failures >= maxWriteFailures {
				delete(failed, hash)
				stored++ // settled
				lost += p.count
				m.stats.dropped.Add(p.count)
				m.log.Error("errmon: giving up on storing an error the database keeps rejecting",
					"hash", hash, "occurrences", p.count, "err", firstErr)
			}
		}
	}
	m.queue.settle(stored, failed)
	var n int64
	for _, p := range failed {
		n += p.count
	}
	err := fmt.Errorf("errmon: %d occurrences of %d errors not stored yet (kept in memory to retry): %w", n, len(failed), firstErr)
	m.noteFailure(n, len(failed), lost, firstErr)
	return err
}

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
