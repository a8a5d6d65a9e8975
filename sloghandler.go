package errmon

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
)

// SlogHandler returns a [slog.Handler] that passes every record on to next
// unchanged (when next is enabled for its level; a nil next drops them)
// and records those at [slog.LevelError] and above as errors of kind
// "log":
//
//	slog.SetDefault(slog.New(m.SlogHandler(slog.Default().Handler())))
//	slog.Error("sync failed", "user", id, "err", err) // recorded
//
// An attribute holding an error (the first one, at any depth) is the
// recorded error: its type names it, and its own stack groups it when it
// carries one (github.com/pkg/errors and the like). Otherwise the record's
// message is the error, named after its level ("slog.ERROR"). Errors
// without a stack group by the log call's function (the record's PC),
// never its line. The record's message, level and attributes (with those
// of WithAttrs and WithGroup) are stored as the error's context, masked
// like request data. Records whose message starts with "errmon:" (errmon's
// own log lines) are passed on, never recorded.
//
// Breadcrumbs: a record written during a request with the request's
// context (slog.InfoContext(c, ...) with the *gin.Context or a context
// derived from it, or with c.Request.Context() itself) is kept as a
// breadcrumb of that request: the records next is enabled for and errors
// (with a nil next, those at slog.LevelInfo and above). If the request
// fails, its last 32 breadcrumbs (SQL statements of [Monitor.GormPlugin]
// included) are stored with the occurrence: time, level, message and
// attributes, each string cut to 1 KiB, masked like request data. A
// request that logs nothing this way pays nothing; one that does pays in
// its log calls.
func (m *Monitor) SlogHandler(next slog.Handler) slog.Handler {
	return &slogHandler{m: m, next: next}
}

// slogHandler is the handler SlogHandler returns. Its attributes and
// groups, in the order they were added, are kept for the stored context.
type slogHandler struct {
	m     *Monitor
	next  slog.Handler
	added []slogAdded
}

// slogAdded is one WithAttrs (attrs) or WithGroup (group) call.
type slogAdded struct {
	group string
	attrs []slog.Attr
}

// Enabled implements slog.Handler: errors are always wanted; with a nil
// next, so are records from slog.LevelInfo up written during a request
// (breadcrumbs).
func (h *slogHandler) Enabled(ctx context.Context, level slog.Level) bool {
	if h.next == nil {
		return level >= slog.LevelError || level >= slog.LevelInfo && inRequest(ctx)
	}
	return level >= slog.LevelError || h.next.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (h *slogHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	passed := h.next != nil && h.next.Enabled(ctx, r.Level)
	if passed {
		err = h.next.Handle(ctx, r)
	}
	if strings.HasPrefix(r.Message, "errmon:") {
		return err
	}
	if r.Level >= slog.LevelError {
		h.m.recordLog(ctx, h.added, r)
	}
	if ctx != nil && (passed || r.Level >= slog.LevelError || h.next == nil && r.Level >= slog.LevelInfo) {
		h.m.addLogCrumb(ctx, h.added, r)
	}
	return err
}

// WithAttrs implements slog.Handler.
func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	out := h.with(slogAdded{attrs: attrs})
	if h.next != nil {
		out.next = h.next.WithAttrs(attrs)
	}
	return out
}

// WithGroup implements slog.Handler.
func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	out := h.with(slogAdded{group: name})
	if h.next != nil {
		out.next = h.next.WithGroup(name)
	}
	return out
}

func (h *slogHandler) with(a slogAdded) *slogHandler {
	out := *h
	out.added = append(h.added[:len(h.added):len(h.added)], a)
	return &out
}

// logRecord is the error of a log record that holds none: its message.
type logRecord struct {
	msg   string
	level slog.Level
}

func (e *logRecord) Error() string { return e.msg }

// exceptionName names the error after its level, for exceptionName.
func (e *logRecord) exceptionName() string { return "slog." + e.level.String() }

// recordLog records one log record; like record, it never panics and never
// blocks on the database. The breadcrumbs written before it with ctx's
// request go with it.
func (m *Monitor) recordLog(ctx context.Context, added []slogAdded, r slog.Record) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("errmon: internal panic while recording a log record", "panic", m.maskCap(messageOf(p), 1024))
		}
	}()
	if m.closed.Load() {
		m.queue.add(&Occurrence{}) // counted as dropped
		return
	}
	attrs := logAttrs(added, r)
	var v any = &logRecord{msg: r.Message, level: r.Level}
	var frames []Frame
	if err := firstError(attrs); err != nil {
		if m.ignoredValue(nil, err) {
			return
		}
		v, frames = err, errorFrames(err)
	}
	var site []Frame
	if r.PC != 0 {
		site = pcsToFrames([]uintptr{r.PC})
	}
	if len(frames) == 0 {
		frames = site // grouped by the log call's function
	}
	o := m.capture(nil, KindLog, v, frames, site)
	o.RequestData = m.logContext(r, attrs, m.logCrumbs(ctx))
	if m.cfg.Ignore != nil && m.ignoredBy(o) {
		m.stats.ignored.Add(1)
		return
	}
	m.stats.recorded.Add(1)
	m.queue.add(o)
}

// logAttrs returns the record's attributes, with those added by WithAttrs
// and WithGroup, as one tree: a group is a map.
func logAttrs(added []slogAdded, r slog.Record) map[string]any {
	root := map[string]any{}
	cur := root
	for _, a := range added {
		if a.group != "" {
			sub := map[string]any{}
			cur[a.group] = sub
			cur = sub
			continue
		}
		for _, at := range a.attrs {
			addAttr(cur, at, 0)
		}
	}
	r.Attrs(func(at slog.Attr) bool {
		addAttr(cur, at, 0)
		return true
	})
	return root
}

// maxAttrDepth bounds the nesting of groups kept from a log record.
const maxAttrDepth = 16

// addAttr adds one attribute to dst: groups as maps, errors as themselves
// (for firstError; encoded as their text), times as RFC 3339, other
// values as their kind's Go value or text.
func addAttr(dst map[string]any, a slog.Attr, depth int) {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() != slog.KindGroup {
		return
	}
	switch v.Kind() {
	case slog.KindGroup:
		if depth >= maxAttrDepth {
			dst[a.Key] = "[deeper groups cut]"
			return
		}
		sub := dst
		if a.Key != "" { // an empty key inlines the group, as slog does
			sub = map[string]any{}
			dst[a.Key] = sub
		}
		for _, g := range v.Group() {
			addAttr(sub, g, depth+1)
		}
	case slog.KindString:
		dst[a.Key] = v.String()
	case slog.KindInt64:
		dst[a.Key] = v.Int64()
	case slog.KindUint64:
		dst[a.Key] = v.Uint64()
	case slog.KindFloat64:
		dst[a.Key] = v.Float64()
	case slog.KindBool:
		dst[a.Key] = v.Bool()
	case slog.KindDuration:
		dst[a.Key] = v.Duration().String()
	case slog.KindTime:
		dst[a.Key] = v.Time().UTC().Format(time.RFC3339Nano)
	default:
		if err, ok := v.Any().(error); ok {
			dst[a.Key] = logErr{err}
			return
		}
		dst[a.Key] = messageOf(v.Any())
	}
}

// logErr holds an error attribute until the context is encoded.
type logErr struct{ err error }

// firstError returns the first error attribute found, depth first in key
// order, or nil.
func firstError(attrs map[string]any) error {
	var found error
	var walk func(map[string]any)
	walk = func(m map[string]any) {
		for _, k := range sortedKeys(m) {
			if found != nil {
				return
			}
			switch x := m[k].(type) {
			case logErr:
				found = x.err
			case map[string]any:
				walk(x)
			}
		}
	}
	walk(attrs)
	return found
}

// logCrumbs encodes the breadcrumbs of ctx's request, as crumbMembers
// does ("" without any, or if encoding them panicked).
func (m *Monitor) logCrumbs(ctx context.Context) (members string) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("errmon: internal panic while encoding breadcrumbs", "panic", m.maskCap(messageOf(r), 1024))
			members = ""
		}
	}()
	if c := ginContextOf(ctx); c != nil {
		return m.requestCrumbMembers(c)
	}
	ring := m.crumbRing(ctx, false)
	if ring == nil {
		return ""
	}
	items, total := ring.snapshot()
	if len(items) == 0 {
		return ""
	}
	return m.crumbMembers(items, total-len(items), func(s string) string { return s })
}

// logContext encodes what is stored as the context of a log record's
// error: its level, message and attributes, masked like request data, and
// crumbs, the members that hold its request's breadcrumbs.
func (m *Monitor) logContext(r slog.Record, attrs map[string]any, crumbs string) string {
	plain := errorsAsText(attrs)
	masked := text.Tree(map[string]any{"log": map[string]any{
		"level":   r.Level.String(),
		"message": r.Message,
		"attrs":   plain,
	}}, m.mask.Key, m.mask.With, func(s string) string { return m.maskCap(s, maxContextString) })
	b, err := text.MarshalJSON(masked)
	if err != nil {
		return `{"context_error":"the log record could not be encoded"}`
	}
	if len(b) > store.MaxRequestDataBytes-len(crumbs)-1 {
		b, _ = text.MarshalJSON(map[string]any{"log": map[string]any{
			"level": r.Level.String(), "message": m.maskCap(r.Message, maxContextString), "truncated": true}})
	}
	return string(spliceMembers(b, crumbs))
}

// errorsAsText replaces the error attributes by their text.
func errorsAsText(attrs map[string]any) map[string]any {
	out := make(map[string]any, len(attrs))
	for k, v := range attrs {
		switch x := v.(type) {
		case logErr:
			out[k] = messageOf(x.err)
		case map[string]any:
			out[k] = errorsAsText(x)
		default:
			out[k] = v
		}
	}
	return out
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
