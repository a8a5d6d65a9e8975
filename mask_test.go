package errmon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
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
					if v, ok := jsonAt(data, p...); !ok || v != defaultMaskWith {
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
	if strings.Contains(recs[0].RequestData, defaultMaskWith) {
		t.Errorf("the default mask is used instead of MaskWith: %s", recs[0].RequestData)
	}
}

func TestMaskerUnits(t *testing.T) {
	m := newMasker([]string{"password", "secret"}, "***", true)
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

// withCheckDigit completes digits with the digit that makes them pass (or,
// with fail, fail) the Luhn check.
func withCheckDigit(digits string, fail bool) string {
	for c := '0'; c <= '9'; c++ {
		s := digits + string(c)
		d := []byte(strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "-", ""))
		for i := range d {
			d[i] -= '0'
		}
		if luhn(d) != fail {
			return s
		}
	}
	panic("unreachable")
}

// TestMaskTextShapes: key=value pairs in every notation, built-in key
// fragments, URL and DSN passwords and secret-shaped values are hidden by
// masker.text; ordinary text stays as it is.
func TestMaskTextShapes(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	visa, amex, mc19 := "4111111111111111", "378282246310005", withCheckDigit("622126000000000000", false)
	m := newMasker(defaultMaskedKeyHas, "***", true)
	cases := []struct{ name, in, want string }{
		// pairs
		{"key=value", "a=1&password=v1&b=2", "a=1&password=***&b=2"},
		{"key: value", "password: v1 next", "password: *** next"},
		{"JSON", `{"password":"v1","b":2}`, `{"password":"***","b":2}`},
		{"single quotes", `{'password': 'v1'}`, `{'password': '***'}`},
		{"escaped quotes", `{"password":"a\"b\\","x":1}`, `{"password":"***","x":1}`},
		{"quoted cut short", `{"password": "v1 cut`, `{"password": "***"`},
		{"single quoted cut short", `password='v1 cut`, `password='***'`},
		{"bracketed", `{"passwords": ["a", {"b": 1}], "x": 1}`, `{"passwords": ***, "x": 1}`},
		{"bracketed cut short", `{"secret": {"a": [1, 2`, `{"secret": ***`},
		{"empty value", "password=&x=1", "password=***&x=1"},
		{"value is a key", "password=secret=x y", "password=*** y"},
		{"value holds a key", "password=MyAuth:x1 y", "password=*** y"},
		{"spaced pairs", "password= secret=x y", "password= secret=*** y"},
		{"bearer after a key", "Authorization: Bearer abc", "Authorization: Bearer ***"},
		{"basic after a key", `"authorization": "Basic dXNlcjpwYXNz"`, `"authorization": "***"`},
		{"key with brackets", "user[password]=v1&x=1", "user[password]=***&x=1"},
		{"JSON in a JSON string", `body: "{\"password\":\"v1\",\"a\":1}"`, `body: "{\"password\":\"***\",\"a\":1}"`},
		{"escaped quote cut short", `"{\"password\":\"v1`, `"{\"password\":\"***\"`},
		{"ruby hash", `{"password" => "v1"}`, `{"password" => "***"}`},
		{"go assignment", `password := "v1"`, `password := "***"`},
		{"upper case", "PASSWORD=v1", "PASSWORD=***"},
		// URL userinfo and DSNs
		{"url", "postgres://bob:v1@db/x", "postgres://bob:***@db/x"},
		{"url, @ in the password", "amqp://guest:a@b@rabbit/", "amqp://guest:***@rabbit/"},
		{"url, no password", "https://bob@example.com:8443/x", "https://bob@example.com:8443/x"},
		{"url, port", "http://localhost:8080/a@b", "http://localhost:8080/a@b"},
		{"mysql dsn", "dial root:v1@tcp(127.0.0.1:3306)/app?parseTime=true", "dial root:***@tcp(127.0.0.1:3306)/app?parseTime=true"},
		{"mysql dsn, @ in the password", "user:p@ss@tcp(db)/app", "user:***@tcp(db)/app"},
		{"mysql dsn, unix socket", `"dsn":"app:v1@unix(/tmp/mysql.sock)/db"`, `"dsn":"app:***@unix(/tmp/mysql.sock)/db"`},
		{"mysql dsn, default address", "user:v1@/dbname", "user:***@/dbname"},
		{"mysql dsn, a card in the password", "u:ab-4111111111111111@tcp(h)/db", "u:***@tcp(h)/db"},
		{"email", "mail bob@example.com at 12:30 sent", "mail bob@example.com at 12:30 sent"},
		// cards
		{"card", "charge " + visa + " declined", "charge *** declined"},
		{"card in spaced groups", "card 4111 1111 1111 1111 declined", "card *** declined"},
		{"card in dashed groups", "card 4111-1111-1111-1111.", "card ***."},
		{"amex groups", "amex 3782 822463 10005", "amex ***"},
		{"amex", "amex " + amex, "amex ***"},
		{"19 digits", "pan=" + mc19, "pan=***"},
		{"13 digits", "old visa 4222222222222", "old visa ***"},
		{"card in JSON", `{"n":"` + visa + `"}`, `{"n":"***"}`},
		{"not Luhn", "order " + withCheckDigit("411111111111111", true), "order " + withCheckDigit("411111111111111", true)},
		{"too short", "id " + withCheckDigit("41111111111", false), "id " + withCheckDigit("41111111111", false)},
		{"too long", "id " + withCheckDigit("4111111111111111111", false), "id " + withCheckDigit("4111111111111111111", false)},
		{"ms timestamp", "at " + withCheckDigit("173297394512", false), "at " + withCheckDigit("173297394512", false)},
		{"ns timestamp", "at " + withCheckDigit("173297394512345678", false), "at " + withCheckDigit("173297394512345678", false)},
		{"in a word", "ref" + visa, "ref" + visa},
		{"followed by letters", visa + "x", visa + "x"},
		{"phone", "call +86 138 0013 8000 or +1 415-555-0132", "call +86 138 0013 8000 or +1 415-555-0132"},
		{"groups after a number", "qty 12 " + visa, "qty 12 " + visa},
		{"fraction", "took 0." + visa + "s", "took 0." + visa + "s"},
		// JWTs and credentials
		{"jwt", "invalid token " + jwt + ": expired", "invalid token ***: expired"},
		{"unsecured jwt", "t=eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. ok", "t=*** ok"},
		{"jwt before =", jwt + "=1", "***=1"},
		{"jwt as a secret key", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.pwd=x1", "***=***"},
		{"not a jwt", "eyJhbGciOiJIUzI1NiJ9 and eyJa..b and heyJude.a.b", "eyJhbGciOiJIUzI1NiJ9 and eyJa..b and heyJude.a.b"},
		{"bearer", "sent Bearer mF_9.B5f-4.1JqM to the api", "sent Bearer *** to the api"},
		{"bearer word", "the bearer of bad news: bearer authentication failed", "the bearer of bad news: bearer authentication failed"},
		{"basic", "header Basic dXNlcjpwYXNz rejected", "header Basic *** rejected"},
		{"basic word", "Basic information, Basic usage, basic abcd", "Basic information, Basic usage, basic abcd"},
		// ordinary text
		{"uuid", "user 4f1c2a9e-8b7d-4c3e-9a1f-0e2d3c4b5a69 not found", "user 4f1c2a9e-8b7d-4c3e-9a1f-0e2d3c4b5a69 not found"},
		{"uuid of digits", "id 12345678-1234-1234-1234-123456789012", "id 12345678-1234-1234-1234-123456789012"},
		{"amounts and dates", "amount=1,234.56 EUR at 2026-11-25 14:39:05 page=2 id=18342", "amount=1,234.56 EUR at 2026-11-25 14:39:05 page=2 id=18342"},
		{"ordinary keys", "user=alice name=Bob email=a@b.c route=/x author=me design=flat signal=9 x-forwarded-for=1.2.3.4",
			"user=alice name=Bob email=a@b.c route=/x author=me design=flat signal=9 x-forwarded-for=1.2.3.4"},
	}
	// every built-in fragment in a key, '-' and '_' alike
	for _, k := range []string{
		"token", "access_token", "refresh-token", "X-CSRF-Token", "api_key", "api-key", "apikey", "X-Api-Key",
		"access_key", "X-Access-Key", "auth", "x-auth", "oauth_verifier", "authorization", "authorise", "authentication",
		"credential", "credentials", "passwd", "pwd", "mysql_pwd", "session", "sessionid", "PHPSESSID", "csrf", "csrftoken",
		"xsrf", "_xsrf", "jwt", "X-JWT", "private_key", "privatekey", "private-key", "cookie", "set_cookie", "cvv", "card_cvc",
		"secret", "client-secret", "password", "new_password", "passphrase", "signature", "x-hub-signature", "bearer",
	} {
		cases = append(cases, struct{ name, in, want string }{"key " + k, k + "=v4lue-1&n=2", k + "=***&n=2"},
			struct{ name, in, want string }{"json key " + k, `{"` + k + `": "v4lue-1"}`, `{"` + k + `": "***"}`})
	}
	for _, tc := range cases {
		if got := m.text(tc.in); got != tc.want {
			t.Errorf("%s: text(%q)\n = %q\nwant %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestMaskKeyNames: the names that are secret, with the built-in list on
// and off.
func TestMaskKeyNames(t *testing.T) {
	on := newMasker(defaultMaskedKeyHas, "***", true)
	off := newMasker(defaultMaskedKeyHas, "***", false)
	for _, k := range []string{
		"token", "Api-Key", "API_KEY", "apikey", "X-Access-Key", "X-JWT", "Authorization", "oauth", "Proxy-Authorization",
		"x-authenticity-token", "session_id", "PHPSESSID", "csrf", "X-XSRF-TOKEN", "private.key", "mysql_pwd", "cvv", "cvc",
		"Set-Cookie", "credentials", "passwd", "X-Hub-Signature-256", "auth2", "authorization_code",
	} {
		if !on.secret(k) {
			t.Errorf("%q: not secret", k)
		}
		if off.secret(k) && !strings.Contains(strings.ToLower(k), "password") && !strings.Contains(strings.ToLower(k), "secret") {
			t.Errorf("%q: secret with the built-in list off", k)
		}
	}
	for _, k := range []string{
		"id", "user", "username", "name", "amount", "email", "route", "page", "design", "signal", "author", "authors",
		"authority", ":authority", "author_id", "coauthor", "user_agent", "X-Request-Id", "X-Forwarded-For", "keyword",
		"monkey", "passenger", "description", "status", "order_id", "pin", "sig", "otp", "key", "content-type", "",
	} {
		if on.secret(k) {
			t.Errorf("%q: secret", k)
		}
	}
	for _, k := range []string{"password", "NEW_PASSWORD", "client-secret", "Pass-Word"} {
		if !off.secret(k) {
			t.Errorf("%q: not secret with the built-in list off", k)
		}
	}
	// with the built-in list off, shapes stay and URL passwords go
	in := "card 4111111111111111 Bearer mF_9.B5f-4.1JqM token=t postgres://u:pw@h/db"
	if got, want := off.text(in), "card 4111111111111111 Bearer mF_9.B5f-4.1JqM token=t postgres://u:***@h/db"; got != want {
		t.Errorf("built-in list off: %q, want %q", got, want)
	}
	// configured fragments with separators, or non-ASCII, match as names do
	cust := newMasker([]string{"pin_code", "clé", "_"}, "***", false)
	for _, k := range []string{"PinCode", "user-pin-code", "CLÉ", "ma_clé", "a_b"} {
		if !cust.secret(k) {
			t.Errorf("custom %q: not secret", k)
		}
	}
	if got := cust.text("PIN-CODE=1 CLÉ=2 x=3"); got != "PIN-CODE=*** CLÉ=*** x=3" {
		t.Errorf("custom text: %q", got)
	}
}

// TestMaskTreeKeys: map keys are masked as text, keys that mask to one
// name keep all their entries (numbered in key order), headers, query and
// form maps hide the built-in fragments.
func TestMaskTreeKeys(t *testing.T) {
	m := newMasker(defaultMaskedKeyHas, "***", true)
	out := m.value(map[string]any{
		`{"password":"hunter2"}`: "v",
		"note 4111111111111111":  1,
		"note 5555555555554444":  2,
		"note *** (2)":           3,
		"plain":                  "postgres://u:pw2@h/db",
		"nested":                 map[string]string{"token=abc": "x"},
	}).(map[string]any)
	b, _ := json.Marshal(out)
	for _, s := range []string{"hunter2", "pw2", "abc", "4111", "5555"} {
		if strings.Contains(string(b), s) {
			t.Errorf("%q survived: %s", s, b)
		}
	}
	if len(out) != 6 {
		t.Errorf("%d keys, want 6: %s", len(out), b)
	}
	for k, want := range map[string]any{"note ***": 1, "note *** (2)": 3, "note *** (3)": 2, `{"password":"***"}`: "***"} {
		if out[k] != want {
			t.Errorf("%q = %v, want %v: %s", k, out[k], want, b)
		}
	}
	for range 20 { // the same whatever the map's order
		if again, _ := json.Marshal(m.value(map[string]any{"a 4111111111111111": 1, "a 5555555555554444": 2})); string(again) != `{"a ***":1,"a *** (2)":2}` {
			t.Fatalf("numbering depends on order: %s", again)
		}
	}
	h := http.Header{"X-Jwt": {"j1"}, "X-Access-Key": {"k1"}, "X-Api-Key": {"k2"}, "Cookie": {"sid=c1; theme=dark"}, "Accept": {"text/html"}}
	q := map[string][]string{"token": {"t1"}, "api_key": {"t2"}, "access_token": {"t3"}, "passwd": {"t4"}, "page": {"2"}}
	got, _ := json.Marshal(map[string]any{"headers": maskTree(h, m.fn, m.with, nil), "query": maskTree(q, m.fn, m.with, nil)})
	if want := `{"headers":{"Accept":"text/html","Cookie":"sid=***; theme=***","X-Access-Key":"***","X-Api-Key":"***","X-Jwt":"***"},` +
		`"query":{"access_token":"***","api_key":"***","page":"2","passwd":"***","token":"***"}}`; string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
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
			if v, _ := jsonAt(decodeRequestData(t, recs[0].RequestData), "params", "session_token"); v != defaultMaskWith {
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

// TestMaskLinear bounds the work of masking adversarial texts: the bytes
// masker.scan examines, the output buffer it allocates and the number of
// allocations are at most a constant times the input (a constant for the
// allocations), at 1 KiB as at 1 MiB. No clock is read.
func TestMaskLinear(t *testing.T) {
	m := newMasker(defaultMaskedKeyHas, defaultMaskWith, true)
	for _, sh := range append([]maskShape{benignShape}, adversarialShapes...) {
		for _, n := range []int{1 << 10, 32 << 10, 1 << 20} {
			s := sh.make(n)
			ts := textScan{m: m, s: s}
			ts.run()
			if ts.work > hzMaskWork(len(s)) {
				t.Errorf("%s, %d bytes: %d bytes examined (%.1f per byte)", sh.name, len(s), ts.work, float64(ts.work)/float64(len(s)))
			}
			if ts.out.Cap() > 2*hzMaskGrowth(len(s), len(m.with)) {
				t.Errorf("%s, %d bytes: a %d-byte buffer", sh.name, len(s), ts.out.Cap())
			}
			if out := m.text(s); len(out) > hzMaskGrowth(len(s), len(m.with)) {
				t.Errorf("%s, %d bytes: %d bytes out", sh.name, len(s), len(out))
			}
			if n == 1<<20 {
				continue // AllocsPerRun runs it 11 times
			}
			if a := testing.AllocsPerRun(3, func() { m.text(s) }); a > 12 {
				t.Errorf("%s, %d bytes: %.0f allocations", sh.name, len(s), a)
			}
		}
	}
	// 100 headers of 8 KiB, through maskTree as errmon stores them
	for _, sh := range append([]maskShape{benignShape}, adversarialShapes...) {
		h := http.Header{}
		for i := range 100 {
			h[fmt.Sprintf("X-Custom-%02d", i)] = []string{sh.make(8 << 10)}
		}
		in, work, out := 0, 0, 0
		maskTree(h, m.fn, m.with, func(s string) string {
			masked, w := m.scan(s)
			in, work, out = in+len(s), work+w, out+len(masked)
			return masked
		})
		if work > hzMaskWork(in) || out > hzMaskGrowth(in, len(m.with)) {
			t.Errorf("%s: 100 headers, %d bytes: %d examined, %d out", sh.name, in, work, out)
		}
	}
}

// TestNormalizeMessageBounded: NormalizeMessage reads at most maxHashedMsg
// bytes (a longer message normalizes as its first maxHashedMsg bytes do),
// so its cost is bounded whatever the length, and what it writes is at
// most 3 times what it reads, on runs of digits, hex and separators too.
func TestNormalizeMessageBounded(t *testing.T) {
	for _, unit := range []string{"1", "deadbeef", "0x", "-", "1-", "4f1c2a9e-8b7d-", "2026-11-25T", "a1 "} {
		s := strings.Repeat(unit, (1<<20)/len(unit))
		out := NormalizeMessage(s)
		if out != NormalizeMessage(s[:maxHashedMsg]) {
			t.Errorf("%q: the result depends on bytes past %d", unit, maxHashedMsg)
		}
		if len(out) > 3*maxHashedMsg {
			t.Errorf("%q: %d bytes out", unit, len(out))
		}
	}
}
