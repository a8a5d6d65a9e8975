package errmon

import (
	"context"
	"time"

	"github.com/errmon/errmon/internal/store"
)

// Go runs fn in a new goroutine and records a panic in it (kind
// "goroutine", with the stack at the panic site) instead of letting it end
// the process: see [Monitor.Recover].
func (m *Monitor) Go(fn func()) {
	go func() {
		defer m.Recover()
		fn()
	}()
}

// Recover, deferred at the top of a goroutine (defer m.Recover()), records
// a panic of that goroutine and lets the goroutine end normally. The
// occurrence (kind "goroutine", grouped by the stack at the panic site) is
// written to the database before Recover returns, waiting at most
// Config.CloseTimeout, so that a process that exits right after still has
// it; the panic is also logged to Config.Output, as gin's Recovery logs a
// request's panic.
//
// Swallowing is the choice because a panic in a background job (a ticker,
// a consumer) otherwise ends the whole service, with every request in
// flight, and errmon's own pending occurrences; the job's failure is now
// on the dashboard and in an alert instead. A team that wants the crash
// records, then panics again:
//
//	defer func() {
//		if r := recover(); r != nil {
//			m.Record(nil, fmt.Errorf("job: %v", r))
//			_ = m.Flush(ctx)
//			panic(r)
//		}
//	}()
//
// Recover must be called directly by defer, as the built-in recover must.
func (m *Monitor) Recover() {
	if r := recover(); r != nil {
		m.recovered(r)
	}
}

// recovered records the panic rec of a goroutine; its caller is the
// deferred function that recovered it, so the panicking frames are still
// on the stack.
func (m *Monitor) recovered(rec any) {
	frames := panicFrames()
	stored := frames
	if err, ok := rec.(error); ok {
		if own := errorFrames(err); len(own) > 0 {
			stored = own
		}
	}
	m.record(nil, KindGoroutine, rec, stored, nil)
	if m.out != nil {
		m.logOutput("[Recovery] %s goroutine panic recovered:\n%s\n%s%s", timeFormat(time.Now()),
			m.maskCap(messageOf(rec), store.MaxMessageBytes), formatTraceback(frames), reset)
	}
	if m.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CloseTimeout)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		m.log.Warn("errmon: a goroutine's panic was recorded but not stored before the goroutine ended",
			"err", err)
	}
}

// Go runs fn in a new goroutine, recording a panic in it with the default
// monitor (see [Monitor.Go]). Without a default monitor it is a plain go
// statement: a panic ends the process, as Go's own would.
func Go(fn func()) {
	if m := Default(); m != nil {
		m.Go(fn)
		return
	}
	go fn()
}

// Recover records a panic of the goroutine it is deferred in with the
// default monitor (see [Monitor.Recover]). Without a default monitor it
// does not recover: the panic goes on, as if Recover were not there.
// Recover must be called directly by defer.
func Recover() {
	m := Default()
	if m == nil {
		return // recover() is not called: the panic continues
	}
	if r := recover(); r != nil {
		m.recovered(r)
	}
}
