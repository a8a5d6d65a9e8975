package dashboard

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/errmon/errmon/internal/text"
)

// TestShownJSONMatchesIndent checks that, within its bounds, the page's
// view of a context is what indentJSON gave before: the same text.
func TestShownJSONMatchesIndent(t *testing.T) {
	docs := []string{
		`{}`, `[]`, `{"a":1}`, `[1,2,3]`, `{"a":[],"b":{},"c":null,"d":true,"e":-1.5}`,
		`{"body":{"user":{"id":1,"tags":["a","b"]}},"headers":{"Accept":["*/*"]},"method":"POST"}`,
		`{"s":"with \"quotes\", a \\ backslash, \n a newline, \u00e9, \u0026 and <tags>"}`,
		` { "spaced" : [ 1 , { "x" : [ ] } ] } `,
		`{"deep":` + nested("[", "]", 30) + `}`,
	}
	for _, doc := range docs {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		want, _ := text.IndentJSON(v)
		left := 1 << 20
		if got := shownJSON(strings.TrimSpace(doc), 1, &left); got != string(want) {
			t.Errorf("shownJSON(%s) =\n%s\nwant\n%s", doc, got, want)
		}
	}
}

func TestPruneJSON(t *testing.T) {
	deep := func(n int) string { return nested("[", "]", n) }
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"shallow stays as it is", `{"a": [1, 2]}`, `{"a": [1, 2]}`, true},
		{"exactly the cap", deep(maxShownDepth), deep(maxShownDepth), true},
		{"one level more", strings.Repeat("[", maxShownDepth+1) + "1" + strings.Repeat("]", maxShownDepth+1),
			strings.Repeat("[", maxShownDepth) + `"[… 1 more level]"` + strings.Repeat("]", maxShownDepth), true},
		{"two levels more", deep(maxShownDepth + 2),
			strings.Repeat("[", maxShownDepth) + `"[… 2 more levels]"` + strings.Repeat("]", maxShownDepth), true},
		{"9000 deep", `{"j":` + deep(9000) + `}`,
			`{"j":` + strings.Repeat("[", maxShownDepth-1) + `"[… 8937 more levels]"` + strings.Repeat("]", maxShownDepth-1) + `}`, true},
		{"empty containers past the cap stay", strings.Repeat("[", maxShownDepth) + `[],{}` + strings.Repeat("]", maxShownDepth),
			strings.Repeat("[", maxShownDepth) + `[],{}` + strings.Repeat("]", maxShownDepth), true},
		{"brackets in strings do not count", `{"s":"` + strings.Repeat("[", 200) + `"}`, `{"s":"` + strings.Repeat("[", 200) + `"}`, true},
		{"not closed", strings.Repeat("[", 100), "", false},
		{"trailing text", `{"a":1} x`, "", false},
	}
	for _, tc := range tests {
		got, ok := pruneJSON(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: pruneJSON = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
		if ok && !json.Valid([]byte(got)) {
			t.Errorf("%s: pruneJSON gave invalid JSON", tc.name)
		}
	}
	for in, want := range map[string]string{
		"":                       `{}`,
		"not json":               `{"raw":"not json"}`,
		`[1]`:                    `{"raw":"[1]"}`,
		`{"a":1}`:                `{"a":1}`,
		`{"a":<}`:                `{"raw":"{\"a\":<}"}`,
		`{"a":` + deep(70) + `}`: `{"a":` + strings.Repeat("[", 63) + `"[… 7 more levels]"` + strings.Repeat("]", 63) + `}`,
	} {
		if got := string(apiContext(in, false)); got != want {
			t.Errorf("apiContext(%.40q) = %.200s, want %.200s", in, got, want)
		}
	}
	if got := string(apiContext(`{"a":"`+strings.Repeat("x", 100), true)); !strings.Contains(got, `"truncated":true`) || !strings.Contains(got, `"raw":"{\"a\":\"xxx`) {
		t.Errorf("apiContext of a cut read = %s", got)
	}
}

// TestRequestContextBudget checks that a context's entries stop at the
// budget and say so, and that a context that is not an object is shown
// as text within the budget.
func TestRequestContextBudget(t *testing.T) {
	var keys []string
	for i := 0; i < 2000; i++ {
		keys = append(keys, fmt.Sprintf(`"key%04d":"%s"`, i, strings.Repeat("v", 100)))
	}
	data := "{" + strings.Join(keys, ",") + "}"
	entries, raw := requestContext(data, false, 16<<10, true)
	if n := len(entries); n < 50 || n > 200 {
		t.Errorf("%d entries shown of a 16 KB budget", n)
	}
	last := entries[len(entries)-1]
	if last.Key != "…" || !strings.Contains(last.Text, "more keys not shown") {
		t.Errorf("last entry %+v", last)
	}
	if len(raw) > 16<<10+len(cutNote) || !strings.HasSuffix(raw, cutNote) {
		t.Errorf("raw view of %d bytes, ends %q", len(raw), raw[max(0, len(raw)-100):])
	}
	entries, _ = requestContext(strings.Repeat(`"<`, 50<<10), false, 16<<10, false)
	if len(entries) != 1 || entries[0].Key != "raw" || htmlCost(entries[0].Text) > 16<<10+htmlCost(cutNote) {
		t.Errorf("text context: %d entries, %d bytes", len(entries), len(entries[0].Text))
	}
	entries, _ = requestContext(`{"a":"`+strings.Repeat("x", 100), true, 16<<10, false)
	if len(entries) != 1 || !strings.Contains(entries[0].Text, "characters were read") {
		t.Errorf("cut context: %+v", entries)
	}
}

// FuzzJSONView checks that the views never panic, that the API's view is
// always a JSON object, and that the page's view stays within its budget.
func FuzzJSONView(f *testing.F) {
	f.Add(`{"j":` + nested("[", "]", 100) + `}`)
	f.Add(`{"j":` + nested(`{"a":`, "}", 80) + `}`)
	f.Add(`{"s":"` + strings.Repeat(`\"<&`, 2000) + `"}`)
	f.Add(strings.Repeat("[", 300))
	f.Add(`{"a":[1,{"b":"c"}],"headers":{"X":["1","2"]},"k\"":"\u00e9"}`)
	f.Add(`{"a":[}`)
	f.Add(`{"a" 1}`)
	f.Add(`{1:2}`)
	f.Fuzz(func(t *testing.T, data string) {
		var obj map[string]any
		if got := apiContext(data, false); json.Unmarshal(got, &obj) != nil {
			t.Fatalf("apiContext(%q) = %q, not a JSON object", data, got)
		}
		const budget = 4 << 10
		entries, raw := requestContext(data, false, budget, true)
		size := 0
		for _, e := range entries {
			size += htmlCost(e.Key) + htmlCost(e.Text) + htmlCost(e.JSON)
			for _, r := range e.Table {
				size += htmlCost(r[0]) + htmlCost(r[1])
			}
		}
		if limit := budget + 4*htmlCost(cutNote) + 200; size > limit || htmlCost(raw) > limit {
			t.Fatalf("views of %d and %d bytes for a budget of %d", size, htmlCost(raw), budget)
		}
	})
}
func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}
