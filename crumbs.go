package errmon

// Breadcrumbs: the log records (SlogHandler) and SQL statements
// (GormPlugin) of a request, kept in memory while it runs and stored with
// its occurrence if it fails. Nothing is kept, and nothing allocated, for
// a request that neither logs nor queries through them.

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// Bounds of the breadcrumbs.
const (
	maxCrumbs        = 32       // kept per request: the last ones
	crumbTextBytes   = 1 << 10  // a message, an attribute's string, an error
	crumbSQLBytes    = 2 << 10  // the SQL of a statement
	crumbAttrsBudget = 2 << 10  // one record's attributes, as JSON before masking
	crumbsShare      = 16 << 10 // an occurrence's breadcrumbs, as stored JSON
	// maxCrumbRequests bounds the requests whose breadcrumbs are kept by
	// their request context (c.Request.Context()) at once.
	maxCrumbRequests = 4096
)

// crumb is one breadcrumb: a log record or a SQL statement.
type crumb struct {
	t     time.Time
	level slog.Level
	sql   bool
	msg   string // the log message, or the statement's SQL (placeholders, never values)
	// A log record's attributes: the record itself (cloned) and the
	// handler's WithAttrs and WithGroup while they hold only scalars,
	// decoded once stored; else their tree, built (and cut) when logged,
	// since a value of any other kind may change after the log call.
	rec   slog.Record
	added []slogAdded
	attrs map[string]any
	// A statement's duration, rows (-1: unknown) and error.
	dur   time.Duration
	rows  int64
	err   string
	mysql bool // the statement's dialect quotes strings with "
}

// crumbRing holds the last maxCrumbs breadcrumbs of one request. The
// goroutines of a request may log at once: it has its own lock.
type crumbRing struct {
	mu    sync.Mutex
	items []crumb // in order until full; then items[next] is the oldest
	next  int
	total int // breadcrumbs added in all
}

// add keeps cr, in place of the oldest once the ring is full.
func (r *crumbRing) add(cr crumb) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if len(r.items) < maxCrumbs {
		if len(r.items) == cap(r.items) { // room for 4, then for all 32
			grown := make([]crumb, len(r.items), min(max(4, 8*cap(r.items)), maxCrumbs))
			copy(grown, r.items)
			r.items = grown
		}
		r.items = append(r.items, cr)
		return
	}
	r.items[r.next] = cr
	r.next = (r.next + 1) % maxCrumbs
}

// snapshot returns a copy of the breadcrumbs, oldest first, and how many
// were added in all.
func (r *crumbRing) snapshot() ([]crumb, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]crumb, 0, len(r.items))
	out = append(out, r.items[r.next:]...)
	out = append(out, r.items[:r.next]...)
	return out, r.total
}

// crumbsKey is the gin.Context key of a monitor's breadcrumb ring.
type crumbsKey struct{ m *Monitor }

// crumbTable holds the rings of requests whose breadcrumbs came with the
// request's own context (c.Request.Context()), which cannot reach back to
// the gin.Context: by that context, until it is done (net/http cancels it
// once the request is served).
type crumbTable struct {
	rings sync.Map // context.Context → *crumbRing
	n     atomic.Int64
}

// ginContextOf returns the gin.Context that ctx is or derives from, or nil.
func ginContextOf(ctx context.Context) *gin.Context {
	if c, ok := ctx.(*gin.Context); ok {
		return c
	}
	c, _ := ctx.Value(gin.ContextKey).(*gin.Context)
	return c
}

// serverContext reports whether ctx can key a crumbTable: a context of a
// request that net/http's server serves, held by pointer.
func serverContext(ctx context.Context) bool {
	return reflect.TypeOf(ctx).Kind() == reflect.Pointer && ctx.Value(http.ServerContextKey) != nil
}

// inRequest reports whether breadcrumbs written with ctx would be kept.
func inRequest(ctx context.Context) bool {
	return ctx != nil && (ginContextOf(ctx) != nil || serverContext(ctx))
}

// crumbRing returns m's breadcrumb ring of the request ctx belongs to,
// made on the first breadcrumb when create is set; nil when ctx is no
// request's. A ring made by two goroutines of one request at once keeps
// one of them.
func (m *Monitor) crumbRing(ctx context.Context, create bool) *crumbRing {
	if ctx == nil {
		return nil
	}
	if c := ginContextOf(ctx); c != nil {
		key := crumbsKey{m}
		if v, ok := c.Get(key); ok {
			r, _ := v.(*crumbRing)
			return r
		}
		if !create {
			return nil
		}
		r := new(crumbRing)
		c.Set(key, r)
		return r
	}
	return m.crumbs.ring(ctx, create)
}

// ring returns the ring kept for the request context ctx, made when create
// is set (and fewer than maxCrumbRequests are kept).
func (t *crumbTable) ring(ctx context.Context, create bool) *crumbRing {
	if !create && t.n.Load() == 0 {
		return nil
	}
	if !serverContext(ctx) {
		return nil
	}
	if v, ok := t.rings.Load(ctx); ok {
		return v.(*crumbRing)
	}
	if !create || t.n.Load() >= maxCrumbRequests || ctx.Done() == nil || ctx.Err() != nil {
		return nil
	}
	r := new(crumbRing)
	if v, loaded := t.rings.LoadOrStore(ctx, r); loaded {
		return v.(*crumbRing)
	}
	t.n.Add(1)
	context.AfterFunc(ctx, func() {
		t.rings.Delete(ctx)
		t.n.Add(-1)
	})
	return r
}

// requestCrumbs returns m's breadcrumbs of the request c, oldest first,
// the last maxCrumbs of them, and how many older ones were dropped.
func (m *Monitor) requestCrumbs(c *gin.Context) ([]crumb, int) {
	var items []crumb
	total := 0
	if v, ok := c.Get(crumbsKey{m}); ok {
		if r, ok := v.(*crumbRing); ok {
			items, total = r.snapshot()
		}
	}
	if c.Request != nil {
		if r := m.crumbs.ring(c.Request.Context(), false); r != nil {
			more, n := r.snapshot()
			total += n
			if len(items) == 0 {
				items = more
			} else {
				items = append(items, more...)
				slices.SortStableFunc(items, func(a, b crumb) int { return a.t.Compare(b.t) })
			}
		}
	}
	if len(items) > maxCrumbs {
		items = items[len(items)-maxCrumbs:]
	}
	return items, total - len(items)
}

// requestCrumbMembers encodes the breadcrumbs of the request c as
// crumbMembers does, each string cleared of the request's secret values
// too; "" without any (or if encoding them panicked: the error is
// recorded all the same).
func (m *Monitor) requestCrumbMembers(c *gin.Context) (members string) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("errmon: internal panic while encoding breadcrumbs", "panic", m.maskCap(messageOf(r), 1024))
			members = ""
		}
	}()
	items, dropped := m.requestCrumbs(c)
	if len(items) == 0 {
		return ""
	}
	var secrets []string
	if c.Request != nil {
		secrets = requestSecrets(c, m.monitorMask())
	}
	return m.crumbMembers(items, dropped, func(s string) string { return hideValues(s, secrets, m.mask.With) })
}

// crumbMembers encodes breadcrumbs (oldest first) as the members of a
// stored context: `"breadcrumbs":[...]`, and `"breadcrumbs_dropped":N`
// when older ones were left out. Each is masked (hide also runs on every
// string but the SQL); they take at most crumbsShare bytes, the newest
// first: one that does not fit is left out and counted. "" when there are
// none.
func (m *Monitor) crumbMembers(items []crumb, dropped int, hide func(string) string) string {
	if len(items) == 0 {
		return ""
	}
	enc := make([][]byte, 0, len(items))
	used := len(`"breadcrumbs":[],"breadcrumbs_dropped":99999`)
	for i := len(items) - 1; i >= 0; i-- {
		b := m.encodeCrumb(&items[i], hide)
		if used+len(b)+1 > crumbsShare {
			dropped++
			continue
		}
		used += len(b) + 1
		enc = append(enc, b)
	}
	slices.Reverse(enc)
	var sb strings.Builder
	sb.Grow(used)
	sb.WriteString(`"breadcrumbs":[`)
	for i, b := range enc {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.Write(b)
	}
	sb.WriteByte(']')
	if dropped > 0 {
		fmt.Fprintf(&sb, `,"breadcrumbs_dropped":%d`, dropped)
	}
	return sb.String()
}

// encodeCrumb encodes one breadcrumb as a JSON object: {"t", "level",
// "message", "attrs"} for a log record, {"t", "level": "SQL", "sql",
// "ms", "rows", "error"} for a statement.
func (m *Monitor) encodeCrumb(cr *crumb, hide func(string) string) []byte {
	leaf := func(s string) string { return hide(m.maskCap(s, crumbTextBytes)) }
	out := map[string]any{"t": cr.t.UTC().Format(time.RFC3339Nano)}
	if cr.sql {
		out["level"] = "SQL"
		out["sql"] = cutSQL(cr.msg, cr.mysql)
		out["ms"] = math.Round(float64(cr.dur)/float64(time.Microsecond)) / 1000
		if cr.rows >= 0 {
			out["rows"] = cr.rows
		}
		if cr.err != "" {
			out["error"] = leaf(scrubQuoted(cr.err))
		}
	} else {
		out["level"] = cr.level.String()
		out["message"] = leaf(cr.msg)
		attrs := cr.attrs
		if attrs == nil {
			attrs = errorsAsText(logAttrs(cr.added, cr.rec))
		}
		if len(attrs) > 0 {
			cut := (&cutter{left: crumbAttrsBudget, key: m.mask.Text}).value(attrs, 1)
			out["attrs"] = text.Tree(cut, m.mask.Key, m.mask.With, leaf)
		}
	}
	b, err := text.MarshalJSON(out)
	if err != nil {
		b, _ = text.MarshalJSON(map[string]any{"t": out["t"], "level": out["level"], "message": "[the breadcrumb could not be encoded]"})
	}
	return b
}

// spliceMembers adds members (JSON object members, "" for none) to the
// encoded object obj, replacing nothing: the caller leaves their keys out
// of obj.
func spliceMembers(obj []byte, members string) []byte {
	if members == "" {
		return obj
	}
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return []byte("{" + members + "}")
	}
	out := make([]byte, 0, len(obj)+len(members)+1)
	out = append(out, obj[:len(obj)-1]...)
	if len(obj) > 2 {
		out = append(out, ',')
	}
	out = append(out, members...)
	return append(out, '}')
}

// addLogCrumb keeps the record r, written with ctx, as a breadcrumb of
// ctx's request, if ctx is one's. It never panics.
func (m *Monitor) addLogCrumb(ctx context.Context, added []slogAdded, r slog.Record) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("errmon: internal panic while keeping a breadcrumb", "panic", m.maskCap(messageOf(p), 1024))
		}
	}()
	ring := m.crumbRing(ctx, true)
	if ring == nil {
		return
	}
	cr := crumb{t: r.Time, level: r.Level, msg: r.Message}
	if cr.t.IsZero() {
		cr.t = time.Now()
	}
	if len(cr.msg) > 2*crumbTextBytes {
		cr.msg = capText(cr.msg, 2*crumbTextBytes) // masked and cut again when stored
	}
	if scalarAttrs(added, r) {
		cr.rec, cr.added = r.Clone(), added
	} else {
		tree := (&cutter{left: crumbAttrsBudget}).value(errorsAsText(logAttrs(added, r)), 1)
		cr.attrs, _ = tree.(map[string]any)
		if cr.attrs == nil {
			cr.attrs = map[string]any{}
		}
	}
	ring.add(cr)
}

// scalarAttrs reports whether the record's attributes and the handler's
// hold only values of the scalar kinds (strings, numbers, booleans, times,
// durations, groups of them), which do not change once logged.
func scalarAttrs(added []slogAdded, r slog.Record) bool {
	for _, a := range added {
		for _, at := range a.attrs {
			if !scalarValue(at.Value, 0) {
				return false
			}
		}
	}
	ok := true
	r.Attrs(func(at slog.Attr) bool {
		ok = scalarValue(at.Value, 0)
		return ok
	})
	return ok
}

func scalarValue(v slog.Value, depth int) bool {
	switch v.Kind() {
	case slog.KindAny, slog.KindLogValuer:
		return false
	case slog.KindGroup:
		if depth >= maxAttrDepth {
			return true // cut there
		}
		for _, a := range v.Group() {
			if !scalarValue(a.Value, depth+1) {
				return false
			}
		}
	}
	return true
}

// cutSQL is the SQL of a statement as stored: its literals replaced by ?
// (scrubSQL), at most crumbSQLBytes. Only the start of a long statement is
// read.
func cutSQL(sql string, mysql bool) string {
	if len(sql) > 2*crumbSQLBytes {
		return sanitizeOf(scrubSQL(sql[:2*crumbSQLBytes], mysql), crumbSQLBytes, len(sql))
	}
	return sanitize(scrubSQL(sql, mysql), crumbSQLBytes)
}

// scrubSQL replaces the literals of a SQL statement by ?: quoted strings
// ('...', with their E, N, X or B prefix; "..." too on MySQL, where they
// are strings), PostgreSQL's dollar-quoted strings and numbers; it drops
// comments. Identifiers ("...", `...`), keywords and placeholders
// (?, $1, :name, @p1) stay. A literal left open (a statement cut short)
// is replaced to the end.
func scrubSQL(sql string, mysql bool) string {
	out := make([]byte, 0, len(sql))
	last := func() byte {
		if len(out) == 0 {
			return ' '
		}
		return out[len(out)-1]
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		next := byte(0)
		if i+1 < len(sql) {
			next = sql[i+1]
		}
		switch {
		case c == '\'' || c == '"' && mysql:
			// A prefix letter (E'..', N'..', X'..', B'..') goes with it.
			if n := len(out); n > 0 && strings.IndexByte("EeNnXxBb", out[n-1]) >= 0 && (n == 1 || !identByte(out[n-2])) {
				out = out[:n-1]
			}
			i = quotedEnd(sql, i, c, true)
			out = append(out, '?')
		case c == '"' || c == '`':
			j := quotedEnd(sql, i, c, false)
			out = append(out, sql[i:j]...)
			i = j
		case c == '-' && next == '-', c == '#' && mysql:
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				j = len(sql) - i
			}
			i += j
			out = append(out, ' ')
		case c == '/' && next == '*':
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				i = len(sql)
			} else {
				i += j + 4
			}
			out = append(out, ' ')
		case c == '$' && !identByte(last()):
			j := i + 1
			for j < len(sql) && isDigit(sql[j]) {
				j++
			}
			if j > i+1 { // a placeholder: $1
				out = append(out, sql[i:j]...)
				i = j
				break
			}
			for j < len(sql) && wordByte(sql[j]) {
				j++
			}
			if j < len(sql) && sql[j] == '$' { // $tag$ ... $tag$
				tag := sql[i : j+1]
				if k := strings.Index(sql[j+1:], tag); k >= 0 {
					i = j + 1 + k + len(tag)
				} else {
					i = len(sql)
				}
				out = append(out, '?')
				break
			}
			out = append(out, '$')
			i++
		case isDigit(c) && !identByte(last()) || c == '.' && isDigit(next) && !identByte(last()):
			j := i + 1
			for j < len(sql) && (wordByte(sql[j]) || sql[j] == '.' ||
				(sql[j] == '+' || sql[j] == '-') && (sql[j-1] == 'e' || sql[j-1] == 'E') && !strings.ContainsAny(sql[i:j], "xX")) {
				j++
			}
			out = append(out, '?')
			i = j
		default:
			out = append(out, c)
			i++
		}
	}
	return string(out)
}

// scrubQuoted replaces the single-quoted strings of s (an error of the
// database, which may quote a value) by ?.
func scrubQuoted(s string) string {
	if strings.IndexByte(s, '\'') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			i++
			continue
		}
		i = quotedEnd(s, i, '\'', true)
		b.WriteByte('?')
	}
	return b.String()
}

// quotedEnd returns the index just past the quoted text that starts at
// s[i] (the quote q): a doubled quote escapes one, and so does a
// backslash when backslash is set; the whole rest when it is not closed.
// A string literal (replaced) is read with backslash escapes whatever the
// dialect, an identifier (kept) without: neither ever ends later than the
// database reads it.
func quotedEnd(s string, i int, q byte, backslash bool) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if backslash {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// wordByte reports whether c may be part of a word: a name or a number.
func wordByte(c byte) bool {
	return c == '_' || isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// identByte reports whether c may be part of an identifier or a
// placeholder's name.
func identByte(c byte) bool { return wordByte(c) || c == '$' || c == '@' || c == ':' }
