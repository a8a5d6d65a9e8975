package errmon

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
)

// What an alert shows of a stored error, and its bounds. The row is read
// back from the database, where it may have been written by an older
// version or by another process: nothing in it is trusted to be capped, so
// every value is cut before any work that grows with its size. Composing
// an alert costs a few hundred KB of allocations whatever the row holds.
const (
	// alertTracebackLines is how much of the traceback an alert shows (two
	// lines per frame).
	alertTracebackLines = 24
	// alertTracebackBytes caps the traceback shown.
	alertTracebackBytes = 8 << 10
	// alertMessageBytes caps the message shown.
	alertMessageBytes = 2 << 10
	// alertHashBytes caps the hash shown (a sha256 hex is 64 bytes).
	alertHashBytes = 128
	// alertContextBytes caps the request context shown.
	alertContextBytes = 16 << 10
	// alertContextDepth is how many levels of the request context are
	// shown: a deeper object or array is shown as one marker, {…} or […].
	alertContextDepth = 10
	// alertStringBytes caps one string (or number) of the request context.
	alertStringBytes = 1 << 10
	// alertStackScanBytes is how much of the traceback is read to tell
	// application frames from library frames.
	alertStackScanBytes = 64 << 10
	// alertShownFrames is how many application frames an alert shows.
	alertShownFrames = 12
	// alertFrameBytes caps a frame's function or location.
	alertFrameBytes = 512
	// alertRequestJSONBytes is the largest stored context whose fields are
	// shown as the request table (a larger one is shown as JSON only).
	alertRequestJSONBytes = 1 << 20
	// alertRequestValueBytes caps one value of the request table.
	alertRequestValueBytes = 512
)

// alertFrames is the traceback as an alert shows it: the application
// frames, each run of library frames folded into one line counting them
// ("+ 9 library frames"), as the dashboard folds them (inApp decides).
// When the traceback has no application frame, it is shown as it is
// (capped), Folded false.
type alertFrames struct {
	Folded bool
	List   []alertFrame
	Text   string // the plain-text rendering, newline-terminated
}

// alertFrame is a shown frame, or (Fold set) a folded run of frames,
// shown after a "+": "9 library frames".
type alertFrame struct {
	Function string
	Location string
	Fold     string
	// Link is the frame's code at Config.SourceURL ("" for none); Source
	// the lines around it, for the top application frame (see withSource).
	Link   string
	Source []store.SourceLine
}

// alertStack reads at most alertStackScanBytes of the stored traceback
// ("function\n\tfile:line\n" per frame, newest first).
func alertStack(tb string) alertFrames {
	if tb == "" {
		return alertFrames{Text: "(no stack)\n"}
	}
	window := text.Cut(tb, alertStackScanBytes)
	var list []alertFrame
	shown, lib, rest, apps := 0, 0, 0, 0
	fold := func() {
		if lib > 0 {
			word := "frames"
			if lib == 1 {
				word = "frame"
			}
			list = append(list, alertFrame{Fold: strconv.Itoa(lib) + " library " + word})
			lib = 0
		}
	}
	for i := 0; i < len(window); {
		end := strings.IndexByte(window[i:], '\n')
		if end < 0 {
			end = len(window) - i
		}
		fn := window[i : i+end]
		i += end + 1
		loc := ""
		if i < len(window) && window[i] == '\t' {
			e := strings.IndexByte(window[i:], '\n')
			if e < 0 {
				e = len(window) - i
			}
			loc = window[i+1 : i+e]
			i += e + 1
		}
		if strings.TrimSpace(fn) == "" {
			continue
		}
		file := loc
		if j := strings.LastIndexByte(file, ':'); j > 0 {
			file = file[:j]
		}
		if !inApp(text.Cut(fn, 4*alertFrameBytes), file) {
			if shown < alertShownFrames {
				lib++
			} else {
				rest++
			}
			continue
		}
		apps++
		if shown == alertShownFrames {
			rest++
			continue
		}
		fold()
		shown++
		list = append(list, alertFrame{Function: alertCap(fn, alertFrameBytes), Location: alertCap(loc, alertFrameBytes)})
	}
	if apps == 0 {
		return alertFrames{Text: alertTraceback(tb)}
	}
	fold()
	if rest > 0 {
		list = append(list, alertFrame{Fold: strconv.Itoa(rest) + " more frames"})
	}
	if len(window) < len(tb) {
		list = append(list, alertFrame{Fold: strconv.Itoa(len(tb)-len(window)) + " bytes of frames not read"})
	}
	return alertFrames{Folded: true, List: list, Text: alertFramesText(list)}
}

// alertFramesText renders folded frames as plain text.
func alertFramesText(list []alertFrame) string {
	var b strings.Builder
	for _, f := range list {
		if f.Fold != "" {
			b.WriteString("  + " + f.Fold + "\n")
			continue
		}
		b.WriteString(f.Function + "\n")
		if f.Location != "" {
			b.WriteString("\t" + f.Location + "\n")
		}
		store.WriteSourceText(&b, f.Source, f.Link)
	}
	return b.String()
}

// withSource links the application frames of af to their code (link
// returns "" for none) and shows, under the top one, the lines of code
// around it that this process read when it captured the error (source
// returns nil when it has none); Text is rendered again.
func (af alertFrames) withSource(source func(file string, line int) *sourceSnippet, link func(function, file string, line int) string) alertFrames {
	if !af.Folded {
		return af
	}
	list := slices.Clone(af.List)
	top := true
	for i := range list {
		f := &list[i]
		if f.Fold != "" {
			continue
		}
		file, line, ok := splitLocation(f.Location)
		if !ok {
			top = false
			continue
		}
		f.Link = link(f.Function, file, line)
		if top {
			top = false
			if sn := source(file, line); sn != nil {
				for j, text := range sn.lines {
					n := sn.first + j
					f.Source = append(f.Source, store.SourceLine{Num: n, Text: text, Current: n == line})
				}
			}
		}
	}
	af.List = list
	af.Text = alertFramesText(list)
	return af
}

// splitLocation reads a frame's "file:line".
func splitLocation(loc string) (file string, line int, ok bool) {
	i := strings.LastIndexByte(loc, ':')
	if i <= 0 {
		return "", 0, false
	}
	line, err := strconv.Atoi(loc[i+1:])
	if err != nil || line <= 0 {
		return "", 0, false
	}
	return loc[:i], line, true
}

// alertRow is a line of the request table.
type alertRow struct {
	Name, Value string
}

// alertHeaders are the request headers an alert's table shows, when
// stored (masked as they were stored).
var alertHeaders = []string{"User-Agent", "Referer", "Content-Type", "Accept", "X-Request-Id", "X-Forwarded-For"}

// alertRequest picks the key facts of the stored request context (the
// JSON of DefaultContextBuilder, masked as stored): method, URL, route,
// host, client IP and a few headers, each capped. A context that is not such an
// object, or larger than alertRequestJSONBytes, gives no table.
func alertRequest(raw string) []alertRow {
	if raw == "" || len(raw) > alertRequestJSONBytes || raw[0] != '{' {
		return nil
	}
	var v struct {
		Method   any            `json:"method"`
		URL      any            `json:"url"`
		Host     any            `json:"host"`
		Route    any            `json:"route"`
		ClientIP any            `json:"client_ip"`
		Headers  map[string]any `json:"headers"`
	}
	if json.Unmarshal([]byte(raw), &v) != nil {
		return nil
	}
	var rows []alertRow
	add := func(name string, value any) {
		var s string
		switch x := value.(type) {
		case string:
			s = x
		case []any:
			var parts []string
			for _, e := range x {
				if t, ok := e.(string); ok {
					parts = append(parts, t)
				}
				if len(parts) == 4 {
					break
				}
			}
			s = strings.Join(parts, ", ")
		}
		if s != "" {
			rows = append(rows, alertRow{Name: name, Value: oneLine(text.Cut(s, 4*alertRequestValueBytes), alertRequestValueBytes)})
		}
	}
	add("Method", v.Method)
	add("URL", v.URL)
	add("Host", v.Host)
	add("Route", v.Route)
	add("Client IP", v.ClientIP)
	for _, h := range alertHeaders {
		for k, val := range v.Headers {
			if strings.EqualFold(k, h) {
				add(h, val)
				break
			}
		}
	}
	return rows
}

// alertCap sanitizes s and caps it to max bytes like sanitize, cutting a
// long s first: the work does not grow with len(s).
func alertCap(s string, max int) string {
	if len(s) > max+utf8.UTFMax {
		return sanitizeOf(s[:max+utf8.UTFMax], max, len(s))
	}
	return sanitize(s, max)
}

// alertTraceback returns the first alertTracebackLines lines of tb, at
// most alertTracebackBytes, ending with a newline.
func alertTraceback(tb string) string {
	if tb == "" {
		return "(no stack)\n"
	}
	window := tb[:min(len(tb), alertTracebackBytes+utf8.UTFMax)]
	end := 0
	for lines := 0; lines < alertTracebackLines && end < len(window); lines++ {
		i := strings.IndexByte(window[end:], '\n')
		if i < 0 {
			end = len(window)
			break
		}
		end += i + 1
	}
	if end == len(tb) {
		return sanitize(tb, alertTracebackBytes)
	}
	if end > alertTracebackBytes {
		// Long lines: cut by bytes, with a marker counting the rest.
		return sanitizeOf(tb[:end], alertTracebackBytes, len(tb)) + "\n"
	}
	return sanitize(tb[:end], alertTracebackBytes) + "…\n"
}

// alertContext renders the stored request context (JSON) for people:
// indented by two spaces, levels below alertContextDepth shown as {…} or
// […], strings cut at alertStringBytes, the whole cut at alertContextBytes.
// A context that is not JSON is shown as text, cut the same way.
func alertContext(raw string) string {
	if raw == "" {
		return "(none: recorded outside a request)"
	}
	if s, ok := indentBounded(raw, alertContextDepth, alertStringBytes, alertContextBytes); ok {
		return s
	}
	return alertCap(raw, alertContextBytes)
}

// indentBounded renders the JSON text raw indented by two spaces, as
// indentJSON does for what errmon stores, within bounds: maxDepth levels
// are shown (a deeper object or array becomes one marker, {…} or […]),
// each string or number is cut after maxString bytes, and the result is
// at most limit bytes of valid UTF-8 (cut with a marker counting the rest
// of raw). It reads raw once, recurses at most maxDepth levels and
// allocates about what it returns. ok is false when raw is not JSON.
func indentBounded(raw string, maxDepth, maxString, limit int) (s string, ok bool) {
	r := jsonView{in: raw, maxDepth: maxDepth, maxString: maxString, limit: limit}
	r.out.Grow(min(2*len(raw), limit+maxString))
	err := r.value(0)
	if err == nil {
		r.space()
		if r.i < len(r.in) {
			err = errNotJSON // trailing text
		}
	}
	switch {
	case err == nil:
		return sanitize(r.out.String(), limit), true
	case errors.Is(err, errViewFull):
		// Count what was cut in bytes of raw.
		shown := r.out.String()
		return sanitizeOf(shown, limit, len(shown)+len(r.in)-r.i), true
	}
	return "", false
}

var (
	errNotJSON  = errors.New("not JSON")
	errViewFull = errors.New("the view is full")
)

// jsonView is a bounded JSON indenter. It copies strings and numbers as
// they are written in the input (the stored context is JSON that errmon
// encoded without HTML escapes) and recurses at most maxDepth levels: a
// deeper value is skipped by counting brackets, without recursion.
type jsonView struct {
	in        string
	i         int // the next byte of in
	out       strings.Builder
	maxDepth  int
	maxString int
	limit     int // stop once out is longer
}

func (r *jsonView) space() {
	for r.i < len(r.in) {
		switch r.in[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *jsonView) newline(depth int) {
	r.out.WriteByte('\n')
	for range depth {
		r.out.WriteString("  ")
	}
}

// value renders the value at r.i, depth levels down.
func (r *jsonView) value(depth int) error {
	if r.out.Len() > r.limit {
		return errViewFull
	}
	r.space()
	if r.i >= len(r.in) {
		return errNotJSON
	}
	switch r.in[r.i] {
	case '{', '[':
		if depth >= r.maxDepth {
			return r.elide()
		}
		return r.composite(depth)
	case '"':
		return r.str()
	default:
		return r.literal()
	}
}

// composite renders an object or an array, one member per line.
func (r *jsonView) composite(depth int) error {
	open := r.in[r.i]
	end := byte(']')
	if open == '{' {
		end = '}'
	}
	r.i++
	r.out.WriteByte(open)
	r.space()
	if r.i < len(r.in) && r.in[r.i] == end {
		r.i++
		r.out.WriteByte(end)
		return nil
	}
	for {
		if r.out.Len() > r.limit {
			return errViewFull
		}
		r.newline(depth + 1)
		if open == '{' {
			r.space()
			if r.i >= len(r.in) || r.in[r.i] != '"' {
				return errNotJSON
			}
			if err := r.str(); err != nil {
				return err
			}
			r.space()
			if r.i >= len(r.in) || r.in[r.i] != ':' {
				return errNotJSON
			}
			r.i++
			r.out.WriteString(": ")
		}
		if err := r.value(depth + 1); err != nil {
			return err
		}
		r.space()
		if r.i >= len(r.in) {
			return errNotJSON
		}
		switch r.in[r.i] {
		case ',':
			r.i++
			r.out.WriteByte(',')
		case end:
			r.i++
			r.newline(depth)
			r.out.WriteByte(end)
			return nil
		default:
			return errNotJSON
		}
	}
}

// elide skips the object or array at r.i, however deep, and shows it as
// one marker.
func (r *jsonView) elide() error {
	open := r.in[r.i]
	level := 0
	for r.i < len(r.in) {
		switch r.in[r.i] {
		case '{', '[':
			level++
		case '}', ']':
			level--
			if level == 0 {
				r.i++
				if open == '{' {
					r.out.WriteString("{…}")
				} else {
					r.out.WriteString("[…]")
				}
				return nil
			}
		case '"':
			if err := r.skipString(); err != nil {
				return err
			}
			continue
		}
		r.i++
	}
	return errNotJSON
}

// str copies the string at r.i, cut after maxString bytes (at a character
// boundary, never inside an escape) with a marker counting the rest.
func (r *jsonView) str() error {
	start := r.i
	cut := -1
	r.i++
	for r.i < len(r.in) {
		c := r.in[r.i]
		if cut < 0 && r.i-start > r.maxString && c != '"' && utf8.RuneStart(c) {
			cut = r.i
		}
		switch {
		case c == '"':
			r.i++
			if cut < 0 {
				r.out.WriteString(r.in[start:r.i])
			} else {
				r.out.WriteString(r.in[start:cut])
				r.out.WriteString("… [")
				r.out.WriteString(strconv.Itoa(r.i - 1 - cut))
				r.out.WriteString(` bytes cut]"`)
			}
			return nil
		case c == '\\':
			if r.i+1 < len(r.in) && r.in[r.i+1] == 'u' {
				r.i += 6
			} else {
				r.i += 2
			}
		case c < 0x20:
			return errNotJSON
		default:
			r.i++
		}
	}
	return errNotJSON
}

// skipString moves r.i past the string at r.i.
func (r *jsonView) skipString() error {
	for r.i++; r.i < len(r.in); r.i++ {
		switch r.in[r.i] {
		case '\\':
			r.i++
		case '"':
			r.i++
			return nil
		}
	}
	return errNotJSON
}

// literal copies the number, true, false or null at r.i, cut after
// maxString bytes.
func (r *jsonView) literal() error {
	start := r.i
	for r.i < len(r.in) {
		c := r.in[r.i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '+' || c == '.') {
			break
		}
		r.i++
	}
	if r.i == start {
		return errNotJSON
	}
	if r.i-start > r.maxString {
		r.out.WriteString(r.in[start:start+r.maxString] + "…")
		return nil
	}
	r.out.WriteString(r.in[start:r.i])
	return nil
}
