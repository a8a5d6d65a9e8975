package tests

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDashboardMarkdown: GET {hash}/markdown is the error as Markdown in a
// plain-text page, with the message fenced so that nothing in it is read
// as Markdown, and the detail page links to it.
func TestDashboardMarkdown(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		rec := dashRecord("md", 42, time.Minute)
		rec.Message = "boom ``` *not bold* <b>x</b>"
		d.seed(t, rec)
		w := d.do("GET", dashPrefix+"/"+rec.Hash+"/markdown", nil)
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("markdown: %d %q", w.Code, w.Header().Get("Content-Type"))
		}
		body := w.Body.String()
		for _, want := range []string{
			"- **Occurrences:** 42,", "- **Request:** `GET` `/items/:id` (path `/items/md`)", "- **Fingerprint:** `" + rec.Hash + "`", "- **Culprit:** `main.handler`",
			"### `errors.errorString`: ````boom ``` *not bold* <b>x</b>````",
			"\n````\nboom ``` *not bold* <b>x</b>\n````\n", "- **Status:** open, 0 regressions",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("markdown lacks %q:\n%s", want, body)
			}
		}
		if page := d.do("GET", dashPrefix+"/"+rec.Hash, nil).Body.String(); !strings.Contains(page, `href="./`+rec.Hash+`/markdown"`) {
			t.Error("the detail page has no link to the Markdown")
		}
		if w := d.do("GET", dashPrefix+"/"+dashHash("none")+"/markdown", nil); w.Code != http.StatusNotFound {
			t.Errorf("markdown of no error: %d", w.Code)
		}
		if w := d.do("GET", dashPrefix+"/"+rec.Hash+"/delete", nil); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET of an action: %d, want 405", w.Code)
		}
	})
}
