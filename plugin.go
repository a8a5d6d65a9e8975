// Package errmon is an error monitor for gin services: one line of setup,
// and every panic and every c.Error of a failed request is recovered,
// fingerprinted, deduplicated into the service's own database through GORM
// (SQLite or PostgreSQL), shown on a built-in dashboard, and announced by
// email.
//
//	db, _ := gorm.Open(sqlite.Open("errors.db"), &gorm.Config{})
//	cfg := errmon.DefaultConfig()
//	cfg.DB = db
//	m, err := errmon.New(cfg)
//	if err != nil { ... }
//	defer m.Close()
//	r := gin.New()
//	m.InitApp(r) // the middleware and the dashboard at /dev/error
//
// The middleware replaces gin.Recovery: it keeps everything Recovery
// promises (the panic log, the 500, broken connections left alone) and adds
// the record. Storing happens off the request path: occurrences of one
// error are counted in memory and written as one upsert per error every
// Config.FlushInterval, so a storm of failures costs the database one
// statement per error, and a dead database never slows a request.
package errmon

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// Monitor records the errors of a gin service. Create it with [New]; it is
// safe for concurrent use. Close it when the service stops.
type Monitor struct {
	cfg   Config
	store *store.Store
	mask  *text.Masker
	log   *slog.Logger
	out   *log.Logger // the panic log (Config.Output), nil when silenced
	queue *queue

	messages text.Cache // masked and capped messages, by raw message
	crumbs   crumbTable // breadcrumbs kept by request context (crumbs.go)

	sources sourceCache // source context read (sourcecontext.go)

	alerts   *alerts
	flushReq chan flushRequest
	base     context.Context // cancelled by Close: ends every database call
	cancel   context.CancelFunc
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
	once     sync.Once
	closeErr error

	ignorePanicLogged atomic.Bool // a panic of Config.Ignore was logged

	logMu          sync.Mutex
	failingSince   time.Time
	lastFailureLog time.Time

	stats struct {
		recorded, stored, dropped, failedFlushes atomic.Int64
		pruned                                   atomic.Int64
		ignored, clientGone                      atomic.Int64
		alertsSent, alertsFailed                 atomic.Int64
	}
}

// New fills the defaults of cfg, validates it, and creates errmon's tables
// in cfg.DB (app_errors, app_error_occurrences, app_error_hourly,
// app_error_writes, app_error_sources, app_error_events, app_error_users).
// An invalid Config is a *[ConfigError] (several are joined) naming the
// APP_ERROR_* key at fault.
//
// New keeps a deep copy of cfg: changing the caller's slices (MaskedKeyHas,
// RecipientEmail, NotifyThresholds, IgnoreErrors, IgnoreStatus) afterwards
// changes nothing.
//
// New also registers on cfg.DB the GORM callbacks of SQL breadcrumbs,
// idle until db.Use(m.GormPlugin()) turns them on (see
// [Monitor.GormPlugin]).
func New(cfg Config) (*Monitor, error) {
	cfg = cfg.clone().withDefaults()
	if err := cfg.validate(true); err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	m := &Monitor{
		cfg:      cfg,
		store:    store.New(cfg.DB),
		mask:     text.NewMasker(cfg.MaskedKeyHas, cfg.MaskWith, !cfg.DisableBuiltinMasking),
		log:      cfg.Logger,
		out:      newOutputLogger(cfg),
		queue:    &queue{pending: make(map[string]*pending), max: cfg.MaxPending},
		flushReq: make(chan flushRequest),
		base:     base,
		cancel:   cancel,
		stop:     make(chan struct{}),
	}
	m.alerts = &alerts{m: m, jobs: make(chan alertJob, alertQueueSize), log: cfg.Logger}
	ctx, cancelMigrate := context.WithTimeout(base, time.Minute)
	defer cancelMigrate()
	if err := m.store.Migrate(ctx); err != nil {
		cancel()
		return nil, err
	}
	setupGormCrumbs(cfg.DB, cfg.Logger) // before errmon's goroutines use cfg.DB (gormplugin.go)
	m.wg.Add(2)
	go m.writer()
	go m.alerts.run()
	publish(m)
	return m, nil
}

// Config returns a copy of the monitor's configuration, defaults filled
// (ViewPermission stays nil when the default permission is in use). Its
// slices are copies too: changing them does not change the monitor.
func (m *Monitor) Config() Config { return m.cfg.clone() }

// Record records err as an error of the request c, as flask-error-monitor's
// record_exception does. c may be nil outside a request. Errors that carry
// their own stack (github.com/pkg/errors and the like) group by it; others
// group by type, normalized message, method and route. Record never blocks
// on the database.
func (m *Monitor) Record(c *gin.Context, err error) {
	if err == nil || m == nil {
		return
	}
	m.record(c, KindRecord, err, errorFrames(err), callerFrames(2))
	markRecorded(c, err)
}

// record captures and queues one occurrence; a panic in errmon's own code
// or in the ContextBuilder never reaches the caller.
func (m *Monitor) record(c *gin.Context, kind Kind, v any, frames, extra []Frame) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("errmon: internal panic while recording an error", "panic", m.maskCap(messageOf(r), 1024))
		}
	}()
	if m.ignoredValue(c, v) {
		return
	}
	if m.closed.Load() {
		m.queue.add(&Occurrence{}) // counted as dropped
		return
	}
	o := m.capture(c, kind, v, frames, extra)
	if m.cfg.Ignore != nil && m.ignoredBy(o) {
		m.stats.ignored.Add(1)
		return
	}
	m.stats.recorded.Add(1)
	m.queue.add(o) // a full queue counts what it drops
	noteErrorID(c, o.Hash)
}

// ignoredValue reports whether v is an error the ignore rules keep out,
// counting it: a client-gone error (unless Config.RecordClientGone), then
// one of Config.IgnoreErrors.
func (m *Monitor) ignoredValue(c *gin.Context, v any) bool {
	err, ok := v.(error)
	if !ok {
		return false
	}
	if !m.cfg.RecordClientGone && clientGone(c, err) {
		m.stats.clientGone.Add(1)
		return true
	}
	for _, target := range m.cfg.IgnoreErrors {
		if errors.Is(err, target) {
			m.stats.ignored.Add(1)
			return true
		}
	}
	return false
}

// clientGone reports whether err is a cancellation (context.Canceled or
// context.DeadlineExceeded) while the request's own context is done.
func clientGone(c *gin.Context, err error) bool {
	if c == nil || c.Request == nil || c.Request.Context().Err() == nil {
		return false
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ignoredBy asks Config.Ignore about o; a panic in it counts as false and
// is logged once per monitor.
func (m *Monitor) ignoredBy(o *Occurrence) (ignore bool) {
	defer func() {
		if r := recover(); r != nil {
			ignore = false
			if m.ignorePanicLogged.CompareAndSwap(false, true) {
				m.log.Error("errmon: Config.Ignore panicked; the occurrence is recorded (logged once)",
					"panic", m.maskCap(messageOf(r), 1024))
			}
		}
	}()
	return m.cfg.Ignore(o)
}

// errorIDHeader is the response header that carries the short id of the
// error a failed request recorded (see [ErrorID]).
const errorIDHeader = "X-Errmon-Id"

// errorIDLen is how many hex digits of the fingerprint make the short id:
// 48 bits, unique among any realistic number of errors.
const errorIDLen = 12

// errorIDKey holds, in a request's gin.Context, the short id of the last
// error recorded for it.
const errorIDKey = "github.com/errmon/errmon.errorid"

// noteErrorID keeps the short id of a recorded error in c, and in the
// response's errorIDHeader while the response is not written yet.
func noteErrorID(c *gin.Context, hash string) {
	if c == nil || len(hash) < errorIDLen {
		return
	}
	id := hash[:errorIDLen]
	c.Set(errorIDKey, id)
	if c.Writer != nil && !c.Writer.Written() {
		c.Header(errorIDHeader, id)
	}
}

// ErrorID returns the short id of the last error recorded for the request
// c (the first 12 hex digits of its fingerprint, also sent in the
// X-Errmon-Id response header while the response was not written yet), or
// "" when none was. A custom RecoveryHandler can show it on its error
// page, so that support finds the exact error from a customer's
// screenshot: the dashboard takes it at {URLPrefix}/{id}.
func ErrorID(c *gin.Context) string {
	if c == nil {
		return ""
	}
	return c.GetString(errorIDKey)
}

// Stats is a snapshot of a monitor's counters. The same counters, summed
// over the open monitors of the process with "Monitors" (how many are
// open), are published with the standard library's expvar under the name
// "errmon", for any metrics agent that reads expvar.
type Stats struct {
	Recorded        int64 // occurrences captured
	Stored          int64 // occurrences written to the database
	Pending         int64 // occurrences waiting in memory to be written
	PendingErrors   int   // distinct errors waiting
	Dropped         int64 // occurrences lost: the pending set was full, the monitor closed, or the database rejected them
	FailedFlushes   int64 // flushes that could not store everything
	AlertsSent      int64
	AlertsFailed    int64 // alerts and tickets given up after retries
	AlertsDiscarded int64 // alerts dropped because their queue was full
	AlertsSkipped   int64 // alerts and tickets dropped without a call: their Notifier or Ticketing was still blocked in an abandoned call
	Pruned          int64 // errors deleted by retention (Config.RetentionDays, Config.MaxErrors)
	Ignored         int64 // occurrences not recorded by Config.IgnoreErrors, IgnoreStatus or Ignore
	ClientGone      int64 // cancellations of requests whose context was done, not recorded (Config.RecordClientGone)
}

// Stats returns the monitor's counters.
func (m *Monitor) Stats() Stats {
	pendingOcc, pendingErrs, dropped := m.queue.size()
	m.alerts.mu.Lock()
	discarded := m.alerts.dropped
	m.alerts.mu.Unlock()
	return Stats{
		Recorded:        m.stats.recorded.Load(),
		Stored:          m.stats.stored.Load(),
		Pending:         pendingOcc,
		PendingErrors:   pendingErrs,
		Dropped:         dropped + m.stats.dropped.Load(),
		FailedFlushes:   m.stats.failedFlushes.Load(),
		AlertsSent:      m.stats.alertsSent.Load(),
		AlertsFailed:    m.stats.alertsFailed.Load(),
		AlertsDiscarded: discarded,
		AlertsSkipped:   m.alerts.skipped.Load(),
		Pruned:          m.stats.pruned.Load(),
		Ignored:         m.stats.ignored.Load(),
		ClientGone:      m.stats.clientGone.Load(),
	}
}

// Close flushes what is pending, waiting at most Config.CloseTimeout
// (default 5s), then stops the monitor's goroutines. It never hangs on a
// dead database or mail server: what could not be stored or delivered by
// then is logged and reported in the error. Close is idempotent; after it,
// errors are dropped and counted.
func (m *Monitor) Close() error {
	m.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CloseTimeout)
		defer cancel()
		// Close the queue first: what is recorded from now on is dropped and
		// counted, and everything recorded before is in the final flush.
		m.queue.mu.Lock()
		m.queue.closed = true
		m.queue.mu.Unlock()
		flushErr := m.Flush(ctx)
		m.closed.Store(true)
		close(m.stop)
		m.cancel()
		m.wg.Wait()
		if Default() == m {
			defaultMonitor.CompareAndSwap(m, nil)
		}
		unpublish(m)
		occ, errs, _ := m.queue.size()
		if occ > 0 || flushErr != nil {
			err := fmt.Errorf("errmon: close: %d occurrences of %d errors not stored", occ, errs)
			if flushErr != nil {
				err = fmt.Errorf("%w: %w", err, flushErr)
			}
			m.log.Error("errmon: closed with errors not stored", "occurrences", occ, "errors", errs, "err", flushErr)
			m.closeErr = err
		}
	})
	return m.closeErr
}

// The default monitor serves the package-level Middleware, Track and
// Record, the design card's one-liners. It is the only global state.
var defaultMonitor atomic.Pointer[Monitor]

// Default returns the default monitor, or nil when none is set.
func Default() *Monitor { return defaultMonitor.Load() }

// SetDefault makes m the default monitor used by the package-level
// [Track], [Record], [Go] and [Recover]. [Middleware] calls it. Close the
// default monitor as any other when the service stops
// (errmon.Default().Close()); closing it unsets it.
func SetDefault(m *Monitor) { defaultMonitor.Store(m) }

// Middleware creates a monitor from cfg, makes it the default, and returns
// its middleware. Called again with the same Config.DB while the default
// monitor of that database is open, it returns that monitor's middleware
// rather than a second monitor. It panics if cfg is invalid, like
// regexp.MustCompile: use [New] to handle the error. Stop the monitor with
// errmon.Default().Close().
func Middleware(cfg Config) gin.HandlerFunc {
	if d := Default(); d != nil && cfg.DB != nil && d.cfg.DB == cfg.DB && !d.closed.Load() {
		return d.Middleware()
	}
	m, err := New(cfg)
	if err != nil {
		panic(err)
	}
	SetDefault(m)
	return m.Middleware()
}

// Track wraps h so that its panics and errors are recorded (see
// [Monitor.Track]) by the monitor whose middleware serves the request, else
// by the default monitor. With neither, h runs as it is, and the first
// error it would have recorded is logged as dropped.
func Track(h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if m := monitorOf(c); m != nil {
			m.trackCall(h, c)
			return
		}
		h(c)
		if len(c.Errors) > 0 {
			noDefault()
		}
	}
}

// Record records err (see [Monitor.Record]) with the monitor whose
// middleware serves c's request, else with the default monitor; with
// neither, the error is dropped and the first drop is logged (with
// slog.Default()). c may be nil outside a request.
func Record(c *gin.Context, err error) {
	if err == nil {
		return
	}
	m := monitorOf(c)
	if m == nil {
		noDefault()
		return
	}
	m.record(c, KindRecord, err, errorFrames(err), callerFrames(2))
	markRecorded(c, err)
}

// monitorKey is the gin.Context key under which a monitor's middleware
// leaves itself for the package-level Record and Track, when it is not the
// default monitor.
type monitorKey struct{}

// monitorOf returns the monitor of c's request: the one whose middleware
// serves it, else the default monitor (nil when there is none).
func monitorOf(c *gin.Context) *Monitor {
	if c != nil {
		if v, ok := c.Get(monitorKey{}); ok {
			if m, ok := v.(*Monitor); ok {
				return m
			}
		}
	}
	return Default()
}

// noDefaultLogged says whether a drop for want of a default monitor was
// logged: once per process is enough to say what is wrong.
var noDefaultLogged atomic.Bool

// noDefault logs, once, that a package-level call found no default monitor.
func noDefault() {
	if noDefaultLogged.CompareAndSwap(false, true) {
		slog.Default().Error("errmon: an error was recorded with no default monitor and is dropped; " +
			"create one with errmon.Middleware(cfg) or errmon.SetDefault(m), or call m.Record")
	}
}

// InitApp installs the middleware on e and mounts the dashboard under
// Config.URLPrefix. Call it before registering the app's routes: gin
// applies a middleware only to the routes added after it (e.Use), so the
// routes registered earlier would not be monitored.
func (m *Monitor) InitApp(e *gin.Engine) {
	e.Use(m.Middleware())
	m.RegisterRoutes(e)
}

func defaultRecoveryHandler(c *gin.Context, _ any) {
	c.AbortWithStatus(http.StatusInternalServerError)
}
