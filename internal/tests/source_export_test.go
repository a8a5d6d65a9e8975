package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/dashboard"
	"github.com/errmon/errmon/internal/store"
)

// The source context in the JSON API's detail ("source") and in the
// Markdown export (under each frame, inside the frames' fence).

// apiDetail calls GET api/errors/{hash} and returns the answer decoded
// and as a generic object.
func (d *dashEnv) apiDetail(t *testing.T, hash string) (dashboard.APIErrorDetail, map[string]any, string) {
	t.Helper()
	w := d.do("GET", dashPrefix+"/api/errors/"+hash, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET api/errors/%s: %d %s", hash, w.Code, w.Body)
	}
	var out dashboard.APIErrorDetail
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode api/errors/%s: %v\n%s", hash, err, w.Body)
	}
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	return out, raw, w.Body.String()
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// markdownFences returns the fenced code blocks of a Markdown text, as
// CommonMark reads them: an opening line of three or more backticks
// (nothing after them here) and a closing line of at least as many, alone.
func markdownFences(md string) []string {
	var blocks []string
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		open := lines[i]
		if len(open) < 3 || strings.Trim(open, "`") != "" {
			continue
		}
		var body []string
		j := i + 1
		for ; j < len(lines); j++ {
			if l := lines[j]; len(l) >= len(open) && strings.Trim(l, "`") == "" {
				break
			}
			body = append(body, lines[j])
		}
		blocks = append(blocks, strings.Join(body, "\n"))
		i = j
	}
	return blocks
}

// TestSourceContextInAPIAndMarkdown: a captured panic's source lines are
// in the API's detail, a "source" list of {function, file, line, url,
// lines: [{number, text, current}]} for each application frame with
// stored lines (newest first, the panic's first), and in the Markdown
// under each frame, inside the frames' fence, the line marked; the secret
// written in the source is masked in both, and the API's other fields are
// kept.
func TestSourceContextInAPIAndMarkdown(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, func(c *errmon.Config) {
			c.SourceURL = "https://code.example.com/acme/api/blob/{release}/{path}#L{line}"
			c.Release = "v3"
		})
		serve(sourceApp(d.m), "GET", "/src", nil, nil)
		dashFlush(t, d.m)
		recs := allRecords(t, d.db)
		if len(recs) != 1 {
			t.Fatalf("%d errors stored, want 1", len(recs))
		}
		file, lines := sourceFile(t)
		line := sourcePanicLine(t, lines)
		mask := errmon.DefaultConfig().MaskWith

		api, raw, body := d.apiDetail(t, recs[0].Hash)
		for _, k := range []string{"hash", "traceback", "request_data", "hourly", "occurrences", "first_release", "last_release", "source"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("the API's detail has no %q: %s", k, keysOf(raw))
			}
		}
		if api.Traceback != recs[0].Traceback || api.Count != 1 || len(api.Occurrences) != 1 {
			t.Errorf("the API's detail changed: traceback %q, count %d, %d occurrences", api.Traceback, api.Count, len(api.Occurrences))
		}
		if len(api.Source) < 2 {
			t.Fatalf("source holds %d frames, want the panic's, the handler's and the test's: %s", len(api.Source), body)
		}
		src, _ := raw["source"].([]any)
		if got := strings.Join(keysOf(src[0]), ","); got != "file,function,line,lines,url" {
			t.Errorf("a source entry has the keys %s, want file,function,line,lines,url", got)
		}
		first, _ := src[0].(map[string]any)
		ls, _ := first["lines"].([]any)
		if len(ls) == 0 || strings.Join(keysOf(ls[0]), ",") != "current,number,text" {
			t.Errorf("a source line is %v, want {number, text, current}", ls)
		}
		s := api.Source[0]
		if s.File != file || s.Line != line || !strings.HasSuffix(s.Function, ".sourcePanic") {
			t.Errorf("source[0] is %s at %s:%d, want sourcePanic at %s:%d", s.Function, s.File, s.Line, file, line)
		}
		if want := "https://code.example.com/acme/api/blob/v3/source_context_test.go#L" + strconv.Itoa(line); s.URL != want {
			t.Errorf("source[0].url %q, want %q", s.URL, want)
		}
		if len(s.Lines) != 2*store.SourceContext+1 {
			t.Fatalf("source[0] has %d lines, want %d", len(s.Lines), 2*store.SourceContext+1)
		}
		masked := false
		for i, l := range s.Lines {
			n := line - store.SourceContext + i
			want := lines[n-1]
			if l.Number != n || l.Current != (n == line) {
				t.Errorf("line %d: number %d current %v, want number %d current %v", i, l.Number, l.Current, n, n == line)
			}
			if strings.Contains(want, sourcePassword) {
				masked = true
				if !strings.Contains(l.Text, mask) || strings.Contains(l.Text, sourcePassword) {
					t.Errorf("the secret's line is %q in the API: want it masked", l.Text)
				}
			} else if l.Text != want {
				t.Errorf("line %d is %q, want %q", n, l.Text, want)
			}
		}
		if !masked {
			t.Error("the secret's line is not among source[0]'s lines: the test tests nothing")
		}
		for _, s := range api.Source[1:] {
			cur := 0
			for _, l := range s.Lines {
				if l.Current {
					cur++
					if l.Number != s.Line {
						t.Errorf("%s: the current line is %d, want %d", s.Function, l.Number, s.Line)
					}
				}
			}
			if cur != 1 || s.File == "" || s.Function == "" {
				t.Errorf("source entry %+v: want one current line, a file and a function", s)
			}
		}
		if strings.Contains(body, sourcePassword) {
			t.Error("the API shows the secret written in the source")
		}

		w := d.do("GET", dashPrefix+"/"+recs[0].Hash+"/markdown", nil)
		if w.Code != http.StatusOK {
			t.Fatalf("markdown: %d", w.Code)
		}
		md := w.Body.String()
		var frames string
		for _, b := range markdownFences(md) {
			if strings.Contains(b, "sourcePanic") {
				frames = b
			}
		}
		for _, want := range []string{
			fmt.Sprintf("\t>%5d | %s", line, lines[line-1]),
			fmt.Sprintf("\t %5d | %s", line-1, lines[line-2]),
			fmt.Sprintf("\t %5d | %s", line+1, lines[line]),
			"\thttps://code.example.com/acme/api/blob/v3/source_context_test.go#L" + strconv.Itoa(line),
		} {
			if !strings.Contains(frames, want) {
				t.Errorf("the Markdown's frames block lacks %q:\n%s", want, md)
			}
		}
		if !strings.Contains(frames, mask) || strings.Contains(md, sourcePassword) {
			t.Errorf("the Markdown does not show the secret's line masked:\n%s", md)
		}
		if n := strings.Count(frames, "\t>"); n != len(api.Source) {
			t.Errorf("the Markdown marks %d lines, want one per frame with source (%d)", n, len(api.Source))
		}
	})
}

// TestSourceExportFencedAndBounded: stored lines that hold Markdown and
// HTML (backtick runs longer than the fence would be, emphasis, a tag, a
// line that looks like a closing fence) stay inside the Markdown's fence
// and come back as stored in the API; a traceback of 20 application
// frames, all with stored lines, gives source to the newest 8 only; a
// stored row of more lines than errmon keeps, or of more bytes than the
// dashboard reads, is shown cut to 7 lines and to what was read.
func TestSourceExportFencedAndBounded(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		rec := dashRecord("src-export", 3, time.Minute)
		var tb strings.Builder
		for i := range 20 {
			fmt.Fprintf(&tb, "main.step%d\n\t/app/steps.go:%d\n", i, 100+10*i)
		}
		tb.WriteString("net/http.serverHandler.ServeHTTP\n\t/usr/local/go/src/net/http/server.go:3340\n")
		rec.Traceback = tb.String()
		d.seed(t, rec)
		hostile := []string{"```````", "*not bold* <b>x</b> [link](javascript:alert(1))", "````", "# not a heading", "\tpanic(\"`x`\")", "<script>alert(1)</script>", "``````` end"}
		now := time.Now()
		var srcs []store.ErrorSource
		for i := range 20 {
			text := fmt.Sprintf("step %d line a\nstep %d line b\nstep %d line c\nstep %d line d\nstep %d line e\nstep %d line f\nstep %d line g", i, i, i, i, i, i, i)
			switch i {
			case 0:
				text = strings.Join(hostile, "\n")
			case 1: // more lines than errmon keeps
				text = strings.Repeat("extra line\n", 40)
			case 2: // more bytes than the dashboard reads
				text = strings.Repeat("y", 3*store.MaxSourceBytes)
			}
			srcs = append(srcs, store.ErrorSource{File: "/app/steps.go", Line: 100 + 10*i, Lines: text, CreatedAt: now})
		}
		if err := d.db.Create(&srcs).Error; err != nil {
			t.Fatal(err)
		}

		api, _, _ := d.apiDetail(t, rec.Hash)
		if len(api.Source) != store.MaxSourceFrames {
			t.Fatalf("source holds %d frames, want the newest %d", len(api.Source), store.MaxSourceFrames)
		}
		for i, s := range api.Source {
			if s.Function != "main.step"+strconv.Itoa(i) || s.Line != 100+10*i || s.File != "/app/steps.go" || s.URL != "" {
				t.Errorf("source[%d] is %+v, want main.step%d at /app/steps.go:%d, no url", i, s, i, 100+10*i)
			}
			if len(s.Lines) > 2*store.SourceContext+1 {
				t.Errorf("source[%d] has %d lines, want at most %d", i, len(s.Lines), 2*store.SourceContext+1)
			}
			size := 0
			for _, l := range s.Lines {
				size += len(l.Text)
			}
			if size > store.MaxSourceBytes {
				t.Errorf("source[%d] holds %d bytes, more than the %d read", i, size, store.MaxSourceBytes)
			}
		}
		var got []string
		for j, l := range api.Source[0].Lines {
			got = append(got, l.Text)
			if l.Number != 100-store.SourceContext+j || l.Current != (l.Number == 100) {
				t.Errorf("source[0].lines[%d]: number %d current %v", j, l.Number, l.Current)
			}
		}
		if !slices.Equal(got, hostile) {
			t.Errorf("source[0]'s lines %q, want them as stored %q", got, hostile)
		}
		if n := len(api.Source[1].Lines); n != 2*store.SourceContext+1 {
			t.Errorf("a stored row of 40 lines shows %d, want %d", n, 2*store.SourceContext+1)
		}
		if l := api.Source[2].Lines; len(l) != 1 || len(l[0].Text) != store.MaxSourceBytes {
			t.Errorf("a stored row of %d bytes shows %d lines (%d bytes), want the %d bytes read", 3*store.MaxSourceBytes, len(l), len(l[0].Text), store.MaxSourceBytes)
		}

		w := d.do("GET", dashPrefix+"/"+rec.Hash+"/markdown", nil)
		md := w.Body.String()
		blocks := markdownFences(md)
		var frames string
		for _, b := range blocks {
			if strings.Contains(b, "main.step0") {
				frames = b
			}
		}
		if frames == "" {
			t.Fatalf("no fenced block holds the frames:\n%s", md)
		}
		for j, h := range hostile {
			want := fmt.Sprintf("\t%s%5d | %s", map[bool]string{true: ">", false: " "}[j == store.SourceContext], 100-store.SourceContext+j, h)
			if !strings.Contains(frames, want+"\n") {
				t.Errorf("the frames' fence lacks the stored line %q:\n%s", want, md)
			}
		}
		outside := md
		for _, b := range blocks {
			outside = strings.Replace(outside, b, "", 1)
		}
		for _, h := range []string{"not bold", "<script>", "not a heading", "extra line", "step 5 line"} {
			if strings.Contains(outside, h) {
				t.Errorf("%q is outside the fences:\n%s", h, md)
			}
		}
		// One per frame with source but step2's: its one line read is
		// numbered 117, before its own.
		if n := strings.Count(frames, "\t>"); n != store.MaxSourceFrames-1 {
			t.Errorf("the Markdown marks %d lines, want one per frame with source but step2 (%d)", n, store.MaxSourceFrames-1)
		}
		if !strings.Contains(frames, "main.step7\n\t/app/steps.go:170\n\t   167 | step 7 line a\n") || strings.Contains(frames, "step 8 line") {
			t.Errorf("the Markdown does not show the source of the newest 8 frames, and theirs only:\n%s", frames)
		}
		if strings.Contains(frames, "main.step12") || !strings.Contains(frames, "main.step11") || !strings.Contains(frames, "… 8 more") {
			t.Errorf("the Markdown lists frames beyond its 12, or not 12:\n%s", frames)
		}
		if len(md) > 64<<10 {
			t.Errorf("the Markdown is %d bytes", len(md))
		}
	})
}
