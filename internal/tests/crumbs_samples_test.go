package tests

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
)

// The breadcrumbs of each sample in the detail page's last occurrences:
// shown as breadcrumbs (folded), as the latest occurrence's are in their
// own section, not as a context entry.

// sampleRows cuts the last occurrences of a detail page into one chunk of
// HTML per sample, newest first.
func sampleRows(t *testing.T, page string) []string {
	t.Helper()
	_, list, ok := strings.Cut(page, "<h2>Last occurrences")
	if !ok {
		t.Fatalf("the detail page has no last occurrences:\n%s", page)
	}
	list, _, _ = strings.Cut(list, "</section>")
	return strings.Split(strings.ReplaceAll(list, "<wbr>", ""), `<td class="req">`)[1:]
}

// sampleCrumbs returns the breadcrumb rows of a sample's chunk (one chunk
// of HTML each, in order) and the summary of their <details>.
func sampleCrumbs(t *testing.T, row string) (summary string, crumbs []string) {
	t.Helper()
	_, in, ok := strings.Cut(row, `<details class="sample-crumbs"><summary>`)
	if !ok {
		return "", nil
	}
	summary, in, _ = strings.Cut(in, "</summary>")
	in, _, _ = strings.Cut(in, "</table>")
	if !strings.HasPrefix(in, "\n<table class=\"occ trail\">") {
		t.Errorf("a sample's breadcrumbs are not the breadcrumbs' table: %.200s", in)
	}
	_, in, _ = strings.Cut(in, "<tbody>")
	return summary, strings.Split(in, `<td class="level">`)[1:]
}

// TestCrumbsOfEverySample: three failed requests (three samples) each
// show their own five breadcrumbs in the last occurrences, in order, with
// their levels, messages, SQL and attributes (masked as stored), folded
// in a <details>, and not as a "breadcrumbs" context entry.
func TestCrumbsOfEverySample(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		srv, tm := crumbsApp(t, tdb.DB)
		for _, id := range []string{"101", "102", "103"} {
			resp, err := http.Get(srv.URL + "/accounts/" + id)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		rec := recordWithMessage(t, tm.records(t), "crumbs: the account view failed")
		page := crumbsGet(t, srv.URL+"/dev/error/"+rec.Hash)
		rows := sampleRows(t, page)
		if len(rows) != 3 {
			t.Fatalf("%d samples in the last occurrences, want 3", len(rows))
		}
		mask := errmon.DefaultConfig().MaskWith
		seen := map[string]bool{}
		for i, row := range rows {
			_, path, _ := strings.Cut(row, "<code>/accounts/")
			id, _, _ := strings.Cut(path, "</code>")
			seen[id] = true
			summary, crumbs := sampleCrumbs(t, row)
			if summary != "5 breadcrumbs" {
				t.Errorf("sample %d (%s): summary %q, want \"5 breadcrumbs\"", i, id, summary)
			}
			want := [][]string{
				{`<span class="tag ">INFO</span>`, "loading account", "<dt>id</dt><dd><code>" + id + "</code>", "<dt>password</dt><dd><code>" + mask},
				{`<span class="tag ">SQL</span>`, "<code>SELECT", "crumb_accounts", "1 row"},
				{`<span class="tag regr">WARN</span>`, "account cache miss", "&#34;key&#34;: &#34;acct:7&#34;", "&#34;secret&#34;: &#34;" + mask},
				{`<span class="tag ">SQL</span>`, "SELECT count(*) FROM crumb_accounts WHERE name = ? AND id &gt; ?"},
				{`<span class="tag ">INFO</span>`, "about to fail", "<dt>found</dt><dd><code>1</code>"},
			}
			if len(crumbs) != len(want) {
				t.Fatalf("sample %d (%s): %d breadcrumbs shown, want %d:\n%s", i, id, len(crumbs), len(want), row)
			}
			for j, c := range crumbs {
				for _, w := range want[j] {
					if !strings.Contains(c, w) {
						t.Errorf("sample %d (%s), breadcrumb %d lacks %q:\n%s", i, id, j, w, c)
					}
				}
			}
			if strings.Contains(row, "<dt>breadcrumbs</dt>") || strings.Contains(row, "<dt>breadcrumbs_dropped</dt>") {
				t.Errorf("sample %d (%s) shows its breadcrumbs as a context entry:\n%s", i, id, row)
			}
			if !strings.Contains(row, "<summary>context</summary>") || !strings.Contains(row, "<dt>method</dt>") {
				t.Errorf("sample %d (%s) lost the rest of its context:\n%s", i, id, row)
			}
		}
		if len(seen) != 3 || !seen["101"] || !seen["102"] || !seen["103"] {
			t.Errorf("the samples shown are %v, want 101, 102 and 103", seen)
		}
		for _, secret := range []string{"hunter2-crumbs", "s3cr3t-crumbs", "alice-crumb-value", "bob-crumb-literal", "pw-crumb-stored"} {
			if strings.Contains(page, secret) {
				t.Errorf("the detail page shows %q", secret)
			}
		}
	})
}

// TestSampleCrumbsBoundedAndEscaped: a sample holding more breadcrumbs
// than its share of the page fits (80 of 600 bytes, markup in them) shows
// what fits, in order, and counts the rest apart from those its writer
// dropped;
// one with few says how many older ones were not kept; markup in them is
// text; a sample without breadcrumbs shows none.
func TestSampleCrumbsBoundedAndEscaped(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		rec := dashRecord("sample-crumbs", 3, time.Minute)
		d.seed(t, rec)
		filler := strings.Repeat("lorem ipsum ", 45)
		var many []string
		for i := range 80 {
			many = append(many, fmt.Sprintf(`{"t":"2026-01-02T03:04:%02d.5Z","level":"INFO","message":"step %02d <script>alert(%d)</script> %s","attrs":{"n":%d}}`, i%60, i, i, filler, i))
		}
		samples := []store.ErrorOccurrence{
			{Hash: rec.Hash, SeenAt: rec.LastSeen, Path: "/many", Method: "GET",
				RequestData: `{"method":"GET","breadcrumbs":[` + strings.Join(many, ",") + `],"breadcrumbs_dropped":3}`},
			{Hash: rec.Hash, SeenAt: rec.LastSeen.Add(-time.Second), Path: "/few", Method: "GET",
				RequestData: `{"method":"GET","breadcrumbs":[{"t":"2026-01-02T03:04:05Z","level":"ERROR","message":"<img src=x onerror=alert(1)>"},` +
					`{"t":"2026-01-02T03:04:06Z","level":"SQL","sql":"DELETE FROM t WHERE a = ?","ms":2.5,"rows":0,"error":"<b>locked</b>"}],"breadcrumbs_dropped":7}`},
			{Hash: rec.Hash, SeenAt: rec.LastSeen.Add(-2 * time.Second), Path: "/none", Method: "GET", RequestData: `{"method":"GET"}`},
		}
		if err := d.db.Create(&samples).Error; err != nil {
			t.Fatal(err)
		}
		w := d.do("GET", dashPrefix+"/"+rec.Hash, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("detail: %d", w.Code)
		}
		page := w.Body.String()
		byPath := map[string]string{}
		for _, row := range sampleRows(t, page) {
			_, path, _ := strings.Cut(row, "<code>")
			path, _, _ = strings.Cut(path, "</code>")
			byPath[path] = row
		}
		if len(byPath) != 3 || byPath["/many"] == "" || byPath["/few"] == "" || byPath["/none"] == "" {
			t.Fatalf("samples %d, want /many, /few and /none", len(byPath))
		}

		summary, crumbs := sampleCrumbs(t, byPath["/many"])
		if len(crumbs) == 0 || len(crumbs) >= 80 {
			t.Fatalf("the sample of 80 breadcrumbs shows %d", len(crumbs))
		}
		for j, c := range crumbs {
			if j == len(crumbs)-1 && strings.Contains(c, "[cut: the page shows part of this context") { // the budget ran out in it
				if !strings.Contains(c, fmt.Sprintf("step %02d &lt;", j)) {
					t.Errorf("the last breadcrumb of the large sample, cut, is not step %d:\n%.300s", j, c)
				}
				continue
			}
			if !strings.Contains(c, fmt.Sprintf("step %02d &lt;script&gt;alert(%d)&lt;/script&gt;", j, j)) || !strings.Contains(c, "<dt>n</dt><dd><code>"+strconv.Itoa(j)+"</code>") {
				t.Errorf("breadcrumb %d of the large sample is not step %d, escaped:\n%.300s", j, j, c)
			}
		}
		if want := fmt.Sprintf(`%d breadcrumbs <span class="muted">· 3 older ones not kept</span> <span class="muted">· %d more not shown here (the API has them)</span>`,
			len(crumbs), 80-len(crumbs)); summary != want {
			t.Errorf("the large sample's summary %q, want %q", summary, want)
		}
		if n := len(byPath["/many"]); n > 3*12<<10 {
			t.Errorf("the large sample takes %d bytes of the page", n)
		}

		summary, crumbs = sampleCrumbs(t, byPath["/few"])
		if summary != `2 breadcrumbs <span class="muted">· 7 older ones not kept</span>` || len(crumbs) != 2 {
			t.Errorf("the small sample: summary %q, %d breadcrumbs", summary, len(crumbs))
		} else {
			if !strings.Contains(crumbs[0], `<span class="tag open">ERROR</span>`) || !strings.Contains(crumbs[0], "&lt;img src=x onerror=alert(1)&gt;") {
				t.Errorf("the ERROR breadcrumb:\n%s", crumbs[0])
			}
			if !strings.Contains(crumbs[1], "<code>DELETE FROM t WHERE a = ?</code>") || !strings.Contains(crumbs[1], "2.5 ms · 0 rows") ||
				!strings.Contains(crumbs[1], `<div class="crumb-error">&lt;b&gt;locked&lt;/b&gt;</div>`) {
				t.Errorf("the SQL breadcrumb:\n%s", crumbs[1])
			}
		}
		if s, c := sampleCrumbs(t, byPath["/none"]); s != "" || c != nil {
			t.Errorf("a sample without breadcrumbs shows %q %d", s, len(c))
		}
		for _, raw := range []string{"<script>", "<img src=x", "<b>locked"} {
			if strings.Contains(page, raw) {
				t.Errorf("the page holds %q unescaped", raw)
			}
		}
	})
}
