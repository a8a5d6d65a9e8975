package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

func TestDefaultContextBuilderContent(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, nil)
	r := tm.engine(false)
	r.POST("/users/:id/notes", func(c *gin.Context) {
		var v map[string]any
		_ = c.ShouldBindJSON(&v)
		panic("context case")
	})
	body := `{"note":"a&b <c> \"d\"","n":12345678901234567890}`
	w := serve(r, "POST", "/users/42/notes?page=2&tag=x&tag=y", strings.NewReader(body), map[string]string{
		"Content-Type": "application/json",
		"User-Agent":   "tester/1.0",
	})
	if w.Code != 500 {
		t.Fatalf("status %d", w.Code)
	}
	recs := tm.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d rows", len(recs))
	}
	raw := recs[0].RequestData
	data := decodeRequestData(t, raw)
	for _, tc := range []struct {
		path []any
		want string
	}{
		{[]any{"method"}, "POST"},
		{[]any{"url"}, "/users/42/notes?page=2&tag=x&tag=y"},
		{[]any{"route"}, "/users/:id/notes"},
		{[]any{"host"}, "example.com"},
		{[]any{"client_ip"}, "192.0.2.1"},
		{[]any{"params", "id"}, "42"},
		{[]any{"query", "page"}, "2"},
		{[]any{"query", "tag", 1}, "y"},
		{[]any{"headers", "User-Agent"}, "tester/1.0"},
		{[]any{"json", "note"}, `a&b <c> "d"`},
		{[]any{"json", "n"}, "12345678901234567890"}, // numbers kept exactly
	} {
		if v, ok := jsonAt(data, tc.path...); !ok || toString(v) != tc.want {
			t.Errorf("at %v: %v, want %q\n%s", tc.path, v, tc.want, raw)
		}
	}
	// Stored JSON is readable: & < > are not escaped as \u0026 and the like.
	if strings.Contains(raw, `\u0026`) || strings.Contains(raw, `\u003c`) || strings.Contains(raw, `\u003e`) {
		t.Errorf("RequestData escapes HTML characters: %s", raw)
	}
	if !strings.Contains(raw, `a&b <c>`) {
		t.Errorf("RequestData lacks the raw text: %s", raw)
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}

func TestBodyCapture(t *testing.T) {
	withGinMode(t, gin.TestMode)
	const capBytes = 1024
	big := bytes.Repeat([]byte("x"), 1<<20)
	for _, tc := range []struct {
		name      string
		body      string
		ctype     string
		track     bool // Track only, no Middleware
		read      func(c *gin.Context) int
		wantRead  int
		wantKey   string // where the body shows in the context
		wantTrunc bool
	}{
		{"JSON bound, then panic", `{"a":"b"}`, "application/json", false,
			func(c *gin.Context) int { var v map[string]any; _ = c.ShouldBindJSON(&v); return len(v) }, 1, "json", false},
		{"JSON not read", `{"a":"b"}`, "application/json", false, nil, 0, "json", false},
		{"JSON half read", `{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}`, "application/json", false,
			func(c *gin.Context) int { p := make([]byte, 5); n, _ := io.ReadFull(c.Request.Body, p); return n }, 5, "json", false},
		{"JSON bound, Track only", `{"a":"b"}`, "application/json", true,
			func(c *gin.Context) int { var v map[string]any; _ = c.ShouldBindJSON(&v); return len(v) }, 1, "json", false},
		{"JSON not read, Track only", `{"a":"b"}`, "application/json", true, nil, 0, "json", false},
		{"1 MB read whole", string(big), "text/plain", false,
			func(c *gin.Context) int { b, _ := io.ReadAll(c.Request.Body); return len(b) }, 1 << 20, "body", true},
		{"1 MB read whole, Track only", string(big), "text/plain", true,
			func(c *gin.Context) int { b, _ := io.ReadAll(c.Request.Body); return len(b) }, 1 << 20, "body", true},
		{"1 MB not read", string(big), "text/plain", false, nil, 0, "body", true},
		{"1 MB via GetRawData", string(big), "text/plain", false,
			func(c *gin.Context) int { b, _ := c.GetRawData(); return len(b) }, 1 << 20, "body", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, func(c *errmon.Config) { c.MaxBodyBytes = capBytes })
			r := tm.engine(tc.track)
			got := -1
			h := func(c *gin.Context) {
				if tc.read != nil {
					got = tc.read(c)
				}
				panic("body case")
			}
			if tc.track {
				h = tm.Track(h)
			}
			r.POST("/b", h)
			if w := serve(r, "POST", "/b", strings.NewReader(tc.body), map[string]string{"Content-Type": tc.ctype}); w.Code != 500 {
				t.Fatalf("status %d", w.Code)
			}
			if tc.read != nil && got != tc.wantRead {
				t.Errorf("handler read %d, want %d", got, tc.wantRead)
			}
			recs := tm.records(t)
			if len(recs) != 1 {
				t.Fatalf("%d rows", len(recs))
			}
			data := decodeRequestData(t, recs[0].RequestData)
			v, ok := data[tc.wantKey]
			if !ok {
				t.Fatalf("no %q in context: %s", tc.wantKey, recs[0].RequestData)
			}
			if tc.wantKey == "body" {
				s, _ := v.(string)
				if len(s) != capBytes || strings.Trim(s, "x") != "" {
					t.Errorf("body of %d bytes stored, want %d bytes of the request", len(s), capBytes)
				}
			}
			if trunc, _ := data["body_truncated"].(bool); trunc != tc.wantTrunc {
				t.Errorf("body_truncated %v, want %v", trunc, tc.wantTrunc)
			}
		})
	}
}

// TestHandlerSeesWholeBody checks the capture is invisible to a handler that
// does not fail, for both Middleware and Track.
func TestHandlerSeesWholeBody(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, func(c *errmon.Config) { c.MaxBodyBytes = 100 })
	r := tm.engine(false)
	big := bytes.Repeat([]byte("0123456789"), 100_000)
	r.POST("/ok", tm.Track(func(c *gin.Context) {
		b, err := io.ReadAll(c.Request.Body)
		if err != nil || !bytes.Equal(b, big) {
			c.Status(400)
			return
		}
		c.Status(204)
	}))
	for i := 0; i < 3; i++ { // pooled captures are reused cleanly
		if w := serve(r, "POST", "/ok", bytes.NewReader(big), nil); w.Code != 204 {
			t.Fatalf("status %d: the handler did not see the whole body", w.Code)
		}
	}
	if recs := tm.records(t); len(recs) != 0 {
		t.Errorf("rows %v", recs)
	}
}

type customBuilder struct{}

func (customBuilder) BuildContext(c *gin.Context, mask func(string) (bool, string)) map[string]any {
	_, with := mask("password")
	return map[string]any{
		"tenant":   c.GetHeader("X-Tenant"),
		"password": "builder-secret-1", // a builder that forgets to mask
		"masked":   with,
		"nested":   map[string]any{"secret": "builder-secret-2", "note": "password=builder-secret-3"},
	}
}

// bodyBuilder is a custom builder that keeps the body through RequestBody.
type bodyBuilder struct{}

func (bodyBuilder) BuildContext(c *gin.Context, _ func(string) (bool, string)) map[string]any {
	body, truncated := errmon.RequestBody(c)
	return map[string]any{"body_len": len(body), "truncated": truncated}
}

type panickingBuilder struct{}

func (panickingBuilder) BuildContext(*gin.Context, func(string) (bool, string)) map[string]any {
	panic("builder bug with password=builder-secret-4")
}

func TestContextBuilders(t *testing.T) {
	withGinMode(t, gin.TestMode)
	t.Run("custom, masked again", func(t *testing.T) {
		tm := sqliteMonitor(t, func(c *errmon.Config) { c.ContextBuilder = customBuilder{} })
		r := tm.engine(false)
		r.GET("/c", func(c *gin.Context) { panic("custom builder") })
		serve(r, "GET", "/c", nil, map[string]string{"X-Tenant": "acme"})
		recs := tm.records(t)
		if len(recs) != 1 {
			t.Fatalf("%d rows", len(recs))
		}
		data := decodeRequestData(t, recs[0].RequestData)
		if data["tenant"] != "acme" || data["password"] != "**************" || data["masked"] != "**************" {
			t.Errorf("context %s", recs[0].RequestData)
		}
		if s := dbText(t, tm.db); strings.Contains(s, "builder-secret") {
			t.Errorf("a builder's secret was stored: %s", recs[0].RequestData)
		}
	})
	t.Run("panicking builder", func(t *testing.T) {
		tm := sqliteMonitor(t, func(c *errmon.Config) { c.ContextBuilder = panickingBuilder{} })
		r := tm.engine(false)
		r.GET("/c", func(c *gin.Context) { panic("original") })
		if w := serve(r, "GET", "/c", nil, nil); w.Code != 500 {
			t.Fatalf("status %d", w.Code)
		}
		recs := tm.records(t)
		if len(recs) != 1 || recs[0].Message != "original" {
			t.Fatalf("rows %+v, want the original error", recs)
		}
		if !strings.Contains(recs[0].RequestData, "context_error") {
			t.Errorf("context %s", recs[0].RequestData)
		}
		if strings.Contains(dbText(t, tm.db), "builder-secret") || strings.Contains(tm.logs.String(), "builder-secret") {
			t.Error("the builder's panic message leaked a secret")
		}
		if !strings.Contains(tm.logs.String(), "ContextBuilder panicked") {
			t.Errorf("the builder's panic was not logged: %s", tm.logs)
		}
	})
	t.Run("Record with a custom error type", func(t *testing.T) {
		tm := sqliteMonitor(t, nil)
		r := tm.engine(true)
		r.GET("/c", func(c *gin.Context) { tm.Record(c, errors.Join(&myErr{5}, io.EOF)) })
		serve(r, "GET", "/c", nil, nil)
		recs := tm.records(t)
		if len(recs) != 1 || recs[0].ExceptionName != "*tests.myErr" {
			t.Fatalf("rows %+v", recs)
		}
	})
}

// TestRecordMidRequestLeavesTheBody: Record called before the handler reads
// the body must not take bytes from it.
func TestRecordMidRequestLeavesTheBody(t *testing.T) {
	withGinMode(t, gin.TestMode)
	big := bytes.Repeat([]byte("0123456789"), 20_000) // 200 KB, past the cap
	for _, tc := range []struct {
		name  string
		track bool
		body  []byte
	}{
		{"middleware, small body", false, []byte(`{"a":"b"}`)},
		{"middleware, big body", false, big},
		{"track only, big body", true, big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, nil)
			r := tm.engine(tc.track)
			h := func(c *gin.Context) {
				tm.Record(c, errors.New("noted before reading"))
				b, err := io.ReadAll(c.Request.Body)
				if err != nil || !bytes.Equal(b, tc.body) {
					c.String(400, "handler got %d bytes, want %d", len(b), len(tc.body))
					return
				}
				c.Status(204)
			}
			if tc.track {
				h = tm.Track(h)
			}
			r.POST("/r", h)
			if w := serve(r, "POST", "/r", bytes.NewReader(tc.body), nil); w.Code != 204 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if recs := tm.records(t); len(recs) != 1 {
				t.Fatalf("%d rows", len(recs))
			}
		})
	}
	t.Run("a custom builder's RequestBody takes nothing from the handler", func(t *testing.T) {
		tm := sqliteMonitor(t, func(c *errmon.Config) { c.ContextBuilder = bodyBuilder{} })
		r := tm.engine(false)
		r.POST("/r", func(c *gin.Context) {
			tm.Record(c, errors.New("noted before reading"))
			b, err := io.ReadAll(c.Request.Body)
			if err != nil || !bytes.Equal(b, big) {
				c.String(400, "handler got %d bytes, want %d", len(b), len(big))
				return
			}
			c.Status(204)
		})
		if w := serve(r, "POST", "/r", bytes.NewReader(big), nil); w.Code != 204 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		recs := tm.records(t)
		if len(recs) != 1 {
			t.Fatalf("%d rows", len(recs))
		}
		if data := decodeRequestData(t, recs[0].RequestData); fmt.Sprint(data["body_len"]) != "0" || data["truncated"] != true {
			t.Errorf("context %s, want nothing read yet and the body marked cut short", recs[0].RequestData)
		}
	})
	t.Run("after binding, the context has the body", func(t *testing.T) {
		tm := sqliteMonitor(t, nil)
		r := tm.engine(false)
		r.POST("/r", func(c *gin.Context) {
			var v map[string]any
			_ = c.ShouldBindJSON(&v)
			tm.Record(c, errors.New("noted after binding"))
			c.Status(202)
		})
		if w := serve(r, "POST", "/r", strings.NewReader(`{"order":"o-17","password":"bound-secret"}`),
			map[string]string{"Content-Type": "application/json"}); w.Code != 202 {
			t.Fatalf("status %d", w.Code)
		}
		recs := tm.records(t)
		if len(recs) != 1 {
			t.Fatalf("%d rows", len(recs))
		}
		data := decodeRequestData(t, recs[0].RequestData)
		if v, _ := jsonAt(data, "json", "order"); v != "o-17" {
			t.Errorf("json.order = %v: %s", v, recs[0].RequestData)
		}
		if v, _ := jsonAt(data, "json", "password"); v != "**************" {
			t.Errorf("json.password = %v", v)
		}
	})
}

// wrappingBuilder is a custom ContextBuilder that adds to the default one.
type wrappingBuilder struct{}

func (wrappingBuilder) BuildContext(c *gin.Context, mask func(string) (bool, string)) map[string]any {
	ctx := errmon.DefaultContextBuilder{}.BuildContext(c, mask)
	ctx["tenant"] = "acme"
	return ctx
}

// TestWrappedDefaultBuilderMasksWithMaskWith: a builder that wraps
// DefaultContextBuilder masks with the configured MaskWith, as errmon's own
// use of it does (no hidden field set by New).
func TestWrappedDefaultBuilderMasksWithMaskWith(t *testing.T) {
	tdb := openSQLite(t)
	m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) {
		c.MaskWith = "[hidden]"
		c.ContextBuilder = wrappingBuilder{}
	})
	r := gin.New()
	r.Use(m.Middleware())
	r.GET("/w", func(c *gin.Context) { panic("wrapped builder") })
	req := httptest.NewRequest(http.MethodGet, "/w?password=pw-wrap-1", nil)
	req.Header.Set("Cookie", "sid=ck-wrap-2")
	r.ServeHTTP(httptest.NewRecorder(), req)
	dashFlush(t, m)
	recs := allRecords(t, tdb.DB)
	if len(recs) != 1 {
		t.Fatalf("%d errors stored, want 1", len(recs))
	}
	data := recs[0].RequestData
	if strings.Contains(data, "**************") || !strings.Contains(data, "[hidden]") ||
		strings.Contains(data, "pw-wrap-1") || strings.Contains(data, "ck-wrap-2") || !strings.Contains(data, `"tenant":"acme"`) {
		t.Errorf("stored context: %s", data)
	}
}
