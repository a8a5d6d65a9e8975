package tests

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// Masking end to end: secrets in headers, cookies, query, forms, JSON,
// multipart bodies, path parameters and messages are stored masked, and
// reach neither the database, the panic log nor errmon's log. (The masker
// itself is unit-tested in internal/text.)

// maskCase is one request carrying secrets, and where the stored context
// must show the mask or a visible value.
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
			// "tokens" is a built-in secret fragment: the whole list is hidden.
			masked: [][]any{{"json", "password"}, {"json", "nested", "tokens"}, {"json", "passwords"}},
			shown:  map[string][]any{"visible-user": {"json", "user"}, "true": {"json_incomplete"}},
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

func runMaskCase(t *testing.T, tm *testMonitor, tc maskCase) errmon.ErrorRecord {
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
				// a database (schema) of its kind per case: a fresh table
				// each time
				db := openTestDB(t, tdb.Name).DB
				tm := newTestMonitor(t, db, nil)
				rec := runMaskCase(t, tm, tc)
				data := decodeRequestData(t, rec.RequestData)
				for _, p := range tc.masked {
					if v, ok := jsonAt(data, p...); !ok || v != hzMaskWith {
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
	tm := sqliteMonitor(t, func(c *errmon.Config) {
		c.MaskedKeyHas = []string{"PIN", "ssn"}
		c.MaskWith = "[hidden]"
		c.DisableBuiltinMasking = true // else "password" is a built-in fragment
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
	if strings.Contains(recs[0].RequestData, hzMaskWith) {
		t.Errorf("the default mask is used instead of MaskWith: %s", recs[0].RequestData)
	}
}

// TestMaskingBuiltinStored: the built-in fragments and value shapes, end to
// end, in headers, query, form, JSON, path parameters and the message. (The
// path itself, in Path, the url and the logged request line, is stored as
// it came.)
func TestMaskingBuiltinStored(t *testing.T) {
	withGinMode(t, gin.DebugMode)
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJidWlsdGluIn0.c2lnbmF0dXJlLWJp"
	for _, tc := range []struct {
		name, target, ctype, body string
		secrets                   []string
		shown                     []string
	}{
		{"query and headers", "/p/pp-secret-01?token=bi-01&api_key=bi-02&access_token=bi-03&passwd=bi-04&page=2", "", "",
			[]string{"bi-01", "bi-02", "bi-03", "bi-04", "bi-05", "bi-06", jwt, "4111111111111111"}, []string{`"page":"2"`, "visible-id"}},
		{"json", "/p/pp-secret-01", "application/json", `{"token":"bi-07","api_key":"bi-08","user":"visible-user","deep":[{"Session-Id":"bi-09"}],` +
			`"note":"paid with 4111 1111 1111 1111","t":"` + jwt + `","{\"password\":\"bi-10\"}":1}`,
			[]string{"bi-07", "bi-08", "bi-09", "bi-10", "4111 1111 1111 1111", jwt}, []string{"visible-user"}},
		{"form", "/p/pp-secret-01", "application/x-www-form-urlencoded", "token=bi-11&api_key=bi-12&csrf_token=bi-13&name=visible-name",
			[]string{"bi-11", "bi-12", "bi-13"}, []string{"visible-name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := sqliteMonitor(t, nil)
			r := tm.engine(false)
			r.Any("/p/:session_token", func(c *gin.Context) {
				_ = c.PostForm("name")
				panic("charge 4111-1111-1111-1111 failed for Bearer " + jwt)
			})
			var body io.Reader
			header := map[string]string{"X-JWT": "bi-05", "X-Access-Key": "bi-06", "X-Request-Id": "visible-id"}
			if tc.ctype != "" {
				body, header["Content-Type"] = strings.NewReader(tc.body), tc.ctype
			}
			if w := serve(r, "POST", tc.target, body, header); w.Code != 500 {
				t.Fatalf("status %d", w.Code)
			}
			recs := tm.records(t)
			if len(recs) != 1 {
				t.Fatalf("%d rows, want 1", len(recs))
			}
			if v, _ := jsonAt(decodeRequestData(t, recs[0].RequestData), "params", "session_token"); v != hzMaskWith {
				t.Errorf("params.session_token = %v, want the mask", v)
			}
			stored, log := dbText(t, tm.db), tm.out.String()
			for _, s := range append(tc.secrets, "4111-1111-1111-1111") {
				if strings.Contains(stored, s) {
					t.Errorf("%q reached the database:\n%s", s, stored)
				}
				if strings.Contains(log, s) {
					t.Errorf("%q reached the Output log:\n%s", s, log)
				}
			}
			for _, s := range tc.shown {
				if !strings.Contains(stored, s) {
					t.Errorf("%q not stored:\n%s", s, stored)
				}
			}
		})
	}
}
