package errmon

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/errmon/errmon/internal/store"
	"gorm.io/gorm"
)

// GormPlugin returns a GORM plugin that keeps SQL breadcrumbs:
//
//	db.Use(m.GormPlugin())
//	db.WithContext(c).Find(&users) // c the *gin.Context, or c.Request.Context()
//
// Every statement run with a request's context (the gin.Context or a
// context derived from it, or the request's own c.Request.Context()) is
// kept as a breadcrumb of that request: its SQL, with placeholders for
// its parameters and every literal written in it (never a value; comments
// dropped), its duration, the rows it returned or changed and its error
// (masked, quoted values replaced). If the request fails, its last 32
// breadcrumbs (log records of [Monitor.SlogHandler] included) are stored
// with the occurrence. A statement without a request's context costs a
// context lookup and allocates nothing; errmon's own statements (run by
// its store, or on its tables) are never kept.
//
// GORM forbids adding callbacks to a *gorm.DB in use, and errmon uses
// Config.DB from [New] on: so New registers the callbacks on Config.DB
// (and its sessions) itself, idle (an atomic load per statement) until
// db.Use(m.GormPlugin()) turns them on for m. On another *gorm.DB, Use
// registers them, before that DB is in use as GORM requires. Each
// monitor's plugin has a name of its own.
func (m *Monitor) GormPlugin() gorm.Plugin { return gormPlugin{m: m} }

// gormPlugin is the plugin GormPlugin returns.
type gormPlugin struct{ m *Monitor }

// Name implements gorm.Plugin.
func (p gormPlugin) Name() string { return fmt.Sprintf("errmon:breadcrumbs:%p", p.m) }

// Initialize implements gorm.Plugin: it turns the breadcrumb callbacks of
// db on for the monitor, registering them first on a DB errmon does not
// use itself.
func (p gormPlugin) Initialize(db *gorm.DB) error {
	g, ok := db.Plugins[gormCrumbsName].(*gormCrumbs)
	if !ok {
		if p.m.cfg.DB != nil && db.Callback() == p.m.cfg.DB.Callback() {
			return errors.New("errmon: GormPlugin: the breadcrumb callbacks are missing from Config.DB (New could not register them: see its log)")
		}
		g = &gormCrumbs{}
		if err := db.Use(g); err != nil {
			return fmt.Errorf("errmon: GormPlugin: %w", err)
		}
	}
	g.add(p.m)
	return nil
}

// gormCrumbsName is the name of the breadcrumb callbacks in a *gorm.DB's
// Plugins.
const gormCrumbsName = "errmon:breadcrumbs"

// gormCrumbs is the breadcrumb callbacks of one *gorm.DB (and of its
// sessions, which share its callbacks), registered once, and the monitors
// whose GormPlugin turned them on.
type gormCrumbs struct {
	monitors atomic.Pointer[[]*Monitor]
}

// setupGormCrumbs registers the breadcrumb callbacks on db unless they are
// there: New does it before its goroutines use db.
func setupGormCrumbs(db *gorm.DB, log *slog.Logger) {
	if _, ok := db.Plugins[gormCrumbsName]; ok {
		return
	}
	if err := db.Use(&gormCrumbs{}); err != nil {
		log.Warn("errmon: could not register the GORM callbacks of SQL breadcrumbs; GormPlugin will fail", "err", err)
	}
}

// Name implements gorm.Plugin.
func (g *gormCrumbs) Name() string { return gormCrumbsName }

// Initialize implements gorm.Plugin: it registers a callback before and
// after GORM's own for create, query, update, delete, row and raw.
func (g *gormCrumbs) Initialize(db *gorm.DB) error {
	cb, name := db.Callback(), gormCrumbsName
	err := errors.Join(
		cb.Create().Before("gorm:create").Register(name+":before_create", g.before),
		cb.Create().After("gorm:create").Register(name+":after_create", g.after),
		cb.Query().Before("gorm:query").Register(name+":before_query", g.before),
		cb.Query().After("gorm:query").Register(name+":after_query", g.after),
		cb.Update().Before("gorm:update").Register(name+":before_update", g.before),
		cb.Update().After("gorm:update").Register(name+":after_update", g.after),
		cb.Delete().Before("gorm:delete").Register(name+":before_delete", g.before),
		cb.Delete().After("gorm:delete").Register(name+":after_delete", g.after),
		cb.Row().Before("gorm:row").Register(name+":before_row", g.before),
		cb.Row().After("gorm:row").Register(name+":after_row", g.after),
		cb.Raw().Before("gorm:raw").Register(name+":before_raw", g.before),
		cb.Raw().After("gorm:raw").Register(name+":after_raw", g.after),
	)
	if err != nil {
		return fmt.Errorf("register the breadcrumb callbacks: %w", err)
	}
	return nil
}

// add turns the callbacks on for m, and off for the monitors closed since.
func (g *gormCrumbs) add(m *Monitor) {
	for {
		old := g.monitors.Load()
		next := []*Monitor{m}
		if old != nil {
			for _, o := range *old {
				if o != m && !o.closed.Load() {
					next = append(next, o)
				}
			}
		}
		if g.monitors.CompareAndSwap(old, &next) {
			return
		}
	}
}

// drop turns the callbacks off for the closed monitors.
func (g *gormCrumbs) drop() {
	for {
		old := g.monitors.Load()
		if old == nil {
			return
		}
		var next []*Monitor
		for _, o := range *old {
			if !o.closed.Load() {
				next = append(next, o)
			}
		}
		if g.monitors.CompareAndSwap(old, &next) {
			return
		}
	}
}

// pendingStatement is a statement being run for a request: its ring and
// when it started.
type pendingStatement struct {
	ring  *crumbRing
	start time.Time
}

// pendingKey is the Statement.Settings key of a pendingStatement.
type pendingKey struct{ m *Monitor }

// own reports whether tx is errmon's own statement: run by its store, or
// on one of its tables.
func own(tx *gorm.DB) bool {
	if _, ok := tx.Statement.Settings.Load(store.OwnStatement); ok {
		return true
	}
	return strings.HasPrefix(tx.Statement.Table, "app_error")
}

// before notes when a statement of a request starts, for each monitor
// the callbacks are on for.
func (g *gormCrumbs) before(tx *gorm.DB) {
	ms := g.monitors.Load()
	if ms == nil || len(*ms) == 0 {
		return
	}
	defer recovered((*ms)[0])
	st := tx.Statement
	// The context first: a statement outside a request leaves its
	// Settings untouched (a first use allocates).
	if st == nil || st.DryRun || !inRequest(st.Context) || own(tx) {
		return
	}
	for _, m := range *ms {
		if m.closed.Load() {
			g.drop()
			continue
		}
		if ring := m.crumbRing(st.Context, true); ring != nil {
			st.Settings.Store(pendingKey{m}, &pendingStatement{ring: ring, start: time.Now()})
		}
	}
}

// after keeps the statement that before noted as a breadcrumb.
func (g *gormCrumbs) after(tx *gorm.DB) {
	ms := g.monitors.Load()
	if ms == nil || len(*ms) == 0 {
		return
	}
	defer recovered((*ms)[0])
	st := tx.Statement
	if st == nil || !inRequest(st.Context) {
		return
	}
	for _, m := range *ms {
		v, ok := st.Settings.LoadAndDelete(pendingKey{m})
		if !ok {
			continue
		}
		ps, _ := v.(*pendingStatement)
		if ps == nil {
			continue
		}
		cr := crumb{t: ps.start, sql: true, msg: st.SQL.String(), dur: time.Since(ps.start), rows: tx.RowsAffected}
		if tx.Dialector != nil {
			cr.mysql = tx.Dialector.Name() == "mysql"
		}
		if tx.Error != nil {
			cr.err = capText(tx.Error.Error(), 2*crumbTextBytes)
		}
		ps.ring.add(cr)
	}
}

// recovered keeps a panic of the callbacks from reaching the
// application; m logs it.
func recovered(m *Monitor) {
	if r := recover(); r != nil {
		m.log.Error("errmon: internal panic in the GORM breadcrumb callbacks", "panic", m.maskCap(messageOf(r), 1024))
	}
}
