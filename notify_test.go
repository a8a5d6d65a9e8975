package errmon

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/text"
)

// White-box tests of the alert's composition: what compose and
// alertContext make of a stored row, with no database and no SMTP server.
// The alert policy and its delivery through a real SMTP conversation are
// tested in internal/tests (notify_test.go there).

// ntComposer is a monitor that only composes alerts: the Config that New
// would keep (defaults filled, validated but for the database), and nothing
// running. compose reads nothing else of a Monitor.
func ntComposer(t testing.TB, tweak func(*Config)) *Monitor {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Output = io.Discard
	cfg.RecipientEmail = []string{"team@example.com", "oncall@example.com"}
	cfg.EmailSender = "errmon@example.com"
	cfg.SubjectPrefix = "shop"
	cfg.BaseURL = "https://shop.example.com"
	if tweak != nil {
		tweak(&cfg)
	}
	cfg = cfg.clone().withDefaults()
	if err := cfg.validate(false); err != nil {
		t.Fatalf("config: %v", err)
	}
	return &Monitor{cfg: cfg, log: cfg.Logger}
}

// TestNotifySubjectAndLink: the subject is one line within
// maxSubjectBytes, with the prefix, the method and path when there are
// some; the link joins BaseURL and URLPrefix, and is empty without a
// BaseURL.
func TestNotifySubjectAndLink(t *testing.T) {
	cases := []struct {
		prefix, base, urlPrefix string
		rec                     ErrorRecord
		subject, link           string
	}{
		{"shop", "https://shop.example.com/", "/dev/error/", ErrorRecord{Hash: "h1", Method: "GET", Path: "/a", ExceptionName: "E", Message: "m"},
			"[shop] [New] [GET] /a E: m", "https://shop.example.com/dev/error/h1"},
		{"", "", "/dev/error", ErrorRecord{Hash: "h2", ExceptionName: "E", Message: "line one\nline\ttwo\r\nBcc: x@example.com"},
			"[New] E: line one line two Bcc: x@example.com", ""},
		{"p", "https://x.example.com/svc", "/errors/", ErrorRecord{Hash: "h3", Method: "PUT", Path: "/b", ExceptionName: "E"},
			"[p] [New] [PUT] /b E", "https://x.example.com/svc/errors/h3"},
		{"", "", "/dev/error", ErrorRecord{ExceptionName: "E", Message: strings.Repeat("é", 300)}, "", ""},
	}
	for i, tc := range cases {
		m := ntComposer(t, func(c *Config) {
			c.SubjectPrefix, c.BaseURL, c.URLPrefix = tc.prefix, tc.base, tc.urlPrefix
		})
		n := m.compose(&tc.rec, ReasonNew, 0)
		if tc.subject != "" && n.Subject != tc.subject {
			t.Errorf("case %d: subject %q, want %q", i, n.Subject, tc.subject)
		}
		if len(n.Subject) > maxSubjectBytes || strings.ContainsAny(n.Subject, "\r\n") {
			t.Errorf("case %d: subject of %d bytes or on several lines: %q", i, len(n.Subject), n.Subject)
		}
		if n.Link != tc.link {
			t.Errorf("case %d: link %q, want %q", i, n.Link, tc.link)
		}
	}
}

// ntShapes is a request context of about 45 KB in several nesting shapes:
// deep arrays, deep objects, a wide object and a long string.
func ntShapes() string {
	var b strings.Builder
	b.WriteString(`{"method":"POST","url":"/api/import","route":"/api/import","body":{"deep_arrays":`)
	b.WriteString(strings.Repeat("[", 3000) + `"bottom"` + strings.Repeat("]", 3000))
	b.WriteString(`,"deep_objects":` + strings.Repeat(`{"a":`, 2000) + `"bottom"` + strings.Repeat("}", 2000))
	b.WriteString(`,"long":"` + strings.Repeat("long ", 2400) + `","wide":{`)
	for i := 0; i < 1200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"key%04d":%d`, i, i)
	}
	b.WriteString(`}}}`)
	return b.String()
}

// TestNotifyAlertBounded: the alert for a stored row is bounded in size and
// in what composing it allocates, whatever the row holds (rows may come
// from older versions or other processes: nothing in them is trusted to be
// capped).
func TestNotifyAlertBounded(t *testing.T) {
	const (
		maxText  = 48 << 10  // every part capped, plus the template
		maxHTML  = 256 << 10 // the same, HTML-escaped
		maxAlloc = 16 << 20  // bytes allocated by one compose
	)
	deep := strings.Repeat("[", 9000) + strings.Repeat("]", 9000) // 18 KB, 9,000 levels
	shapes := ntShapes()
	if len(shapes) < 45_000 || !json.Valid([]byte(shapes)) {
		t.Fatalf("the shapes body is %d bytes (valid: %v), want 45 KB of JSON", len(shapes), json.Valid([]byte(shapes)))
	}
	longLines := strings.Repeat("main.handler(...)\n\t/src/app/main.go:42 +0x1d\n", 50_000) // 2.3 MB
	cases := []struct {
		name string
		rec  ErrorRecord
		want []string // in the text part
	}{
		{"arrays nested 9,000 deep", ErrorRecord{RequestData: deep}, []string{"[…]"}},
		{"45 KB in several shapes", ErrorRecord{RequestData: shapes},
			[]string{`"deep_arrays": [`, `"deep_objects": {`, "{…}", `"key0000": 0`, `"long": "long long`, "bytes cut]"}},
		{"objects nested 100,000 deep", ErrorRecord{RequestData: strings.Repeat(`{"k":`, 100_000) + "1" + strings.Repeat("}", 100_000)},
			[]string{"{…}"}},
		{"a context that is not JSON", ErrorRecord{RequestData: strings.Repeat("not json ", 200_000)}, []string{"not json", "bytes cut]"}},
		{"a huge traceback, message and path", ErrorRecord{
			Traceback: longLines, Message: strings.Repeat("boom ", 400_000), Path: "/" + strings.Repeat("p", 1<<20),
			ExceptionName: strings.Repeat("E", 1<<20), Method: strings.Repeat("M", 1<<20), RequestData: `{"ok":true}`,
		}, []string{"main.handler(...)", "boom boom", `"ok": true`}},
		{"a traceback on one line", ErrorRecord{Traceback: strings.Repeat("x", 3<<20)}, []string{"xxxx", "bytes cut]"}},
		{"text that HTML escaping grows", ErrorRecord{
			Message: strings.Repeat(`"`, 1<<20), Traceback: strings.Repeat("<", 1<<20), RequestData: strings.Repeat(`'`, 1<<20),
			ExceptionName: strings.Repeat("&", 1<<20), Path: strings.Repeat(`"`, 1<<20),
		}, []string{`"""`, "<<<", "'''"}},
	}
	m := ntComposer(t, func(c *Config) { c.SubjectPrefix = "shop" })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.rec
			rec.Hash = "h"
			if rec.ExceptionName == "" {
				rec.ExceptionName = "*errors.errorString"
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			n := m.compose(&rec, ReasonNew, 0)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			if testing.Verbose() && os.Getenv("ERRMON_SHOW_ALERT") != "" {
				t.Logf("text part:\n%s", n.Text)
			}
			t.Logf("text %d B, html %d B, subject %d B, allocated %d B", len(n.Text), len(n.HTML), len(n.Subject), alloc)
			if len(n.Text) > maxText || len(n.HTML) > maxHTML || len(n.Subject) > maxSubjectBytes {
				t.Errorf("text %d bytes (max %d), html %d (max %d), subject %d (max %d)",
					len(n.Text), maxText, len(n.HTML), maxHTML, len(n.Subject), maxSubjectBytes)
			}
			if alloc > maxAlloc {
				t.Errorf("composing allocated %d bytes, want at most %d", alloc, maxAlloc)
			}
			for _, want := range tc.want {
				if !strings.Contains(n.Text, want) {
					t.Errorf("text part lacks %q:\n%s", want, n.Text)
				}
			}
			if !strings.Contains(n.HTML, "</html>") || !utf8.ValidString(n.Text) || !utf8.ValidString(n.HTML) {
				t.Errorf("html part incomplete or invalid UTF-8")
			}
		})
	}
}

// TestNotifyAlertContextAsBefore: for the contexts errmon stores (compact
// JSON from marshalJSON) that fit the bounds, the bounded view is the
// indented JSON the alert always showed.
func TestNotifyAlertContextAsBefore(t *testing.T) {
	values := []any{
		map[string]any{},
		[]any{},
		map[string]any{"method": "POST", "url": "/a?password=" + defaultMaskWith, "headers": map[string]any{"Accept": []any{"*/*"}},
			"body": map[string]any{"items": []any{1.5, -2e-7, true, false, nil, "x"}, "empty": map[string]any{}, "none": []any{}}},
		map[string]any{"text": "quotes \" \\ \n\t é 日本 <b>&amp;</b> \u2028 \x01"},
		[]any{[]any{[]any{map[string]any{"deep": []any{[]any{"nine"}}}}}},
		"just a string",
		42.0,
	}
	for i, v := range values {
		stored, err := text.MarshalJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		var back any
		if err := json.Unmarshal(stored, &back); err != nil {
			t.Fatal(err)
		}
		want, err := text.IndentJSON(back)
		if err != nil {
			t.Fatal(err)
		}
		if got := alertContext(string(stored)); got != string(want) {
			t.Errorf("case %d: %s\nshown as\n%s\nwant\n%s", i, stored, got, want)
		}
	}
}

// FuzzAlertContext: whatever the stored context, its view is valid UTF-8
// within alertContextBytes, and JSON that fits the bounds is shown as
// indentJSON shows it.
func FuzzAlertContext(f *testing.F) {
	for _, seed := range []string{``, `{}`, `[]`, `{"a":[1,2,{"b":null}]}`, `"\u00e9\""`, `[[[[[[[[[[[[1]]]]]]]]]]]]`,
		`{"a":`, `[1,]`, `{"a" 1}`, `nul`, "\"\xff\x00\"", `1 2`, `{"k":"` + strings.Repeat("v", 2000) + `"}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := alertContext(raw)
		if len(got) > alertContextBytes || !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("view of %q: %d bytes, valid UTF-8 %v: %q", raw, len(got), utf8.ValidString(got), got)
		}
		var v any
		if len(raw) > 1000 || json.Unmarshal([]byte(raw), &v) != nil || ntDepth(v) >= alertContextDepth {
			return
		}
		// Compare on the stored form: what errmon writes is compact and
		// canonical.
		stored, err := text.MarshalJSON(v)
		if err != nil {
			return
		}
		want, _ := text.IndentJSON(v)
		if got := alertContext(string(stored)); got != sanitize(string(want), alertContextBytes) {
			t.Fatalf("view of %s:\n%s\nwant\n%s", stored, got, want)
		}
	})
}

// ntDepth is how deep v nests objects and arrays.
func ntDepth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, ntDepth(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, ntDepth(e))
		}
		return d + 1
	}
	return 0
}
