package dashboard

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
)

// Bounded views of stored request contexts, for the detail page and the
// JSON API. A row may hold anything: written before capture capped depth,
// or by another process. The views walk the stored text without decoding
// it into a tree, stop at maxShownDepth levels of nesting (a deeper value
// becomes one marker) and, on the page, at a budget of HTML bytes; what
// is read from the database is cut in SQL first (maxReadContext).

// --- scanning JSON text without decoding it ---

// skipSpace returns the index of the first non-space byte of s from i.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the JSON string that starts at
// s[i] (a quote).
func scanString(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// scanValue returns the index just past the JSON value that starts at s[i]
// (not a space), and the nesting depth inside it: 0 for a scalar, 1 for an
// array or object of scalars. It checks bracket balance, not grammar, and
// uses neither recursion nor allocation.
func scanValue(s string, i int) (end, depth int, ok bool) {
	if i >= len(s) {
		return 0, 0, false
	}
	switch s[i] {
	case '"':
		end, ok = scanString(s, i)
		return end, 0, ok
	case '{', '[':
		level := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e, ok := scanString(s, j)
				if !ok {
					return 0, 0, false
				}
				j = e - 1
			case '{', '[':
				level++
				depth = max(depth, level)
			case '}', ']':
				if level--; level == 0 {
					return j + 1, depth, true
				}
			}
		}
		return 0, 0, false
	}
	j := i
	for j < len(s) && strings.IndexByte(",:]} \t\r\n{[\"", s[j]) < 0 {
		j++
	}
	lit := s[i:j]
	if lit == "true" || lit == "false" || lit == "null" || (j > i && strings.IndexByte("-0123456789", lit[0]) >= 0) {
		return j, 0, true
	}
	return 0, 0, false
}

// jsonMember is one key and raw value of a JSON object.
type jsonMember struct {
	Key   string
	Value string // raw JSON text
}

// objectMembers splits the JSON object text s into its members, in order,
// without decoding the values. It keeps the first limit members, and
// beyond them up to len(contextOrder) more whose key keep reports; total
// counts them all.
func objectMembers(s string, limit int, keep func(string) bool) (out []jsonMember, total int, ok bool) {
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return nil, 0, false
	}
	kept := 0
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return out, 0, skipSpace(s, i+1) == len(s)
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return nil, 0, false
		}
		kBegin := i
		kEnd, ok := scanString(s, i)
		if !ok {
			return nil, 0, false
		}
		i = skipSpace(s, kEnd)
		if i >= len(s) || s[i] != ':' {
			return nil, 0, false
		}
		vStart := skipSpace(s, i+1)
		vEnd, _, ok := scanValue(s, vStart)
		if !ok {
			return nil, 0, false
		}
		if total < limit || kept < len(contextOrder) {
			key, ok := jsonText(s[kBegin:kEnd])
			if !ok {
				return nil, 0, false
			}
			if total < limit {
				out = append(out, jsonMember{Key: key, Value: s[vStart:vEnd]})
			} else if keep != nil && keep(key) {
				out = append(out, jsonMember{Key: key, Value: s[vStart:vEnd]})
				kept++
			}
		}
		total++
		i = skipSpace(s, vEnd)
		if i >= len(s) {
			return nil, 0, false
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case '}':
			return out, total, skipSpace(s, i+1) == len(s)
		default:
			return nil, 0, false
		}
	}
}

// jsonText decodes the JSON string literal q.
func jsonText(q string) (string, bool) {
	if !strings.Contains(q, `\`) && utf8.ValidString(q) {
		return q[1 : len(q)-1], true
	}
	var s string
	if err := json.Unmarshal([]byte(q), &s); err != nil {
		return "", false
	}
	return s, true
}

// depthMarker stands for a non-empty array or object too deep to show; n
// is its own nesting depth.
func depthMarker(open byte, n int) string {
	closing := "]"
	if open == '{' {
		closing = "}"
	}
	if n == 1 {
		return string(open) + "… 1 more level" + closing
	}
	return fmt.Sprintf("%c… %d more levels%s", open, n, closing)
}

// isEmptyContainer reports whether the array or object text v holds nothing.
func isEmptyContainer(v string) bool {
	return len(v) >= 2 && skipSpace(v, 1) == len(v)-1
}

// --- the API: the stored object, depth-capped ---

// pruneJSON returns the JSON text s with every non-empty array or object
// nested deeper than maxShownDepth replaced by a marker string, and
// whether s was balanced enough to walk. s is returned as it is when
// nothing is too deep.
func pruneJSON(s string) (string, bool) {
	end, depth, ok := scanValue(s, skipSpace(s, 0))
	if !ok || skipSpace(s, end) != len(s) {
		return "", false
	}
	if depth <= maxShownDepth {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	level, from := 0, 0
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case '"':
			e, _ := scanString(s, j) // balanced: scanValue walked it
			j = e - 1
		case '{', '[':
			if level < maxShownDepth {
				level++
				continue
			}
			e, n, _ := scanValue(s, j)
			if isEmptyContainer(s[j:e]) {
				j = e - 1
				continue
			}
			b.WriteString(s[from:j])
			q, _ := text.MarshalJSON(depthMarker(s[j], n))
			b.Write(q)
			from, j = e, e-1
		case '}', ']':
			level--
		}
	}
	b.WriteString(s[from:])
	return b.String(), true
}

// apiContext returns stored context text as a JSON object for the API:
// {} when empty; the object, with levels deeper than maxShownDepth
// replaced by markers; {"raw": text} when it is not a JSON object; and
// {"raw": the start, "truncated": true} when the text read was cut
// (longer than MaxReadContext).
func apiContext(s string, cut bool) json.RawMessage {
	s = strings.TrimSpace(s)
	if s == "" {
		return json.RawMessage("{}")
	}
	if !cut && strings.HasPrefix(s, "{") {
		if p, ok := pruneJSON(s); ok && json.Valid([]byte(p)) {
			return json.RawMessage(p)
		}
	}
	raw := map[string]any{"raw": cutShown(s, apiRawBytes)}
	if cut || len(s) > apiRawBytes {
		raw["truncated"] = true
	}
	b, _ := text.MarshalJSON(raw)
	return b
}

// cutShown cuts s to at most n bytes at a character boundary, with a marker
// when it cut.
func cutShown(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return text.Cut(s, n) + "… [cut]"
}

// --- the page: indented, depth-capped, within a budget of HTML bytes ---

// htmlCost is what s costs once html/template escaped it: &, <, >, " and '
// become entities of four or five bytes.
func htmlCost(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&', '<', '>', '"', '\'', 0:
			n += 4
		}
	}
	return n
}

// cutNote ends a view cut for its budget.
const cutNote = "… [cut: the page shows part of this context; GET api/errors/{hash} has the stored object]"

// shownText builds one view within a budget shared by several (left).
type shownText struct {
	b    strings.Builder
	left *int
	cut  bool
	base int // the nesting level shown without indentation
}

// add appends s if its escaped cost fits the budget; otherwise it appends
// the part that fits and the cut note, and every later add is ignored.
func (w *shownText) add(s string) {
	if w.cut {
		return
	}
	if c := htmlCost(s); c <= *w.left {
		*w.left -= c
		w.b.WriteString(s)
		return
	}
	i := 0
	for i < len(s) {
		_, size := utf8.DecodeRuneInString(s[i:])
		c := htmlCost(s[i : i+size])
		if c > *w.left {
			break
		}
		*w.left -= c
		i += size
	}
	w.b.WriteString(s[:i])
	w.b.WriteString(cutNote)
	w.cut = true
	*w.left = 0
}

// scalar appends a JSON scalar: strings decoded and re-encoded without
// escapes for &, < and > (the page escapes once), the rest as stored.
func (w *shownText) scalar(v string) {
	if v != "" && v[0] == '"' && strings.Contains(v, `\`) {
		if s, ok := jsonText(v); ok {
			q, _ := text.MarshalJSON(s)
			w.add(string(q))
			return
		}
	}
	w.add(v)
}

// value appends the JSON value v, found at nesting level level, indented
// by two spaces a level below w.base. v has been scanned: it is balanced.
func (w *shownText) value(v string, level int) {
	if w.cut || v == "" {
		return
	}
	open := v[0]
	if open != '{' && open != '[' {
		w.scalar(v)
		return
	}
	if isEmptyContainer(v) {
		w.add(string(open) + string(v[len(v)-1]))
		return
	}
	if level > maxShownDepth {
		_, n, _ := scanValue(v, 0)
		w.add(depthMarker(open, n))
		return
	}
	inner := "\n" + strings.Repeat("  ", level-w.base)
	w.add(string(open))
	i := skipSpace(v, 1)
	for i < len(v)-1 && !w.cut {
		w.add(inner)
		if open == '{' {
			kEnd, ok := scanString(v, i)
			if !ok {
				w.add(v[i:]) // not JSON after all: show the rest as it is
				return
			}
			w.scalar(v[i:kEnd])
			w.add(": ")
			i = skipSpace(v, kEnd)
			if i < len(v) && v[i] == ':' {
				i = skipSpace(v, i+1)
			}
		}
		end, _, ok := scanValue(v, i)
		if !ok {
			w.add(v[i:])
			return
		}
		w.value(v[i:end], level+1)
		i = skipSpace(v, end)
		if i < len(v)-1 && v[i] == ',' {
			w.add(",")
			i = skipSpace(v, i+1)
		}
	}
	w.add(inner[:len(inner)-2] + string(v[len(v)-1]))
}

// shownJSON is the value v, found at nesting level level, indented from
// the left margin within the budget.
func shownJSON(v string, level int, left *int) string {
	w := shownText{left: left, base: level - 1}
	w.value(v, level)
	return w.b.String()
}

// flatMembers returns the members of the object text v when every value is
// a scalar or an array of strings, so that v reads well as a two-column
// table (headers, query, form).
// Only the first maxShownRows members, the ones a table shows, are read.
func flatMembers(v string) ([]jsonMember, bool) {
	members, _, ok := objectMembers(v, maxShownRows, nil)
	if !ok {
		return nil, false
	}
	for _, m := range members {
		switch m.Value[0] {
		case '{':
			return nil, false
		case '[':
			if !stringList(m.Value) {
				return nil, false
			}
		}
	}
	return members, true
}

// stringList reports whether the array text v holds only strings.
func stringList(v string) bool {
	for i := skipSpace(v, 1); i < len(v)-1; {
		if v[i] != '"' {
			return false
		}
		end, ok := scanString(v, i)
		if !ok {
			return false
		}
		i = skipSpace(v, end)
		if i < len(v)-1 && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return true
}

// cellText shows a scalar or a list of strings on one line: strings as they
// are, lists joined by commas, anything else as stored.
func cellText(v string) string {
	switch v[0] {
	case '"':
		if s, ok := jsonText(v); ok {
			return s
		}
	case '[':
		var parts []string
		for i := skipSpace(v, 1); i < len(v)-1; {
			end, _ := scanString(v, i)
			s, _ := jsonText(v[i:end])
			parts = append(parts, s)
			i = skipSpace(v, end)
			if i < len(v)-1 && v[i] == ',' {
				i = skipSpace(v, i+1)
			}
		}
		return strings.Join(parts, ", ")
	case 'n':
		return ""
	}
	return v
}

// contextOrder puts the request's identity first.
var contextOrder = []string{"method", "url", "route", "host", "client_ip", "proto", "params", "query", "headers", "cookies", "form", "files", "body"}

// requestContext renders stored context text for the detail page: one
// entry per top-level key, within budget bytes of HTML, and, when raw is
// set, the whole context indented, within as many again. cut says the text
// read was cut short.
func requestContext(data string, cut bool, budget int, raw bool) ([]ctxEntry, string) {
	if strings.TrimSpace(data) == "" {
		return nil, ""
	}
	rank := func(k string) int {
		if crumbKeys[k] {
			return len(contextOrder) + 1 // last: the detail page shows them apart
		}
		for i, o := range contextOrder {
			if o == k {
				return i
			}
		}
		return len(contextOrder)
	}
	left := budget
	members, total, ok := objectMembers(data, maxShownRows, func(k string) bool { return rank(k) < len(contextOrder) })
	if cut || !ok {
		w := shownText{left: &left}
		w.add(data)
		if cut && !w.cut {
			w.add(fmt.Sprintf("… [cut: only the first %d characters were read]", store.MaxReadContext))
		}
		return []ctxEntry{{Key: "raw", Text: w.b.String()}}, ""
	}
	sort.SliceStable(members, func(i, j int) bool {
		ri, rj := rank(members[i].Key), rank(members[j].Key)
		if ri != rj {
			return ri < rj
		}
		return members[i].Key < members[j].Key
	})
	out := make([]ctxEntry, 0, len(members))
	for n, m := range members {
		left -= entryMarkup
		if left <= 0 || n == maxShownRows {
			out = append(out, ctxEntry{Key: "…", Text: fmt.Sprintf("%d more keys not shown (the page shows part of this context; GET api/errors/{hash} has the stored object)", total-n)})
			break
		}
		k := shownText{left: &left}
		k.add(m.Key)
		e := ctxEntry{Key: k.b.String()}
		switch m.Value[0] {
		case '{':
			sub, flat := flatMembers(m.Value)
			if !flat { // a JSON body, say: keep its shape
				e.JSON = shownJSON(m.Value, 2, &left)
				break
			}
			sort.SliceStable(sub, func(i, j int) bool { return sub[i].Key < sub[j].Key })
			for r, sm := range sub {
				if left -= rowMarkup; left <= 0 || r == maxShownRows {
					e.Table = append(e.Table, [2]string{"…", cutNote})
					break
				}
				k := shownText{left: &left}
				k.add(sm.Key)
				v := shownText{left: &left}
				v.add(cellText(sm.Value))
				e.Table = append(e.Table, [2]string{k.b.String(), v.b.String()})
			}
		case '[':
			e.JSON = shownJSON(m.Value, 2, &left)
		default:
			w := shownText{left: &left}
			w.add(cellText(m.Value))
			e.Text = w.b.String()
		}
		out = append(out, e)
	}
	if !raw {
		return out, ""
	}
	rawLeft := budget
	return out, shownJSON(strings.TrimSpace(data), 1, &rawLeft)
}

const (
	// maxShownDepth is the deepest nesting level shown; the context object
	// itself is level 1. A deeper non-empty array or object is shown as one
	// marker, "[… N more levels]" or "{… N more levels}" (a JSON string in
	// the API).
	maxShownDepth = 64
	// pageContextBudget is how many bytes of HTML the detail page spends on the
	// latest context's entries, and as much again on its raw JSON.
	pageContextBudget = 64 << 10
	// sampleBudget is the same for each of the last occurrences.
	sampleBudget = 12 << 10
	// apiRawBytes caps the text of a context the API returns as {"raw": …}
	// because it is not a JSON object.
	apiRawBytes = 16 << 10
	// entryMarkup and rowMarkup are what the page's markup costs around one
	// entry of a context and one row of its tables, charged to the budget.
	entryMarkup = 64
	rowMarkup   = 32
	// maxShownRows caps the entries of one context, and the rows of one of
	// its tables, that the page shows: each costs the template work.
	maxShownRows = 200
)
