package errmon

import (
	"errors"
	"fmt"
	"strings"
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
// context lookup; errmon's own statements (on its tables, or run by its
// store) are never kept.
//
// Its name is unique to the monitor, so that each monitor can have its
// own on one *gorm.DB.
func (m *Monitor) GormPlugin() gorm.Plugin { return gormPlugin{m: m} }

// gormPlugin is the plugin GormPlugin returns.
type gormPlugin struct{ m *Monitor }

// Name implements gorm.Plugin.
func (p gormPlugin) Name() string { return fmt.Sprintf("errmon:breadcrumbs:%p", p.m) }

// Initialize implements gorm.Plugin: it registers a callback before and
// after GORM's own for create, query, update, delete, row and raw.
func (p gormPlugin) Initialize(db *gorm.DB) error {
	cb, name := db.Callback(), p.Name()
	err := errors.Join(
		cb.Create().Before("gorm:create").Register(name+":before_create", p.before),
		cb.Create().After("gorm:create").Register(name+":after_create", p.after),
		cb.Query().Before("gorm:query").Register(name+":before_query", p.before),
		cb.Query().After("gorm:query").Register(name+":after_query", p.after),
		cb.Update().Before("gorm:update").Register(name+":before_update", p.before),
		cb.Update().After("gorm:update").Register(name+":after_update", p.after),
		cb.Delete().Before("gorm:delete").Register(name+":before_delete", p.before),
		cb.Delete().After("gorm:delete").Register(name+":after_delete", p.after),
		cb.Row().Before("gorm:row").Register(name+":before_row", p.before),
		cb.Row().After("gorm:row").Register(name+":after_row", p.after),
		cb.Raw().Before("gorm:raw").Register(name+":before_raw", p.before),
		cb.Raw().After("gorm:raw").Register(name+":after_raw", p.after),
	)
	if err != nil {
		return fmt.Errorf("errmon: GormPlugin: %w", err)
	}
	return nil
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

// before notes when a statement of a request starts.
func (p gormPlugin) before(tx *gorm.DB) {
	defer p.recovered()
	st := tx.Statement
	// The context first: a statement outside a request leaves its
	// Settings untouched (a first use allocates).
	if st == nil || st.DryRun || !inRequest(st.Context) || own(tx) {
		return
	}
	if ring := p.m.crumbRing(st.Context, true); ring != nil {
		st.Settings.Store(pendingKey{p.m}, &pendingStatement{ring: ring, start: time.Now()})
	}
}

// after keeps the statement that before noted as a breadcrumb.
func (p gormPlugin) after(tx *gorm.DB) {
	defer p.recovered()
	st := tx.Statement
	if st == nil || !inRequest(st.Context) {
		return
	}
	v, ok := st.Settings.LoadAndDelete(pendingKey{p.m})
	if !ok {
		return
	}
	ps, _ := v.(*pendingStatement)
	if ps == nil {
		return
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

// recovered keeps a panic of the plugin from reaching the application.
func (p gormPlugin) recovered() {
	if r := recover(); r != nil {
		p.m.log.Error("errmon: internal panic in the GORM plugin", "panic", p.m.maskCap(messageOf(r), 1024))
	}
}
