package errmon

// The context budget: a request context is cut to a byte budget before it
// is masked, so that masking and storing cost no more than the budget,
// whatever the request's shape.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/text"
)

// Markers of what the context budget cut.
const (
	cutKey       = "[cut]"               // the map entry that counts what a map left out
	deeperMarker = "[deeper levels cut]" // what stands for a level nested too deep
	// sortedEntriesMax is the size up to which a map is cut in the order of
	// its keys; a larger one (only a hostile request has one) is cut in no
	// particular order, so that cutting stays linear in its size.
	sortedEntriesMax = 4096
)

// cutter cuts a request context to a budget before it is masked: strings
// to maxContextString (keys to maxContextKey) and to what the budget has
// left, maps and lists to the entries the budget holds, nesting to
// maxContextDepth. Everything kept is charged about the size it takes as
// JSON; once the budget is spent, what is left is only counted.
type cutter struct {
	left int                 // bytes the budget has left; may go below 0
	key  func(string) string // masks a kept key as free text; nil keeps it
}

// within runs f with at most limit bytes of the budget, and charges the
// budget what f spent.
func (ct *cutter) within(limit int, f func()) {
	saved := ct.left
	ct.left = min(saved, limit)
	start := ct.left
	f()
	ct.left = saved - (start - ct.left)
}

// text cuts s to limit bytes and to what the budget has left (at least 64
// bytes, room for a marker), and charges it.
func (ct *cutter) text(s string, limit int) string { return ct.textOf(s, len(s), limit) }

// textOf is text for s the start of a value of total bytes.
func (ct *cutter) textOf(s string, total, limit int) string {
	s = cutTextOf(s, min(limit, max(ct.left-2, 64)), total)
	ct.left -= len(s) + 2
	return s
}

// keyText cuts a map key to maxContextKey, masks it as text, and charges
// it.
func (ct *cutter) keyText(k string) string {
	k = cutText(k, maxContextKey)
	if ct.key != nil {
		k = ct.key(k)
	}
	ct.left -= len(k) + 4
	return k
}

// cutText returns s, or, when it is longer than limit bytes, its start and
// a "… [N bytes cut]" marker, limit bytes in all (at least the marker).
// Since masking comes after, the cut backs off to the last separator
// (space, & ; , /) within cutSlack bytes of it: a key=value pair, a URL or
// a token that the cut would split is left out whole rather than kept
// half, where masking might no longer recognize it.
func cutText(s string, limit int) string { return cutTextOf(s, limit, len(s)) }

// cutSlack is how far back a cut looks for a separator.
const cutSlack = 512

// cutTextOf is cutText for s the start of a value of total bytes.
func cutTextOf(s string, limit, total int) string {
	if total <= limit && len(s) == total {
		return s
	}
	// The marker is sized for the largest count it can hold.
	keep := min(max(limit-len(fmt.Sprintf("… [%d bytes cut]", total)), 0), len(s))
	if i := strings.LastIndexAny(s[max(keep-cutSlack, 0):keep], " \t\r\n&;,/"); i >= 0 {
		keep = max(keep-cutSlack, 0) + i + 1
	}
	for keep > 0 && keep < len(s) && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + fmt.Sprintf("… [%d bytes cut]", total-keep)
}

// value returns v cut to the budget; depth is the number of containers
// around it. It returns strings, maps of string to any, lists of any, and
// the scalars it was given; a value of another type is replaced by its
// JSON encoding, decoded.
func (ct *cutter) value(v any, depth int) any {
	switch t := v.(type) {
	case nil:
		ct.left -= 4
		return nil
	case string:
		return ct.text(t, maxContextString)
	case bool:
		ct.left -= 5
		return t
	case json.Number:
		ct.left -= len(t)
		return t
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		ct.left -= 8
		return t
	case map[string]any:
		return cutMap(ct, t, depth, ct.value, nil)
	case map[string]string:
		return cutMap(ct, t, depth, func(s string, _ int) any { return ct.text(s, maxContextString) }, stringSize)
	case map[string][]string:
		return cutMap(ct, t, depth, ct.values, valuesSize)
	case url.Values:
		return cutMap(ct, t, depth, ct.values, valuesSize)
	case http.Header:
		return cutMap(ct, t, depth, ct.values, valuesSize)
	case []any:
		return cutList(ct, t, depth, ct.value)
	case []string:
		return cutList(ct, t, depth, func(s string, _ int) any { return ct.text(s, maxContextString) })
	}
	return ct.encoded(v, depth)
}

// values cuts a list of header or form values as text.Tree shows them: one
// value as itself, several as a list.
func (ct *cutter) values(vs []string, depth int) any {
	if len(vs) == 1 {
		return ct.text(vs[0], maxContextString)
	}
	return cutList(ct, vs, depth, func(s string, _ int) any { return ct.text(s, maxContextString) })
}

// encoded cuts a value of a type the cutter does not walk (a struct, say):
// its JSON encoding, decoded when it fits the budget and kept as text
// otherwise, so that it is masked like the rest.
func (ct *cutter) encoded(v any, depth int) any {
	b, err := text.MarshalJSON(v)
	if err != nil {
		return ct.text(fmt.Sprintf("<%T: %v>", v, err), smallField)
	}
	if len(b) > ct.left {
		return ct.text(string(b), maxContextString)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var d any
	if dec.Decode(&d) != nil {
		return ct.text(string(b), maxContextString)
	}
	return ct.value(d, depth)
}

// stringSize is the size of a value, for a "[cut]" count.
func stringSize(s string) int { return len(s) }

// valuesSize is the size of a list of values, for a "[cut]" count.
func valuesSize(vs []string) int {
	n := 0
	for _, v := range vs {
		n += len(v)
	}
	return n
}

// cutMap cuts m: its entries in key order (when it has at most
// sortedEntriesMax), while the budget lasts, each key cut and masked as
// text and each value cut by conv; a "[cut]" entry counts the entries left
// out and, when size is given, their bytes. At depth maxContextDepth the
// map is replaced by "[deeper levels cut]".
func cutMap[V any](ct *cutter, m map[string]V, depth int, conv func(V, int) any, size func(V) int) any {
	if depth >= maxContextDepth {
		return ct.text(deeperMarker, smallField)
	}
	ct.left -= 2
	out := make(map[string]any, min(len(m), 16))
	cut, cutBytes := 0, 0
	add := func(k string, v V) {
		if ct.left <= 0 {
			cut++
			if size != nil {
				cutBytes += len(k) + size(v)
			}
			return
		}
		out[ct.keyText(k)] = conv(v, depth+1)
	}
	if len(m) <= sortedEntriesMax {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			add(k, m[k])
		}
	} else {
		for k, v := range m {
			add(k, v)
		}
	}
	if cut > 0 {
		marker := fmt.Sprintf("[%d entries cut]", cut)
		if size != nil {
			marker = fmt.Sprintf("[%d entries, %d bytes cut]", cut, cutBytes)
		}
		ct.left -= len(cutKey) + len(marker) + 6
		out[cutKey] = marker
	}
	return out
}

// cutList cuts xs: its items in order while the budget lasts, each cut by
// conv, then an "[N items cut]" item for the rest. At depth
// maxContextDepth the list is replaced by "[deeper levels cut]".
func cutList[E any](ct *cutter, xs []E, depth int, conv func(E, int) any) any {
	if depth >= maxContextDepth {
		return ct.text(deeperMarker, smallField)
	}
	ct.left -= 2
	out := make([]any, 0, min(len(xs), 16))
	for i, x := range xs {
		if ct.left <= 0 {
			marker := fmt.Sprintf("[%d items cut]", len(xs)-i)
			ct.left -= len(marker) + 3
			return append(out, marker)
		}
		ct.left--
		out = append(out, conv(x, depth+1))
	}
	return out
}
