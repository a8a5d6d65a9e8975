package dashboard

import (
	"strings"
	"testing"
)

// TestBreadcrumbsOf: the detail page's view of stored breadcrumbs, in
// order, and of what another writer may have stored instead.
func TestBreadcrumbsOf(t *testing.T) {
	data := `{"method":"GET","breadcrumbs":[` +
		`{"t":"2026-01-02T03:04:05.123456789Z","level":"INFO","message":"loading","attrs":{"id":"7","tags":["a","b"]}},` +
		`{"t":"2026-01-02T03:04:05.2Z","level":"SQL","sql":"SELECT * FROM t WHERE id = ?","ms":1.25,"rows":3},` +
		`{"t":"x","level":"WARN","message":"nested","attrs":{"g":{"k":1}}},` +
		`{"t":"2026-01-02T03:04:06Z","level":"SQL","sql":"UPDATE t","ms":0.5,"rows":1,"error":"locked"},` +
		`"not an object"],"breadcrumbs_dropped":4}`
	v := breadcrumbsOf(data, false, 64<<10)
	if v == nil || len(v.Items) != 5 || v.Dropped != 4 {
		t.Fatalf("view %+v", v)
	}
	it := v.Items
	if it[0].Time != "03:04:05.123" || it[0].Level != "INFO" || it[0].Text != "loading" || len(it[0].Attrs) != 2 || it[0].Attrs[1] != [2]string{"tags", "a, b"} {
		t.Errorf("a log record: %+v", it[0])
	}
	if !it[1].SQL || it[1].Facts != "1.25 ms · 3 rows" || it[1].Class != "" {
		t.Errorf("a statement: %+v", it[1])
	}
	if it[2].Time != "x" || it[2].Class != "regr" || !strings.Contains(it[2].JSON, `"k": 1`) || it[2].Attrs != nil {
		t.Errorf("nested attributes: %+v", it[2])
	}
	if it[3].Error != "locked" || it[3].Facts != "0.5 ms · 1 row" {
		t.Errorf("a failed statement: %+v", it[3])
	}
	if it[4].Level != "?" || it[4].Text != `"not an object"` {
		t.Errorf("not an object: %+v", it[4])
	}
	for _, none := range []string{`{"method":"GET"}`, `{"breadcrumbs":"text"}`, `{"breadcrumbs":[]}`, `not json`} {
		if v := breadcrumbsOf(none, false, 64<<10); v != nil {
			t.Errorf("%s: %+v, want none", none, v)
		}
	}
	if v := breadcrumbsOf(data, true, 64<<10); v != nil {
		t.Errorf("a context read cut short: %+v", v)
	}
	// A small budget: what does not fit is counted, the page stays small.
	if v := breadcrumbsOf(data, false, 200); v == nil || len(v.Items) >= 5 || v.Dropped != 4 || v.Unshown != int64(5-len(v.Items)) {
		t.Errorf("within 200 bytes: %+v", v)
	}
	// In a context's entries they come last, after the body, whose room
	// on the page they must not take.
	entries, _ := requestContext(`{"breadcrumbs":[{"level":"INFO"}],"breadcrumbs_dropped":1,"json":{"a":1},"method":"GET","zeta":2}`, false, pageContextBudget, false)
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key)
	}
	if got := strings.Join(keys, " "); got != "method json zeta breadcrumbs breadcrumbs_dropped" {
		t.Errorf("entries %q", got)
	}
	if got := withoutCrumbs([]ctxEntry{{Key: "method"}, {Key: "breadcrumbs"}, {Key: "breadcrumbs_dropped"}}); len(got) != 1 || got[0].Key != "method" {
		t.Errorf("withoutCrumbs: %+v", got)
	}
}
