package errmon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// dbText returns every value of every row of errmon's tables as text.
func dbText(t testing.TB, db *gorm.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"app_errors", "app_error_occurrences", "app_error_hourly"} {
		var rows []map[string]any
		if err := db.Table(table).Find(&rows).Error; err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, row := range rows {
			for k, v := range row {
				if p, ok := v.([]byte); ok {
					v = string(p)
				}
				fmt.Fprintf(&b, "%s.%s=%v\n", table, k, v)
			}
		}
	}
	return b.String()
}

// jsonAt follows a path of map keys and array indexes in decoded JSON.
func jsonAt(v any, path ...any) (any, bool) {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil, false
			}
			v = a[k]
		}
	}
	return v, true
}

func decodeRequestData(t testing.TB, s string) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("RequestData is not JSON: %v\n%s", err, s)
	}
	return v
}

type maskCase struct {
	name        string
	method      string
	target      string
	body        func() (io.Reader, string) // body and content type
	header      map[string]string
	handler     gin.HandlerFunc
	secrets     []string
	masked      [][]any          // paths in RequestData whose value must be MaskWith
	shown       map[string][]any // value -> path in RequestData where it must show
	messageHint string           // must appear in Message (masked message keeps its shape)
}

func multipartBody(fields map[string]string, file string) func() (io.Reader, string) {
	return func() (io.Reader, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		for k, v := range fields {
			_ = w.WriteField(k, v)
		}
		if file != "" {
			fw, _ := w.CreateFormFile("upload", "report.txt")
			_, _ = fw.Write([]byte(file))
		}
		_ = w.Close()
		return &b, w.FormDataContentType()
	}
}

func maskCases() []maskCase {
	jsonBody := func(s string) func() (io.Reader, string) {
		return func() (io.Reader, string) { return strings.NewReader(s), "application/json" }
	}
	formBody := func(s string) func() (io.Reader, string) {
		return func() (io.Reader, string) { return strings.NewReader(s), "application/x-www-form-urlencoded" }
	}
	return []maskCase{
		{
			name: "headers and cookies", method: "GET", target: "/m",
			header: map[string]string{
				"Authorization":       "Bearer hdr-secret-01",
				"Proxy-Authorization": "Basic hdr-secret-02",
				"Cookie":              "session=hdr-secret-03; theme=hdr-secret-04",
				"X-Client-Secret":     "hdr-secret-05",
				"X-Api-Key":           "hdr-secret-06",
				"X-Request-Id":        "visible-req-id",
			},
			handler: func(c *gin.Context) { panic("header case") },
			secrets: []string{"hdr-secret-01", "hdr-secret-02", "hdr-secret-03", "hdr-secret-04", "hdr-secret-05", "hdr-secret-06"},
			masked: [][]any{
				{"headers", "Authorization"}, {"headers", "Proxy-Authorization"},
				{"headers", "X-Client-Secret"}, {"headers", "X-Api-Key"},
				{"cookies", "session"}, {"cookies", "theme"},
			},
			shown: map[string][]any{"visible-req-id": {"headers", "X-Request-Id"}},
		},
		{
			name: "query parameters", method: "GET",
			target:  "/m?password=qry-secret-07&client_secret=qry-secret-08&q=visible-q",
			handler: func(c *gin.Context) { panic("query case") },
			secrets: []string{"qry-secret-07", "qry-secret-08"},
			masked:  [][]any{{"query", "password"}, {"query", "client_secret"}},
			shown:   map[string][]any{"visible-q": {"query", "q"}},
		},
		{
			name: "form fields read by the handler", method: "POST", target: "/m",
			body: formBody("password=frm-secret-09&name=visible-name&new_password=frm-secret-10"),
			handler: func(c *gin.Context) {
				_ = c.PostForm("name")
				panic("form case")
			},
			secrets: []string{"frm-secret-09", "frm-secret-10"},
			masked:  [][]any{{"form", "password"}, {"form", "new_password"}},
			shown:   map[string][]any{"visible-name": {"form", "name"}},
		},
		{
			name: "form fields not read", method: "POST", target: "/m",
			body:    formBody("password=frm-secret-11&name=visible-name"),
			handler: func(c *gin.Context) { panic("form case 2") },
			secrets: []string{"frm-secret-11"},
			masked:  [][]any{{"form", "password"}},
			shown:   map[string][]any{"visible-name": {"form", "name"}},
		},
		{
			name: "JSON at any depth", method: "POST", target: "/m",
			body: jsonBody(`{"user":"visible-user","password":"jsn-secret-12",
				"profile":{"api_secret":"jsn-secret-13","list":[{"Password":"jsn-secret-14"},{"ok":"visible-ok"}],
				"deeper":{"a":{"b":{"SECRET":{"x":"jsn-secret-15"}}}}},
				"items":[[{"secret_key":"jsn-secret-16"}]],
				"password_hint":["jsn-secret-17","jsn-secret-18"]}`),
			handler: func(c *gin.Context) {
				var v map[string]any
				if err := c.ShouldBindJSON(&v); err != nil {
					panic(err)
				}
				panic("json case")
			},
			secrets: []string{"jsn-secret-12", "jsn-secret-13", "jsn-secret-14", "jsn-secret-15", "jsn-secret-16", "jsn-secret-17", "jsn-secret-18"},
			masked: [][]any{
				{"json", "password"}, {"json", "profile", "api_secret"}, {"json", "profile", "list", 0, "Password"},
				{"json", "profile", "deeper", "a", "b", "SECRET"}, {"json", "items", 0, 0, "secret_key"},
				{"json", "password_hint"},
			},
			shown: map[string][]any{"visible-user": {"json", "user"}, "visible-ok": {"json", "profile", "list", 1, "ok"}},
		},
		{
			name: "JSON array at the top, not read", method: "POST", target: "/m",
			body:    jsonBody(`[{"password":"jsn-secret-19"},{"name":"visible-name"}]`),
			handler: func(c *gin.Context) { panic("json case 2") },
			secrets: []string{"jsn-secret-19"},
			masked:  [][]any{{"json", 0, "password"}},
			shown:   map[string][]any{"visible-name": {"json", 1, "name"}},
		},
		{
			name: "JSON cut short by the body cap", method: "POST", target: "/m",
			body: jsonBody(`{"user":"visible-user","password":"cut-secret-26","nested":{"tokens":[{"secret":"cut-secret-27"}]},` +
				`"passwords":["cut-secret-28",{"old":"cut-secret-29"},"` + strings.Repeat("z", 70<<10) + `"],"after":"never-read"}`),
			handler: func(c *gin.Context) { panic("json cut case") },
			secrets: []string{"cut-secret-26", "cut-secret-27", "cut-secret-28", "cut-secret-29", "never-read"},
			masked:  [][]any{{"json", "password"}, {"json", "nested", "tokens", 0, "secret"}, {"json", "passwords"}},
			shown:   map[string][]any{"visible-user": {"json", "user"}, "true": {"json_incomplete"}},
		},
		{
			name: "multipart fields parsed", method: "POST", target: "/m",
			body: multipartBody(map[string]string{"password": "mpt-secret-20", "name": "visible-name"}, "file body"),
			handler: func(c *gin.Context) {
				if _, err := c.MultipartForm(); err != nil {
					panic(err)
				}
				panic("multipart case")
			},
			secrets: []string{"mpt-secret-20"},
			masked:  [][]any{{"form", "password"}},
			shown:   map[string][]any{"visible-name": {"form", "name"}, "report.txt": {"files", "upload", 0, "filename"}},
		},
		{
			name: "multipart not parsed", method: "POST", target: "/m",
			body:    multipartBody(map[string]string{"password": "mpt-secret-21", "name": "visible-name"}, ""),
			handler: func(c *gin.Context) { panic("multipart case 2") },
			secrets: []string{"mpt-secret-21"},
		},
		{
			name: "secret in the panic message", method: "GET", target: "/m",
			handler: func(c *gin.Context) {
				panic(fmt.Sprintf(`login failed: password=msg-secret-22 {"client_secret": "msg-secret-23"} postgres://bob:msg-secret-24@db/x`))
			},
			secrets:     []string{"msg-secret-22", "msg-secret-23", "msg-secret-24"},
			messageHint: "login failed: password=",
		},
		{
			name: "secret in a text body", method: "POST", target: "/m",
			body: func() (io.Reader, string) {
				return strings.NewReader("token=abc password=txt-secret-25 and more"), "text/plain"
			},
			handler: func(c *gin.Context) { panic("text case") },
			secrets: []string{"txt-secret-25"},
		},
	}
}

func runMaskCase(t *testing.T, tm *testMonitor, tc maskCase) ErrorRecord {
	t.Helper()
	r := tm.engine(false)
	r.Handle(tc.method, "/m", tc.handler)
	var body io.Reader
	header := map[string]string{}
	for k, v := range tc.header {
		header[k] = v
	}
	if tc.body != nil {
		var ct string
		body, ct = tc.body()
		header["Content-Type"] = ct
	}
	if w := serve(r, tc.method, tc.target, body, header); w.Code != 500 {
		t.Fatalf("status %d", w.Code)
	}
	recs := tm.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d rows, want 1", len(recs))
	}
	return recs[0]
}

func TestMaskingStoredContext(t *testing.T) {
	withGinMode(t, gin.DebugMode) // the request dump is in the log too
	eachDB(t, func(t *testing.T, tdb testDB) {
		for _, tc := range maskCases() {
			t.Run(tc.name, func(t *testing.T) {
				// a schema per case: a fresh table each time
				db := tdb.DB
				if tdb.Name == "sqlite" {
					db = openSQLite(t).DB
				} else {
					db = openPostgres(t).DB
				}
				tm := newTestMonitor(t, db, nil)
				rec := runMaskCase(t, tm, tc)
				data := decodeRequestData(t, rec.RequestData)
				for _, p := range tc.masked {
					if v, ok := jsonAt(data, p...); !ok || v != DefaultMaskWith {
						t.Errorf("at %v: %v (found %v), want the mask\n%s", p, v, ok, rec.RequestData)
					}
				}
				for want, p := range tc.shown {
					v, ok := jsonAt(data, p...)
					if !ok || fmt.Sprint(v) != want {
						t.Errorf("at %v: %v, want %q\n%s", p, v, want, rec.RequestData)
					}
				}
				if tc.messageHint != "" && !strings.Contains(rec.Message, tc.messageHint) {
					t.Errorf("message %q lacks %q", rec.Message, tc.messageHint)
				}
				stored := dbText(t, db)
				log := tm.out.String()
				for _, s := range tc.secrets {
					if strings.Contains(stored, s) {
						t.Errorf("secret %q reached the database:\n%s", s, stored)
					}
					if strings.Contains(log, s) {
						t.Errorf("secret %q reached the Output log:\n%s", s, log)
					}
					if strings.Contains(tm.logs.String(), s) {
						t.Errorf("secret %q reached the slog log", s)
					}
				}
			})
		}
	})
}

func TestMaskingCustomKeysAndMask(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, func(c *Config) {
		c.MaskedKeyHas = []string{"PIN", "ssn"}
		c.MaskWith = "[hidden]"
	})
	r := tm.engine(false)
	r.POST("/m", func(c *gin.Context) { panic("custom") })
	body := `{"pin":"1234-secret","user_ssn":"ssn-secret","password":"now-visible","nested":[{"Pin_Code":"5678-secret"}]}`
	w := serve(r, "POST", "/m?card_pin=9999-secret&password=qvisible", strings.NewReader(body), map[string]string{
		"Content-Type":  "application/json",
		"Authorization": "Bearer always-hidden",
		"Cookie":        "a=cookie-hidden",
		"X-Pin":         "hdr-pin-secret",
	})
	if w.Code != 500 {
		t.Fatalf("status %d", w.Code)
	}
	recs := tm.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d rows", len(recs))
	}
	data := decodeRequestData(t, recs[0].RequestData)
	for _, p := range [][]any{
		{"json", "pin"}, {"json", "user_ssn"}, {"json", "nested", 0, "Pin_Code"},
		{"query", "card_pin"}, {"headers", "Authorization"}, {"headers", "X-Pin"}, {"cookies", "a"},
	} {
		if v, _ := jsonAt(data, p...); v != "[hidden]" {
			t.Errorf("at %v: %v, want [hidden]", p, v)
		}
	}
	// The custom list replaces the default one: "password" is a plain key now.
	if v, _ := jsonAt(data, "json", "password"); v != "now-visible" {
		t.Errorf("json.password = %v, want it shown (custom list replaces the default)", v)
	}
	if v, _ := jsonAt(data, "query", "password"); v != "qvisible" {
		t.Errorf("query.password = %v, want it shown", v)
	}
	for _, s := range []string{"1234-secret", "ssn-secret", "5678-secret", "9999-secret", "always-hidden", "cookie-hidden", "hdr-pin-secret"} {
		if strings.Contains(dbText(t, tm.db), s) {
			t.Errorf("%q stored", s)
		}
	}
	if strings.Contains(recs[0].RequestData, DefaultMaskWith) {
		t.Errorf("the default mask is used instead of MaskWith: %s", recs[0].RequestData)
	}
}

func TestMaskerUnits(t *testing.T) {
	m := newMasker([]string{"password", "secret"}, "***")
	for _, tc := range []struct{ in, want string }{
		{"password=abc&x=1", "password=***&x=1"},
		{`{"password": "abc", "x": 1}`, `{"password": "***", "x": 1}`},
		{`client_secret: 'abc'`, `client_secret: '***'`},
		{"postgres://u:pw@h/db", "postgres://u:***@h/db"},
		{"nothing here", "nothing here"},
		{`{"passwords": ["a1", {"b": "a2]"}], "x": 1}`, `{"passwords": ***, "x": 1}`},
		{`{"secret": {"old": "a3", "new": [1, 2]}, "y": "z"}`, `{"secret": ***, "y": "z"}`},
		{`{"secret": [1, {"cut short`, `{"secret": ***`},
		{`password= password='a4' tail`, `password= password='***' tail`},
		{`secret: password='a5'`, `secret: password='***'`},
		{`a=1&password=a6&secret=&b=2`, `a=1&password=***&secret=***&b=2`},
	} {
		if got := m.text(tc.in); got != tc.want {
			t.Errorf("text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token", "X-CSRF-Token", "X-Session-Id"} {
		if !m.secretHeader(h) {
			t.Errorf("header %s not secret", h)
		}
	}
	for _, h := range []string{"Accept", "User-Agent", "X-Request-Id"} {
		if m.secretHeader(h) {
			t.Errorf("header %s secret", h)
		}
	}
	if got := cookieNames("a=1; b=2;c", "*"); got != "a=*; b=*; c=*" {
		t.Errorf("cookieNames = %q", got)
	}
}
