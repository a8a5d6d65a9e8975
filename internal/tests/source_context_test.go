package tests

import (
	"errors"
	"fmt"
	"html"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// Source context (README "Source context"): the lines around the
// application's frames, read where the failure is captured, stored once
// per file:line, shown on the detail page and in alerts.

const sourcePassword = "src-literal-7f3a9c" // a secret written in the source, within 3 lines of the panic

//go:noinline
func sourcePanic() { panic(errors.New("source context: " + strconv.Itoa(len(sourcePassword)))) }

// sourceMarker is the text of sourcePanic's panic line, by which the tests
// find its number.
const sourceMarker = `func sourcePanic() { panic(errors.New("source context: "`

// sourceFile returns this file's path (as the runtime names it) and its
// lines.
func sourceFile(t testing.TB) (string, []string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, strings.Split(string(b), "\n")
}

// sourcePanicLine returns the number of sourcePanic's panic line.
func sourcePanicLine(t testing.TB, lines []string) int {
	t.Helper()
	for i, l := range lines {
		if strings.HasPrefix(l, sourceMarker) {
			return i + 1
		}
	}
	t.Fatal("sourcePanic's line not found")
	return 0
}

// sourceApp is a gin app with m's middleware and a route that panics in
// sourcePanic.
func sourceApp(m *errmon.Monitor) *gin.Engine {
	app := gin.New()
	app.Use(m.Middleware())
	app.GET("/src", func(c *gin.Context) { sourcePanic() })
	return app
}

// sourceRows reads the stored source context of a file.
func sourceRows(t testing.TB, db *gorm.DB, file string) map[int]string {
	t.Helper()
	var rows []store.ErrorSource
	if err := db.Where("file = ?", file).Find(&rows).Error; err != nil {
		t.Fatalf("read app_error_sources: %v", err)
	}
	out := make(map[int]string, len(rows))
	for _, r := range rows {
		out[r.Line] = r.Lines
	}
	return out
}

// TestSourceContextStoredAndShown: a panic in a test function stores the
// ±3 lines around its line (read from this very file), the secret written
// there masked; the detail page shows them under the frame, the panic's
// line marked.
func TestSourceContextStoredAndShown(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		serve(sourceApp(d.m), "GET", "/src", nil, nil)
		dashFlush(t, d.m)

		file, lines := sourceFile(t)
		line := sourcePanicLine(t, lines)
		stored, ok := sourceRows(t, d.db, file)[line]
		if !ok {
			t.Fatalf("no source context stored for %s:%d", file, line)
		}
		got := strings.Split(stored, "\n")
		want := lines[line-1-store.SourceContext : line+store.SourceContext]
		if len(got) != len(want) {
			t.Fatalf("stored %d lines, want %d:\n%s", len(got), len(want), stored)
		}
		for i := range want {
			if strings.Contains(want[i], sourcePassword) {
				if strings.Contains(got[i], sourcePassword) || !strings.Contains(got[i], errmon.DefaultConfig().MaskWith) {
					t.Errorf("the secret's line is stored as %q: want it masked", got[i])
				}
				continue
			}
			if got[i] != want[i] {
				t.Errorf("line %d stored as %q, want %q", line-store.SourceContext+i, got[i], want[i])
			}
		}
		if !strings.Contains(stored, "const sourcePassword") {
			t.Errorf("the secret's line is not among the stored lines: the test tests nothing:\n%s", stored)
		}

		recs := allRecords(t, d.db)
		if len(recs) != 1 {
			t.Fatalf("%d errors stored, want 1", len(recs))
		}
		w := d.do("GET", dashPrefix+"/"+recs[0].Hash, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("detail: %d", w.Code)
		}
		body := strings.ReplaceAll(w.Body.String(), "<wbr>", "")
		mark := `<mark class="l"><span class="ln">` + strconv.Itoa(line) + `</span>` + html.EscapeString(lines[line-1]) + `</mark>`
		if !strings.Contains(body, mark) {
			t.Errorf("the detail page does not mark the panic's line %s", mark)
		}
		before := `<span class="ln">` + strconv.Itoa(line-1) + `</span>` + html.EscapeString(lines[line-2])
		if !strings.Contains(body, before) {
			t.Errorf("the detail page does not show the line before the panic's: %s", before)
		}
		if strings.Count(body, `<mark class="l">`) < 2 || strings.Count(body, `<pre class="src">`) < 2 {
			t.Errorf("the detail page shows %d snippets, want one per application frame (the panic's, the handler's, the test's)",
				strings.Count(body, `<pre class="src">`))
		}
		if strings.Contains(body, sourcePassword) {
			t.Error("the detail page shows the secret written in the source")
		}
	})
}

// sourceStatements counts the statements sent to db that write
// app_error_sources.
type sourceStatements struct {
	mu sync.Mutex
	n  int
}

func countSourceStatements(t *testing.T, db *gorm.DB) *sourceStatements {
	t.Helper()
	c := &sourceStatements{}
	if err := db.Callback().Raw().After("gorm:raw").Register("source_test:count", func(tx *gorm.DB) {
		if q := tx.Statement.SQL.String(); strings.HasPrefix(q, "INSERT") && strings.Contains(q, "app_error_sources") {
			c.mu.Lock()
			c.n++
			c.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *sourceStatements) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestSourceContextWrittenOnce: a file:line is read and written once per
// process: a second occurrence sends no statement to app_error_sources,
// and another process (a second monitor) that writes the same lines adds
// no row (ON CONFLICT DO NOTHING, INSERT IGNORE on MySQL) and fails on
// nothing.
func TestSourceContextWrittenOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		writes := countSourceStatements(t, tdb.DB)
		tm := newTestMonitor(t, tdb.DB, nil)
		other := newTestMonitor(t, tdb.DB, nil) // another process
		file, lines := sourceFile(t)
		var rows map[int]string
		// Every occurrence comes from the same lines (this loop's).
		for i, step := range []struct {
			m           *testMonitor
			occurrences int
			statements  int // sent to app_error_sources so far
		}{{tm, 1, 1}, {tm, 3, 1}, {other, 1, 2}} {
			app := sourceApp(step.m.Monitor)
			for range step.occurrences {
				serve(app, "GET", "/src", nil, nil)
			}
			step.m.flush(t)
			if n := writes.get(); n != step.statements {
				t.Errorf("step %d: %d statements sent to app_error_sources, want %d", i, n, step.statements)
			}
			got := sourceRows(t, tdb.DB, file)
			if i == 0 {
				rows = got
				if _, ok := rows[sourcePanicLine(t, lines)]; !ok {
					t.Fatalf("no source context stored for the panic's line: %d rows of this file", len(rows))
				}
			} else if len(got) != len(rows) {
				t.Errorf("step %d: %d rows of this file, want %d", i, len(got), len(rows))
			}
		}
		for _, l := range []string{tm.logs.String(), other.logs.String()} {
			if strings.Contains(l, "source context") {
				t.Errorf("log: %s", l)
			}
		}
		if recs := tm.records(t); len(recs) != 1 || recs[0].Count != 5 {
			t.Errorf("errors %+v, want one counted 5 times", recs)
		}
	})
}

// TestSourceContextSkipsUnreadableFiles: a frame whose file is missing,
// too large (over 1 MiB) or not a regular file gets no source context;
// the frames after it still do.
func TestSourceContextSkipsUnreadableFiles(t *testing.T) {
	if err := os.MkdirAll(sourceOddDir+"/dir_test.go", 0o755); err != nil {
		t.Fatal(err)
	}
	filler := strings.Repeat(strings.Repeat("x", 99)+"\n", (1<<20)/100+100) // > 1 MiB, line 5 is there
	if err := os.WriteFile(sourceOddDir+"/big_test.go", []byte(filler), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sourceOddDir) })

	tm := sqliteMonitor(t, nil)
	app := gin.New()
	app.Use(tm.Middleware())
	app.GET("/missing", func(c *gin.Context) { sourceFromMissingFile() })
	app.GET("/big", func(c *gin.Context) { sourceFromBigFile() })
	app.GET("/dir", func(c *gin.Context) { sourceFromDirectory() })
	for _, p := range []string{"/missing", "/big", "/dir"} {
		serve(app, "GET", p, nil, nil)
	}
	recs := tm.records(t)
	if len(recs) != 3 {
		t.Fatalf("%d errors stored, want 3", len(recs))
	}
	var srcs []store.ErrorSource
	if err := tm.db.Find(&srcs).Error; err != nil {
		t.Fatal(err)
	}
	file, _ := sourceFile(t)
	handlers := 0
	for _, s := range srcs {
		switch {
		case strings.HasPrefix(s.File, "/errmon-source-missing/") || strings.HasPrefix(s.File, sourceOddDir):
			t.Errorf("source context stored for %s:%d: %.80q", s.File, s.Line, s.Lines)
		case s.File == file && strings.Contains(s.Lines, "sourceFrom"):
			handlers++
		}
	}
	if handlers == 0 {
		t.Errorf("no source context for the handlers' frames after the unreadable ones: %d rows", len(srcs))
	}
	for _, r := range recs {
		if !strings.Contains(r.Traceback, "/errmon-source-missing/") && !strings.Contains(r.Traceback, sourceOddDir) {
			t.Errorf("the traceback does not name the unreadable file (the //line directives at the end of %s): %s", file, r.Traceback)
		}
	}
	if strings.Contains(tm.logs.String(), "source context") {
		t.Errorf("log: %s", tm.logs.String())
	}
}

// TestSourceURLLinksFrames: with Config.SourceURL, the application's frames
// link to their line at the release, {path} relative to the main module's
// root and escaped; without it, they are not links.
func TestSourceURLLinksFrames(t *testing.T) {
	tdb := openSQLite(t)
	d := newDash(t, tdb, func(c *errmon.Config) {
		c.SourceURL = "https://code.example.com/acme/api/blob/{release}/{path}#L{line}"
		c.Release = "v1.2.3+build/7"
	})
	serve(sourceApp(d.m), "GET", "/src", nil, nil)
	dashFlush(t, d.m)
	recs := allRecords(t, d.db)
	if len(recs) != 1 {
		t.Fatalf("%d errors", len(recs))
	}
	w := d.do("GET", dashPrefix+"/"+recs[0].Hash, nil)
	_, lines := sourceFile(t)
	want := "https://code.example.com/acme/api/blob/v1.2.3+build%2F7/source_context_test.go#L" + strconv.Itoa(sourcePanicLine(t, lines))
	var hrefs []string
	for _, m := range regexp.MustCompile(`href="(https://code\.example\.com[^"]*)"`).FindAllStringSubmatch(w.Body.String(), -1) {
		hrefs = append(hrefs, html.UnescapeString(m[1]))
	}
	found := false
	for _, h := range hrefs {
		found = found || h == want
	}
	if !found {
		t.Errorf("no link %s among the frames' links %q", want, hrefs)
	}
	if len(hrefs) < 2 {
		t.Errorf("%d frames linked, want every application frame (the panic's, the handler's, the test's)", len(hrefs))
	}
	for _, h := range hrefs {
		if !regexp.MustCompile(`^https://code\.example\.com/acme/api/blob/v1\.2\.3\+build%2F7/[a-z_]+_test\.go#L\d+$`).MatchString(h) {
			t.Errorf("link %s: want one to a file of this module at the release", h)
		}
	}

	plain := newDash(t, openSQLite(t), nil)
	serve(sourceApp(plain.m), "GET", "/src", nil, nil)
	dashFlush(t, plain.m)
	w = plain.do("GET", dashPrefix+"/"+allRecords(t, plain.db)[0].Hash, nil)
	if strings.Contains(w.Body.String(), `<span class="loc"><a `) {
		t.Error("frames are links without Config.SourceURL")
	}
}

// TestSourceURLValidated: Validate (and New) refuse a SourceURL that is not
// an http(s) URL template with {path} after its host, naming
// Config.SourceURL.
func TestSourceURLValidated(t *testing.T) {
	for _, tpl := range []string{
		"ftp://code.example.com/{path}#L{line}",
		"javascript:alert(1)//{path}",
		"//code.example.com/{path}",
		"https://{release}.example.com/{path}",
		"https://code.example.com{path}",
		"https://code.example.com/blob/{release}/{file}#L{line}",
		"https://code.example.com/blob/{release}",
		"https://user:pw@code.example.com/{path}",
	} {
		cfg := errmon.DefaultConfig()
		cfg.SourceURL = tpl
		err := cfg.Validate()
		var ce *errmon.ConfigError
		if !errors.As(err, &ce) || ce.Key != "Config.SourceURL" {
			t.Errorf("Validate(SourceURL %q) = %v, want a ConfigError naming Config.SourceURL", tpl, err)
		}
		cfg.DB = openSQLite(t).DB
		if _, err := errmon.New(cfg); err == nil {
			t.Errorf("New accepted SourceURL %q", tpl)
		}
	}
	cfg := errmon.DefaultConfig()
	cfg.SourceURL = "https://github.com/acme/api/blob/{release}/{path}#L{line}"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate refused the documented template: %v", err)
	}
}

// TestSourceContextInAlert: an alert shows the lines around its top
// application frame, the frame's line marked, masked; with SourceURL the
// frame links to its code.
func TestSourceContextInAlert(t *testing.T) {
	rec := &ntRecorder{}
	tm := sqliteMonitor(t, func(c *errmon.Config) {
		c.SendNotification = true
		c.Notifier = rec
		c.SourceURL = "https://code.example.com/acme/api/blob/{release}/{path}#L{line}"
		c.Release = "v9"
	})
	serve(sourceApp(tm.Monitor), "GET", "/src", nil, nil)
	tm.flush(t)
	if len(rec.reasons()) != 1 {
		t.Fatalf("alerts %v, want one", rec.reasons())
	}
	note := rec.last()
	_, lines := sourceFile(t)
	line := sourcePanicLine(t, lines)
	marked := fmt.Sprintf("\t>%5d | %s", line, lines[line-1])
	if !strings.Contains(note.Text, marked) {
		t.Errorf("the alert's text does not mark the panic's line %q:\n%s", marked, note.Text)
	}
	if !strings.Contains(note.Text, fmt.Sprintf("\t %5d | %s", line+1, lines[line])) {
		t.Errorf("the alert's text does not show the line after the panic's:\n%s", note.Text)
	}
	link := "https://code.example.com/acme/api/blob/v9/source_context_test.go#L" + strconv.Itoa(line)
	if !strings.Contains(note.Text, link) || !strings.Contains(html.UnescapeString(note.HTML), `href="`+link+`"`) {
		t.Errorf("the alert does not link the frame to %s:\n%s", link, note.Text)
	}
	if !strings.Contains(html.UnescapeString(note.HTML), fmt.Sprintf("%5d | %s</b>", line, lines[line-1])) {
		t.Errorf("the alert's HTML does not mark the panic's line:\n%s", note.HTML)
	}
	if strings.Contains(note.Text, sourcePassword) || strings.Contains(note.HTML, sourcePassword) {
		t.Error("the alert shows the secret written in the source")
	}
}

// sourceOddDir holds the too large file and the directory that the
// //line directives below name.
const sourceOddDir = "/tmp/errmon-source-test"

// The functions below are compiled as if written in files that are not
// readable at capture time: a missing one, one over 1 MiB, a directory.
// They stay at the end of the file: every line after a //line directive
// belongs to it.

//line /errmon-source-missing/ghost_test.go:10
func sourceFromMissingFile() { panic("from a file that is not there") }

//line /tmp/errmon-source-test/big_test.go:5
func sourceFromBigFile() { panic("from a file too large to read") }

//line /tmp/errmon-source-test/dir_test.go:5
func sourceFromDirectory() { panic("from a directory") }
