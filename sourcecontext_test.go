package errmon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
)

// White-box tests of source context: reading a file's lines, the cache's
// bounds, the links. The stored rows, the detail page and the alerts are
// tested in internal/tests (source_context_test.go).

func srcMonitor() *Monitor {
	return &Monitor{mask: text.NewMasker([]string{"password", "secret"}, "***", true)}
}

// srcWrite writes a temporary Go file of the given lines.
func srcWrite(t *testing.T, name string, lines []string, eol string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, eol)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func srcNumbered(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = "line " + strconv.Itoa(i+1)
	}
	return lines
}

// TestSourceLinesWindow: the lines from max(1, line-3) to line+3, fewer at
// the end of the file; a line past its end gets nothing; CRLF endings and
// a missing final newline are read as lines.
func TestSourceLinesWindow(t *testing.T) {
	m := srcMonitor()
	for _, eol := range []string{"\n", "\r\n"} {
		path := srcWrite(t, "a.go", srcNumbered(20), eol)
		got := readSourceLines(path, []int{1, 2, 10, 19, 20, 21}, m.cleanSourceLine)
		for line, want := range map[int][2]int{1: {1, 4}, 2: {1, 5}, 10: {7, 13}, 19: {16, 20}, 20: {17, 20}} {
			sn := got[line]
			if sn == nil {
				t.Errorf("eol %q: line %d: no snippet", eol, line)
				continue
			}
			if sn.first != want[0] || sn.first+len(sn.lines)-1 != want[1] {
				t.Errorf("eol %q: line %d: lines %d to %d, want %d to %d", eol, line, sn.first, sn.first+len(sn.lines)-1, want[0], want[1])
			}
			for i, l := range sn.lines {
				if w := "line " + strconv.Itoa(sn.first+i); l != w {
					t.Errorf("eol %q: line %d: %q, want %q", eol, line, l, w)
				}
			}
		}
		if got[21] != nil {
			t.Errorf("eol %q: a snippet for line 21 of 20: %+v", eol, got[21])
		}
	}
	// Empty lines are lines; a final newline ends the last one.
	path := srcWrite(t, "b.go", []string{"a", "", "", "d", ""}, "\n")
	if sn := readSourceLines(path, []int{3}, m.cleanSourceLine)[3]; sn == nil || strings.Join(sn.lines, "|") != "a|||d" {
		t.Errorf("empty lines: %+v", sn)
	}
}

// TestSourceLinesCleaned: a line is cut to store.MaxSourceLineBytes with a
// marker, a secret in it is masked (one past the cut too), and the text is
// valid UTF-8 without NUL.
func TestSourceLinesCleaned(t *testing.T) {
	m := srcMonitor()
	long := strings.Repeat("x", 5000)
	// A card number across the cut: only whole is it recognized.
	straddling := strings.Repeat("y", store.MaxSourceLineBytes-15) + " 4111 1111 1111 1111 end"
	path := srcWrite(t, "c.go", []string{
		`	const apiSecret = "sk-live-in-the-source"`,
		long,
		straddling,
		"bad \xff utf8 and \x00 nul",
	}, "\n")
	got := readSourceLines(path, []int{1}, m.cleanSourceLine)[1]
	if got == nil || len(got.lines) != 4 {
		t.Fatalf("snippet %+v", got)
	}
	if got.lines[0] != `	const apiSecret = "***"` {
		t.Errorf("the secret's line: %q", got.lines[0])
	}
	if l := got.lines[1]; len(l) > store.MaxSourceLineBytes || !strings.HasSuffix(l, fmt.Sprintf("… [%d bytes cut]", 5000-strings.Count(l, "x"))) {
		t.Errorf("a long line: %d bytes, ends %q", len(l), l[max(0, len(l)-30):])
	}
	if l := got.lines[2]; strings.Contains(l, "4111 1111") || !strings.Contains(l, "***") || len(l) > store.MaxSourceLineBytes {
		t.Errorf("a secret straddling the cut: %q", l)
	}
	if l := got.lines[3]; l != "bad \uFFFD utf8 and \uFFFD nul" {
		t.Errorf("invalid text: %q", l)
	}
}

// TestSourceLinesSkipped: files that are not an absolute path to a Go
// file, not regular, missing, over 1 MiB, or named by more than
// store.MaxSourceFileName bytes are not read.
func TestSourceLinesSkipped(t *testing.T) {
	m := srcMonitor()
	dir := t.TempDir()
	big := srcWrite(t, "big.go", srcNumbered(200000), "\n") // 2.2 MB
	if fi, _ := os.Stat(big); fi.Size() <= maxSourceFileBytes {
		t.Fatalf("big.go is %d bytes: the test tests nothing", fi.Size())
	}
	notGo := srcWrite(t, "a.txt", srcNumbered(10), "\n")
	okFile := srcWrite(t, "ok.go", srcNumbered(10), "\n")
	if err := os.Mkdir(filepath.Join(dir, "d.go"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.go")
	if err := exec.Command("mkfifo", fifo).Run(); err != nil {
		fifo = okFile + ".missing.go"
		t.Logf("no named pipe (%v): that case is skipped", err)
	}
	wd, _ := os.Getwd()
	rel, _ := filepath.Rel(wd, okFile)
	for name, file := range map[string]string{
		"too large":     big,
		"not Go":        notGo,
		"a directory":   filepath.Join(dir, "d.go"),
		"a named pipe":  fifo, // opening it would block
		"missing":       filepath.Join(dir, "missing.go"),
		"relative":      rel,
		"name too long": "/" + strings.Repeat("n", store.MaxSourceFileName) + ".go",
	} {
		if got := readSourceLines(file, []int{5}, m.cleanSourceLine); got[5] != nil {
			t.Errorf("%s (%s): read %+v", name, file, got[5])
		}
	}
	if got := readSourceLines(okFile, []int{5}, m.cleanSourceLine); got[5] == nil {
		t.Error("a readable file was skipped: the test tests nothing")
	}
}

// TestSourceCaptureReadsOnce: a file:line is read once: a later capture
// (the file changed meanwhile) uses the cache, queues nothing and
// allocates nothing; an unreadable one is remembered too; only the newest
// store.MaxSourceFrames in-app frames are read.
func TestSourceCaptureReadsOnce(t *testing.T) {
	m := srcMonitor()
	path := srcWrite(t, "once.go", srcNumbered(100), "\n")
	var frames []Frame
	for i := range 12 {
		frames = append(frames, Frame{Function: "main.f", File: path, Line: 5 + 5*i, InApp: true},
			Frame{Function: "net/http.g", File: "/usr/lib/go/src/net/http/server.go", Line: 10})
	}
	frames = append(frames, Frame{Function: "main.missing", File: "/no/such/file.go", Line: 3, InApp: true})
	m.captureSource(frames)
	queued := m.sources.take()
	if len(queued) != store.MaxSourceFrames {
		t.Fatalf("%d snippets queued, want the first %d in-app frames'", len(queued), store.MaxSourceFrames)
	}
	if sn := m.sources.lookup(path, 5); sn == nil || sn.lines[3] != "line 5" {
		t.Fatalf("cached %+v", sn)
	}
	if m.sources.lookup(path, 5+5*store.MaxSourceFrames) != nil {
		t.Error("a frame past the first store.MaxSourceFrames in-app ones was read")
	}
	if err := os.WriteFile(path, []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.captureSource(frames)
	if sn := m.sources.lookup(path, 5); sn == nil || sn.lines[3] != "line 5" {
		t.Errorf("the file was read again: %+v", sn)
	}
	if q := m.sources.take(); len(q) != 0 {
		t.Errorf("a repeat queued %d snippets", len(q))
	}
	// The unreadable file, as the 9th frame, is never reached; as the first:
	unreadable := []Frame{{Function: "main.missing", File: "/no/such/file.go", Line: 3, InApp: true}}
	m.captureSource(unreadable)
	m.sources.mu.Lock()
	sn, cached := m.sources.entries[store.SourceKey{File: "/no/such/file.go", Line: 3}]
	m.sources.mu.Unlock()
	if !cached || sn != nil {
		t.Errorf("the unreadable file is not remembered as such: cached %v, %+v", cached, sn)
	}
	if allocs := testing.AllocsPerRun(100, func() { m.captureSource(frames) }); allocs != 0 {
		t.Errorf("a repeat allocates %v times", allocs)
	}
}

// TestSourceCacheBounded: the cache keeps at most maxSourceEntries entries
// and about maxSourceCacheBytes, and at most maxSourcesUnwritten snippets
// wait for the writer, however many are read or given back.
func TestSourceCacheBounded(t *testing.T) {
	var s sourceCache
	line := strings.Repeat("z", store.MaxSourceLineBytes)
	sn := &sourceSnippet{first: 1, lines: []string{line, line, line, line, line, line, line}}
	now := time.Now()
	for i := range 5000 {
		s.add(store.SourceKey{File: "/f" + strconv.Itoa(i%50) + ".go", Line: i}, sn, now)
		if len(s.entries) > maxSourceEntries || s.bytes > maxSourceCacheBytes {
			t.Fatalf("after %d: %d entries, %d bytes", i+1, len(s.entries), s.bytes)
		}
	}
	if len(s.entries) < maxSourceCacheBytes/(2*sourceEntrySize(store.SourceKey{File: "/f0.go"}, sn)) {
		t.Errorf("%d entries kept: the cache forgets too much", len(s.entries))
	}
	sum := 0
	for k, e := range s.entries {
		sum += sourceEntrySize(k, e)
	}
	if sum != s.bytes {
		t.Errorf("bytes %d, entries hold %d", s.bytes, sum)
	}
	q := s.take()
	if len(q) != maxSourcesUnwritten {
		t.Errorf("%d snippets queued, want %d", len(q), maxSourcesUnwritten)
	}
	s.giveBack(q)
	s.giveBack(q)
	if n := len(s.take()); n != maxSourcesUnwritten {
		t.Errorf("%d snippets queued after two give-backs, want %d", n, maxSourcesUnwritten)
	}
}

// TestSourceModulePath: {path} is the file relative to the main module's
// root, from the frame's package path, or as a -trimpath build names it;
// files outside the main module have none.
func TestSourceModulePath(t *testing.T) {
	if mainModulePath != "github.com/errmon/errmon" {
		t.Skipf("main module %q", mainModulePath)
	}
	for _, tc := range []struct{ function, file, want string }{
		{"github.com/errmon/errmon.TestX", "/home/u/errmon/x_test.go", "x_test.go"},
		{"github.com/errmon/errmon_test.TestX.func1", "/home/u/errmon/x_test.go", "x_test.go"},
		{"github.com/errmon/errmon/internal/store.(*Store).Get", "/srv/src/errmon/internal/store/queries.go", "internal/store/queries.go"},
		{"github.com/errmon/errmon/internal/store.F[...]", "/srv/src/errmon/internal/store/g.go", "internal/store/g.go"},
		{"github.com/errmon/errmon/internal/store.F", "github.com/errmon/errmon/internal/store/q.go", "internal/store/q.go"}, // -trimpath
		{"github.com/errmon/errmon/internal/store.F", "/elsewhere/other/q.go", ""},                                           // the directory does not end with the package's
		{"github.com/gin-gonic/gin.(*Context).Next", "/go/pkg/mod/github.com/gin-gonic/gin@v1.12.0/context.go", ""},
		{"github.com/errmon/errmon.F", "", ""},
		{"github.com/errmon/errmon.F", "github.com/errmon/errmon/../../etc/x.go", ""},
	} {
		if got := modulePath(tc.function, tc.file); got != tc.want {
			t.Errorf("modulePath(%q, %q) = %q, want %q", tc.function, tc.file, got, tc.want)
		}
	}
}

// TestSourceLinkEscaped: the link fills the template with each value
// escaped for a URL path; no template, no module path, or an empty
// Release for a template that names it, gives no link.
func TestSourceLinkEscaped(t *testing.T) {
	m := &Monitor{cfg: Config{SourceURL: "https://code.example.com/r/blob/{release}/{path}#L{line}", Release: "v1/rc 1"}}
	if mainModulePath != "github.com/errmon/errmon" {
		t.Skipf("main module %q", mainModulePath)
	}
	got := m.sourceLink("github.com/errmon/errmon.F", `/src/errmon/we ird#?%"<.go`, 42)
	if want := "https://code.example.com/r/blob/v1%2Frc%201/we%20ird%23%3F%25%22%3C.go#L42"; got != want {
		t.Errorf("link %q, want %q", got, want)
	}
	if got := m.sourceLink("github.com/gin-gonic/gin.F", "/go/pkg/mod/github.com/gin-gonic/gin@v1.12.0/context.go", 1); got != "" {
		t.Errorf("a library frame linked: %q", got)
	}
	m.cfg.Release = ""
	if got := m.sourceLink("github.com/errmon/errmon.F", "/src/errmon/a.go", 1); got != "" {
		t.Errorf("linked without a release: %q", got)
	}
	m.cfg.SourceURL = "https://code.example.com/r/blob/main/{path}#L{line}"
	if got := m.sourceLink("github.com/errmon/errmon.F", "/src/errmon/a.go", 7); got != "https://code.example.com/r/blob/main/a.go#L7" {
		t.Errorf("link %q", got)
	}
	m.cfg.SourceURL = ""
	if got := m.sourceLink("github.com/errmon/errmon.F", "/src/errmon/a.go", 7); got != "" {
		t.Errorf("linked without a template: %q", got)
	}
}

// TestSourceURLProblems: only http(s) templates with {path} after the
// host and no unknown placeholder are accepted.
func TestSourceURLProblems(t *testing.T) {
	for tpl, ok := range map[string]bool{
		"https://github.com/acme/api/blob/{release}/{path}#L{line}": true,
		"http://git.local:8080/src/{path}?at={release}&l={line}":    true,
		"https://code.example.com/{path}":                           true,
		"ftp://code.example.com/{path}":                             false,
		"javascript:alert(1)//{path}":                               false,
		"/relative/{path}":                                          false,
		"https://{release}.example.com/{path}":                      false,
		"https://code.example.com{path}":                            false,
		"https://code.example.com/{path}/{commit}":                  false,
		"https://code.example.com/{release}":                        false,
		"https://u:p@code.example.com/{path}":                       false,
		"https://code.example.com/\x7f/{path}":                      false,
	} {
		if why := sourceURLProblem(tpl); (why == "") != ok {
			t.Errorf("sourceURLProblem(%q) = %q, want accepted %v", tpl, why, ok)
		}
	}
}

// TestSourceInAlertText: the alert's top application frame shows its
// lines, the frame's own marked; a traceback without application frames is
// shown as it was.
func TestSourceInAlertText(t *testing.T) {
	m := ntComposer(t, nil)
	m.mask = srcMonitor().mask
	path := srcWrite(t, "alert.go", srcNumbered(30), "\n")
	m.captureSource([]Frame{{Function: "main.handler", File: path, Line: 12, InApp: true}})
	rec := &ErrorRecord{Hash: strings.Repeat("a", 64), ExceptionName: "x", Traceback: formatTraceback([]Frame{
		{Function: "net/http.f", File: "/usr/lib/go/src/net/http/x.go", Line: 1},
		{Function: "main.handler", File: path, Line: 12},
		{Function: "main.other", File: path, Line: 20},
	})}
	n := m.compose(rec, ReasonNew, 0)
	for _, want := range []string{"\t     9 | line 9\n", "\t>   12 | line 12\n", "\t    15 | line 15\n"} {
		if !strings.Contains(n.Text, want) {
			t.Errorf("the alert's text lacks %q:\n%s", want, n.Text)
		}
	}
	if strings.Contains(n.Text, "line 20") || strings.Contains(n.Text, "line 8\n") {
		t.Errorf("the alert shows more than the top frame's lines:\n%s", n.Text)
	}
	if !strings.Contains(n.HTML, `<b style="background:#fff8c5">   12 | line 12</b>`) {
		t.Errorf("the alert's HTML does not mark the line:\n%s", n.HTML)
	}
	lib := &ErrorRecord{Hash: strings.Repeat("b", 64), Traceback: "net/http.f\n\t" + path + ":12\n"}
	if got := m.compose(lib, ReasonNew, 0).Text; strings.Contains(got, "line 12") {
		t.Errorf("source shown for a library frame:\n%s", got)
	}
}

// BenchmarkSourceCapture: what source context costs a failure with 8
// in-app frames in one 400-line file: a repeat (cached) and a first
// capture (the file read, 8 snippets masked). Run it with
// go test -run XXX -bench SourceCapture -benchmem .
func BenchmarkSourceCapture(b *testing.B) {
	path := filepath.Join(b.TempDir(), "handler.go")
	lines := make([]string, 400)
	for i := range lines {
		lines[i] = "\tif err := store.Save(ctx, item" + strconv.Itoa(i) + "); err != nil { return fmt.Errorf(\"save: %w\", err) }"
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		b.Fatal(err)
	}
	var frames []Frame
	for i := range store.MaxSourceFrames {
		frames = append(frames, Frame{Function: "main.f", File: path, Line: 20 + 45*i, InApp: true})
	}
	b.Run("repeat", func(b *testing.B) {
		m := srcMonitor()
		m.captureSource(frames)
		b.ReportAllocs()
		for b.Loop() {
			m.captureSource(frames)
		}
	})
	b.Run("first", func(b *testing.B) {
		m := srcMonitor()
		b.ReportAllocs()
		for b.Loop() {
			m.sources = sourceCache{}
			m.captureSource(frames)
		}
	})
}
