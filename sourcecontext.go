package errmon

import (
	"bufio"
	"context"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/store"
)

// Source context: the lines around the application's frames of a failure,
// read from their files where the failure is captured (on the failing
// request's path, never on a request that does not fail), masked like any
// text, and stored once per file:line in app_error_sources by the writer.
//
// Each monitor keeps what it read in a bounded cache (file:line → lines):
// a file:line is read at most once while it stays cached, and its lines are
// handed to the writer once, so that a repeat of a failure costs a few map
// lookups and no statement. Files that are not readable then (a binary
// deployed without its sources, built with -trimpath) are remembered as
// such and skipped.
const (
	// maxSourceFileBytes: larger files are skipped, never read.
	maxSourceFileBytes = 1 << 20
	// sourceMaskSlack is how much of a long line is read past
	// store.MaxSourceLineBytes, so that a secret straddling the cut is
	// masked whole before the line is cut (as maskCap does).
	sourceMaskSlack = 512
	// maxSourceEntries and maxSourceCacheBytes bound a monitor's cache of
	// file:lines read (the unreadable ones included).
	maxSourceEntries    = 1024
	maxSourceCacheBytes = 1 << 20
	// maxSourcesUnwritten bounds the snippets read and not stored yet
	// (while the database is down); more are not kept for storing.
	maxSourcesUnwritten = 512
	// sourceEntryOverhead is what an entry costs beyond its texts.
	sourceEntryOverhead = 64
)

// sourceSnippet is the source context of one file:line: its lines from
// first, masked and capped.
type sourceSnippet struct {
	first int
	lines []string
}

// sourceCache is a monitor's source context. The zero value is ready.
type sourceCache struct {
	mu      sync.Mutex
	entries map[store.SourceKey]*sourceSnippet // nil: nothing to show (unreadable, too large, no such line)
	bytes   int
	// unwritten are the snippets read and not yet handed to the writer.
	unwritten []store.ErrorSource
	// readMu serializes the reading of files: a file:line that two
	// failures miss at once is read once.
	readMu sync.Mutex
}

// captureSource reads the source context of the newest in-app frames (at
// most store.MaxSourceFrames) that the cache does not hold yet. A repeat
// costs one lock and a lookup per frame, and allocates nothing.
func (m *Monitor) captureSource(frames []Frame) {
	var buf [store.MaxSourceFrames]store.SourceKey
	miss := buf[:0]
	s := &m.sources
	s.mu.Lock()
	n := 0
	for _, f := range frames {
		if !f.InApp {
			continue
		}
		if n++; n > store.MaxSourceFrames {
			break
		}
		k := store.SourceKey{File: f.File, Line: f.Line}
		if _, ok := s.entries[k]; !ok && !containsKey(miss, k) {
			miss = append(miss, k)
		}
	}
	s.mu.Unlock()
	if len(miss) > 0 {
		m.readSources(miss)
	}
}

func containsKey(keys []store.SourceKey, k store.SourceKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// readSources reads the missing file:lines, each file once, and caches
// them (an unreadable one as nil).
func (m *Monitor) readSources(miss []store.SourceKey) {
	s := &m.sources
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.mu.Lock()
	todo := miss[:0:0]
	for _, k := range miss {
		if _, ok := s.entries[k]; !ok {
			todo = append(todo, k)
		}
	}
	s.mu.Unlock()
	for len(todo) > 0 {
		file := todo[0].File
		var lines []int
		rest := todo[:0]
		for _, k := range todo {
			if k.File == file {
				lines = append(lines, k.Line)
			} else {
				rest = append(rest, k)
			}
		}
		todo = rest
		got := readSourceLines(file, lines, m.cleanSourceLine)
		now := time.Now()
		for _, line := range lines {
			s.add(store.SourceKey{File: file, Line: line}, got[line], now)
		}
	}
}

// cleanSourceLine masks a line read from a source file (head: its first
// bytes; total: its length) and caps it to store.MaxSourceLineBytes.
func (m *Monitor) cleanSourceLine(head string, total int) string {
	masked := m.mask.Text(head)
	return sanitizeOf(masked, store.MaxSourceLineBytes, len(masked)+total-len(head))
}

// add caches the snippet of k and, when there is one, queues it for the
// writer. A full cache forgets arbitrary entries first.
func (s *sourceCache) add(k store.SourceKey, sn *sourceSnippet, now time.Time) {
	size := sourceEntrySize(k, sn)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[k]; ok {
		return
	}
	if s.entries == nil {
		s.entries = make(map[store.SourceKey]*sourceSnippet)
	}
	for len(s.entries) > 0 && (len(s.entries) >= maxSourceEntries || s.bytes+size > maxSourceCacheBytes) {
		for old, e := range s.entries { // map order: an arbitrary entry
			delete(s.entries, old)
			s.bytes -= sourceEntrySize(old, e)
			break
		}
	}
	s.entries[k] = sn
	s.bytes += size
	if sn != nil && len(s.unwritten) < maxSourcesUnwritten {
		s.unwritten = append(s.unwritten, store.ErrorSource{
			File: k.File, Line: k.Line, Lines: strings.Join(sn.lines, "\n"), CreatedAt: now,
		})
	}
}

func sourceEntrySize(k store.SourceKey, sn *sourceSnippet) int {
	n := len(k.File) + sourceEntryOverhead
	if sn != nil {
		for _, l := range sn.lines {
			n += len(l) + 16
		}
	}
	return n
}

// lookup returns the cached snippet of file:line, or nil.
func (s *sourceCache) lookup(file string, line int) *sourceSnippet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[store.SourceKey{File: file, Line: line}]
}

// take hands the snippets read since the last pass to the writer.
func (s *sourceCache) take() []store.ErrorSource {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.unwritten
	s.unwritten = nil
	return out
}

// giveBack returns snippets the writer could not store, within the bound.
func (s *sourceCache) giveBack(srcs []store.ErrorSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	room := maxSourcesUnwritten - len(s.unwritten)
	if room <= 0 {
		return
	}
	s.unwritten = append(srcs[:min(room, len(srcs)):min(room, len(srcs))], s.unwritten...)
}

// writeSources stores the snippets read since the last pass: one
// statement (per 256 snippets) when there are any, none otherwise. Called
// once per write pass, after the errors' writes; while those fail (the
// database is down) or the pass ran out of time, the snippets wait for a
// pass that succeeds. Snippets whose write fails for a reason that may
// pass wait too; others are dropped and logged. A panic is logged and never
// stops the writer.
func (m *Monitor) writeSources(ctx context.Context) {
	m.logMu.Lock()
	failing := !m.failingSince.IsZero()
	m.logMu.Unlock()
	if failing || ctx.Err() != nil {
		return
	}
	srcs := m.sources.take()
	if len(srcs) == 0 {
		return
	}
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				m.log.Error("errmon: internal panic while storing source context", "panic", sanitize(m.mask.Text(messageOf(r)), 1024))
			}
		}()
		err = m.store.WriteSources(ctx, srcs)
	}()
	switch {
	case err == nil:
	case transientDBError(err):
		m.sources.giveBack(srcs)
	default:
		m.log.Warn("errmon: could not store source context", "snippets", len(srcs), "err", err)
	}
}

// sourceFileOK reports whether a frame's file may be read for its source
// context: an absolute path to a Go file, short enough to be stored, valid
// UTF-8 without NUL (PostgreSQL stores no other).
func sourceFileOK(file string) bool {
	return len(file) <= store.MaxSourceFileName && strings.HasSuffix(file, ".go") && filepath.IsAbs(file) &&
		utf8.ValidString(file) && strings.IndexByte(file, 0) < 0
}

// readSourceLines reads the source context of the given lines of file
// (store.SourceContext lines before and after each), cleaning each kept
// line with clean (its first bytes, its length). It reads no further than
// the last line it needs, and skips files that are not regular, are larger
// than maxSourceFileBytes or cannot be opened: a line without a snippet is
// missing from the result.
func readSourceLines(file string, lines []int, clean func(head string, total int) string) map[int]*sourceSnippet {
	if !sourceFileOK(file) {
		return nil
	}
	// Looked at before it is opened: opening a named pipe would block.
	if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() || fi.Size() > maxSourceFileBytes {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	last := 0
	for _, l := range lines {
		last = max(last, l+store.SourceContext)
	}
	wanted := func(n int) bool {
		for _, l := range lines {
			if n >= store.FirstSourceLine(l) && n <= l+store.SourceContext {
				return true
			}
		}
		return false
	}
	r := bufio.NewReaderSize(io.LimitReader(f, maxSourceFileBytes), 4096)
	kept := make(map[int]string)
	n := 0
	var head []byte
	for n < last {
		var (
			total int
			ok    bool
			err   error
		)
		head, total, ok, err = readSourceLine(r, head[:0])
		if !ok {
			break // the end of the file
		}
		n++
		if wanted(n) {
			kept[n] = clean(string(head), total)
		}
		if err != nil {
			break
		}
	}
	out := make(map[int]*sourceSnippet, len(lines))
	for _, l := range lines {
		if l < 1 || l > n {
			continue // no such line: the file changed since the build
		}
		sn := &sourceSnippet{first: store.FirstSourceLine(l)}
		for i := sn.first; i <= min(l+store.SourceContext, n); i++ {
			sn.lines = append(sn.lines, kept[i])
		}
		out[l] = sn
	}
	return out
}

// readSourceLine reads one line of r, keeping its first
// store.MaxSourceLineBytes+sourceMaskSlack bytes in head (appended to buf)
// without its line ending; total is its length. ok is false at the end of
// the file; err is set when no line follows (the end, or a failure).
func readSourceLine(r *bufio.Reader, buf []byte) (head []byte, total int, ok bool, err error) {
	head = buf
	const keep = store.MaxSourceLineBytes + sourceMaskSlack
	for {
		chunk, e := r.ReadSlice('\n')
		if e == nil {
			chunk = chunk[:len(chunk)-1]
			ok = true
		}
		if len(chunk) > 0 {
			ok = true
		}
		total += len(chunk)
		if room := keep - len(head); room > 0 {
			head = append(head, chunk[:min(room, len(chunk))]...)
		}
		if e != bufio.ErrBufferFull {
			err = e
			break
		}
	}
	if total > 0 && total == len(head) && head[total-1] == '\r' {
		head, total = head[:total-1], total-1
	}
	return head, total, ok, err
}

// --- links ---

// mainPackagePath is the import path of the binary's main package.
var mainPackagePath = func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return bi.Path
}()

// modulePath returns the path of a frame's file relative to the main
// module's root directory, or "" when it cannot tell: the file of a
// package of the main module, found from the package's path (the root is
// where the file's directory ends with the package's path within the
// module), or named relative to the module already (a -trimpath build).
func modulePath(function, file string) string {
	if mainModulePath == "" || file == "" {
		return ""
	}
	rel, ok := strings.CutPrefix(file, mainModulePath+"/")
	if !ok {
		pkg := funcPackage(function)
		if pkg == "main" {
			pkg = mainPackagePath
		}
		pkg = strings.TrimSuffix(pkg, "_test") // an external test package
		if !inModule(pkg, mainModulePath) {
			return ""
		}
		sub := strings.TrimPrefix(strings.TrimPrefix(pkg, mainModulePath), "/")
		dir, base := path.Split(file)
		switch {
		case sub == "":
			rel = base
		case strings.HasSuffix(strings.TrimSuffix(dir, "/"), "/"+sub):
			rel = sub + "/" + base
		default:
			return ""
		}
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return ""
		}
	}
	return rel
}

// sourceLink returns the address of a frame's line in Config.SourceURL,
// or "" when it is not set or the frame's file is not the main module's
// (or Config.Release is empty and the template names {release}). Each
// placeholder's value is escaped for a URL path.
func (m *Monitor) sourceLink(function, file string, line int) string {
	tpl := m.cfg.SourceURL
	if tpl == "" || line <= 0 {
		return ""
	}
	if strings.Contains(tpl, "{release}") && m.cfg.Release == "" {
		return ""
	}
	rel := modulePath(function, file)
	if rel == "" {
		return ""
	}
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.NewReplacer("{release}", url.PathEscape(m.cfg.Release), "{path}", strings.Join(segs, "/"),
		"{line}", strconv.Itoa(line)).Replace(tpl)
}

// sourceURLProblem says what is wrong with a Config.SourceURL template, or
// returns "".
func sourceURLProblem(tpl string) string {
	const example = "such as https://github.com/acme/api/blob/{release}/{path}#L{line}"
	if strings.ContainsAny(strings.NewReplacer("{release}", "", "{path}", "", "{line}", "").Replace(tpl), "{}") {
		return "its only placeholders are {release}, {path} and {line}"
	}
	if !strings.Contains(tpl, "{path}") {
		return "must name the file with {path}, " + example
	}
	sample, err := url.Parse(strings.NewReplacer("{release}", "v1.0.0", "{path}", "dir/file.go", "{line}", "42").Replace(tpl))
	if err != nil || (sample.Scheme != "http" && sample.Scheme != "https") || sample.Host == "" || sample.User != nil {
		return "must be an absolute http(s) URL template " + example
	}
	head, err := url.Parse(tpl[:strings.IndexByte(tpl, '{')])
	if err != nil || head.Host != sample.Host {
		return "its placeholders must come after the host, " + example
	}
	return ""
}
