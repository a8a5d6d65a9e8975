package errmon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	pkgerrors "github.com/pkg/errors"
)

// Hostile input: panic values of every kind, and requests whose paths,
// headers and bodies carry NUL bytes, invalid UTF-8, megabytes of data,
// deep nesting, binary data and multipart forms. On both databases every
// occurrence must be recorded, stored sanitized (valid UTF-8, no NUL) and
// within the documented caps, and no masked value may reach the database,
// the panic log or errmon's own log.

// hzSecret is the secret value planted in every hostile request.
const hzSecret = "S3CR3T-hz-kq7wz"

type hzStruct struct {
	A int
	B string
}

type hzBadStringer struct{}

func (hzBadStringer) String() string { panic("String exploded") }

type hzBadError struct{}

func (hzBadError) Error() string { panic("Error exploded") }

// hzNestedBad panics in String with a value whose Error panics too.
type hzNestedBad struct{}

func (hzNestedBad) String() string { panic(hzBadError{}) }

type hzNilPtrError struct{ msg string }

func (e *hzNilPtrError) Error() string { return e.msg }

//go:noinline
func hzPkgErrorsOrigin() error { return pkgerrors.New("origin of the pkg error") }

// hzCheckStored asserts the invariants every stored row keeps.
func hzCheckStored(t *testing.T, what string, r ErrorRecord) {
	t.Helper()
	fields := map[string]struct {
		v   string
		max int
	}{
		"Host": {r.Host, MaxHostBytes}, "Path": {r.Path, MaxPathBytes}, "Method": {r.Method, 16},
		"Route": {r.Route, MaxPathBytes}, "ExceptionName": {r.ExceptionName, MaxNameBytes},
		"Message": {r.Message, MaxMessageBytes}, "Traceback": {r.Traceback, MaxTracebackBytes},
		"RequestData": {r.RequestData, MaxRequestDataBytes},
	}
	for name, f := range fields {
		if !utf8.ValidString(f.v) {
			t.Errorf("%s: %s is not valid UTF-8", what, name)
		}
		if strings.IndexByte(f.v, 0) >= 0 {
			t.Errorf("%s: %s holds a NUL byte", what, name)
		}
		if len(f.v) > f.max {
			t.Errorf("%s: %s is %d bytes, cap %d", what, name, len(f.v), f.max)
		}
		if strings.Contains(f.v, hzSecret) {
			t.Errorf("%s: the secret leaked into %s: %.300q", what, name, f.v)
		}
	}
	if r.RequestData != "" && !json.Valid([]byte(r.RequestData)) {
		t.Errorf("%s: RequestData is not valid JSON: %.300q", what, r.RequestData)
	}
}

// hzStoredByRoute flushes m and returns the stored rows by route.
func hzStoredByRoute(t *testing.T, m *Monitor, tdb testDB) map[string]ErrorRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	var rows []ErrorRecord
	if err := tdb.DB.Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]ErrorRecord{}
	for _, r := range rows {
		if _, dup := out[r.Route]; dup {
			t.Errorf("two rows for route %s", r.Route)
		}
		out[r.Route] = r
	}
	// The occurrence samples hold the same values: same rules.
	var samples []ErrorOccurrence
	tdb.DB.Find(&samples)
	for _, s := range samples {
		hzCheckStored(t, "sample of "+s.Hash, ErrorRecord{Host: s.Host, Path: s.Path, Method: s.Method, Message: s.Message, RequestData: s.RequestData})
	}
	return out
}

func TestHostilePanicValues(t *testing.T) {
	cases := []struct {
		name        string
		h           gin.HandlerFunc
		exception   string // the stored ExceptionName
		messageHas  string
		tracebackOf string // a function the traceback must name
	}{
		{"nil", func(*gin.Context) { panic(nil) }, "*runtime.PanicNilError", "nil", ""},
		{"error", func(*gin.Context) { panic(errors.New("plain error")) }, "*errors.errorString", "plain error", ""},
		{"wrapped", func(*gin.Context) { panic(fmt.Errorf("loading config: %w", os.ErrNotExist)) }, "*errors.errorString", "loading config: file does not exist", ""},
		{"joined", func(*gin.Context) { panic(errors.Join(os.ErrPermission, errors.New("second"))) }, "*errors.errorString", "permission denied", ""},
		{"pkg-errors", func(*gin.Context) { panic(pkgerrors.Wrap(hzPkgErrorsOrigin(), "wrapped")) }, "*errors.fundamental", "wrapped: origin of the pkg error", "hzPkgErrorsOrigin"},
		{"pkg-errors-c.Error", func(c *gin.Context) {
			_ = c.AbortWithError(http.StatusInternalServerError, pkgerrors.WithMessage(hzPkgErrorsOrigin(), "via c.Error"))
		}, "*errors.fundamental", "via c.Error: origin of the pkg error", "hzPkgErrorsOrigin"},
		{"string", func(*gin.Context) { panic("a plain string") }, "string", "a plain string", ""},
		{"struct", func(*gin.Context) { panic(hzStruct{A: 7, B: "x"}) }, "errmon.hzStruct", "{7 x}", ""},
		{"int", func(*gin.Context) { panic(42) }, "int", "42", ""},
		{"runtime-error", func(c *gin.Context) {
			var s []int
			_ = s[len(c.Param("x"))+3]
		}, "runtime.boundsError", "index out of range", ""},
		{"nil-map-write", func(*gin.Context) {
			var m map[string]int
			m["x"] = 1
		}, "runtime.plainError", "nil map", ""},
		{"stringer-panics", func(*gin.Context) { panic(hzBadStringer{}) }, "errmon.hzBadStringer", "String exploded", ""},
		{"error-panics", func(*gin.Context) { panic(hzBadError{}) }, "errmon.hzBadError", "Error exploded", ""},
		{"nested-panics", func(*gin.Context) { panic(hzNestedBad{}) }, "errmon.hzNestedBad", "", ""},
		{"nil-pointer-error", func(*gin.Context) { panic((*hzNilPtrError)(nil)) }, "*errmon.hzNilPtrError", "", ""},
		{"goexit-like-runtime", func(*gin.Context) { panic(runtime.Error(nil)) }, "*runtime.PanicNilError", "", ""},
		{"nul-and-invalid-utf8", func(*gin.Context) { panic("a\x00b\xff\xfec " + hzSecret[:3]) }, "string", "a\uFFFDb", ""},
		{"megabyte-message", func(*gin.Context) { panic(strings.Repeat("é\x00\xff", 1<<18)) }, "string", "bytes cut", ""},
		{"secret-in-message", func(*gin.Context) { panic("login failed: password=" + hzSecret + " user=bob") }, "string", "login failed", ""},
		{"secret-in-url-message", func(*gin.Context) {
			panic(errors.New("dial postgres://app:" + hzSecret + "@db:5432/app: refused"))
		}, "*errors.errorString", "dial postgres://app:", ""},
	}
	eachDB(t, func(t *testing.T, tdb testDB) {
		var logs, out syncBuffer
		cfg := hzConfig(tdb.DB, &logs)
		cfg.Output = &out
		m := hzNew(t, cfg)
		defer m.Close()
		hzReleaseMode(t)
		r := gin.New()
		r.Use(m.Middleware())
		for _, tc := range cases {
			r.GET("/v/"+tc.name, tc.h)
		}
		for _, tc := range cases {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v/"+tc.name, nil))
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("%s: status %d, want 500", tc.name, rec.Code)
			}
		}
		// By hand too, outside a request.
		m.Record(nil, errors.New("by hand \x00\xff password="+hzSecret))
		stored := hzStoredByRoute(t, m, tdb)
		for _, tc := range cases {
			row, ok := stored["/v/"+tc.name]
			if !ok {
				t.Errorf("%s: not recorded", tc.name)
				continue
			}
			hzCheckStored(t, tc.name, row)
			if row.Count != 1 {
				t.Errorf("%s: count %d, want 1", tc.name, row.Count)
			}
			if row.ExceptionName != tc.exception {
				t.Errorf("%s: exception %q, want %q", tc.name, row.ExceptionName, tc.exception)
			}
			if !strings.Contains(row.Message, tc.messageHas) {
				t.Errorf("%s: message %.200q, want it to contain %q", tc.name, row.Message, tc.messageHas)
			}
			if tc.tracebackOf != "" {
				first, _, _ := strings.Cut(row.Traceback, "\n")
				if !strings.Contains(first, tc.tracebackOf) {
					t.Errorf("%s: traceback does not start at %s (the error's own stack):\n%s", tc.name, tc.tracebackOf, row.Traceback)
				}
			}
		}
		if row, ok := stored[""]; !ok {
			t.Error("Record by hand not stored")
		} else {
			hzCheckStored(t, "by hand", row)
		}
		if strings.Contains(out.String(), hzSecret) {
			t.Errorf("the secret reached the panic log")
		}
		if strings.Contains(logs.String(), hzSecret) {
			t.Errorf("the secret reached errmon's log")
		}
	})
}

// hzMultipart builds a multipart body with a secret field and a file.
func hzMultipart(fileName string, file []byte) (string, []byte) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.WriteField("password", hzSecret)
	_ = w.WriteField("name", "bob\x00\xff")
	fw, _ := w.CreateFormFile("upload", fileName)
	_, _ = fw.Write(file)
	_ = w.Close()
	return w.FormDataContentType(), b.Bytes()
}

func hzRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// hzNested returns JSON nested depth levels deep with the secret at the
// bottom under a secret key.
func hzNested(depth int) []byte {
	var b bytes.Buffer
	for i := 0; i < depth; i++ {
		b.WriteString(`{"a":`)
	}
	b.WriteString(`{"password":"` + hzSecret + `"}`)
	b.WriteString(strings.Repeat("}", depth))
	return b.Bytes()
}

func TestHostileRequests(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	tenMB := []byte(`{"user":{"password":"` + hzSecret + `"},"blob":"` + big + `"}`)
	mpType, mpBody := hzMultipart("evil\xffname<script>.bin", append([]byte(hzSecret), hzRandom(1<<20)...))
	type reqCase struct {
		name    string
		method  string
		target  string // after /h/<name>
		ctype   string
		body    []byte
		headers map[string]string
		host    string
		parse   string // what the handler does first: "read", "multipart", "form", "none"
		has     []string
	}
	cases := []reqCase{
		{name: "nul-invalid-path", method: "GET", target: "/a%00b%ffc/" + strings.Repeat("long", 1<<18), parse: "none"},
		{name: "hostile-headers", method: "GET", target: "/x", parse: "none", host: "evil\x00host\xff" + strings.Repeat("h", 1000),
			headers: map[string]string{
				"X-Big":           strings.Repeat("b", 1<<20),
				"X-Bin":           "\x00\xff\xfe binary",
				"Authorization":   "Bearer " + hzSecret,
				"X-Api-Key":       hzSecret,
				"Cookie":          "session=" + hzSecret + "; theme=dark",
				"X-My-Password":   hzSecret,
				"X-Forwarded-For": "1.2.3.4\x00",
			}, has: []string{`"X-Bin"`, "theme="}},
		{name: "secret-query", method: "GET", target: "/x?password=" + hzSecret + "&my_secret=" + hzSecret + "&q=%00%ff", parse: "none", has: []string{"password="}},
		{name: "ten-megabyte-json", method: "POST", target: "/x", ctype: "application/json", body: tenMB, parse: "read", has: []string{"body_truncated"}},
		{name: "ten-megabyte-unread", method: "POST", target: "/x", ctype: "application/json", body: tenMB, parse: "none"},
		{name: "deep-json-100k", method: "POST", target: "/x", ctype: "application/json", body: hzNested(100000), parse: "read"},
		{name: "deep-json-decodable", method: "POST", target: "/x", ctype: "application/json", body: hzNested(5000), parse: "read", has: []string{`"json"`}},
		{name: "deep-array-100k", method: "POST", target: "/x", ctype: "application/json", body: []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000)), parse: "read"},
		{name: "binary-upload", method: "PUT", target: "/x", ctype: "application/octet-stream", body: append([]byte("password="+hzSecret+"\x00"), hzRandom(1<<20)...), parse: "read", has: []string{"binary data"}},
		{name: "multipart-parsed", method: "POST", target: "/x", ctype: mpType, body: mpBody, parse: "multipart", has: []string{`"files"`, `"form"`}},
		{name: "multipart-unparsed", method: "POST", target: "/x", ctype: mpType, body: mpBody, parse: "none", has: []string{"multipart body"}},
		{name: "urlencoded-form", method: "POST", target: "/x", ctype: "application/x-www-form-urlencoded", body: []byte("password=" + hzSecret + "&name=%00%ff&x=1"), parse: "form", has: []string{`"form"`}},
		{name: "text-with-secret", method: "POST", target: "/x", ctype: "text/plain", body: []byte("user=bob password=" + hzSecret + " \x00 end"), parse: "read"},
		{name: "lying-content-type", method: "POST", target: "/x", ctype: "application/json", body: []byte("{\"password\":\"" + hzSecret + "\", broken \xff"), parse: "read"},
		{name: "json-secret-keys-any-depth", method: "POST", target: "/x", ctype: "application/json; charset=utf-8",
			body: []byte(`[{"list":[{"client_secret":"` + hzSecret + `"},{"Password":{"x":"` + hzSecret + `"}}],"note":"password=` + hzSecret + `"}]`), parse: "read", has: []string{`"list"`}},
	}
	eachDB(t, func(t *testing.T, tdb testDB) {
		var logs, out syncBuffer
		cfg := hzConfig(tdb.DB, &logs)
		cfg.Output = &out
		m := hzNew(t, cfg)
		defer m.Close()
		hzReleaseMode(t)
		r := gin.New()
		r.MaxMultipartMemory = 1 << 20
		r.Use(m.Middleware())
		var mu sync.Mutex
		read := map[string]int{}
		for _, tc := range cases {
			tc := tc
			r.Any("/h/"+tc.name+"/*rest", func(c *gin.Context) {
				switch tc.parse {
				case "read":
					b, err := io.ReadAll(c.Request.Body)
					if err != nil {
						t.Errorf("%s: handler could not read its body: %v", tc.name, err)
					}
					mu.Lock()
					read[tc.name] = len(b)
					mu.Unlock()
				case "multipart":
					if _, err := c.MultipartForm(); err != nil {
						t.Errorf("%s: handler could not parse its form: %v", tc.name, err)
					}
				case "form":
					if c.PostForm("x") != "1" {
						t.Errorf("%s: handler did not see its form", tc.name)
					}
				}
				panic("hostile request " + tc.name)
			})
		}
		for _, tc := range cases {
			req := httptest.NewRequest(tc.method, "/h/"+tc.name+tc.target, bytes.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.headers {
				req.Header[k] = []string{v} // as sent, unvalidated
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("%s: status %d, want 500", tc.name, rec.Code)
			}
			if tc.parse == "read" && read[tc.name] != len(tc.body) {
				t.Errorf("%s: the handler read %d bytes of a %d-byte body", tc.name, read[tc.name], len(tc.body))
			}
		}
		stored := hzStoredByRoute(t, m, tdb)
		for _, tc := range cases {
			row, ok := stored["/h/"+tc.name+"/*rest"]
			if !ok {
				t.Errorf("%s: not recorded", tc.name)
				continue
			}
			hzCheckStored(t, tc.name, row)
			for _, want := range tc.has {
				if !strings.Contains(row.RequestData, want) {
					t.Errorf("%s: request data lacks %s: %.600s", tc.name, want, row.RequestData)
				}
			}
			if tc.name == "ten-megabyte-unread" && !strings.Contains(row.RequestData, "body_truncated") {
				t.Errorf("%s: a 10 MB body the handler did not read is not marked body_truncated", tc.name)
			}
			if !strings.HasPrefix(row.Path, "/h/"+tc.name) {
				t.Errorf("%s: path %.100q", tc.name, row.Path)
			}
		}
		if strings.Contains(out.String(), hzSecret) {
			t.Errorf("the secret reached the panic log")
		}
		if strings.Contains(logs.String(), hzSecret) {
			t.Errorf("the secret reached errmon's log")
		}
	})
}

// The request dump of debug mode (the panic log) hides secrets in hostile
// requests too.
func TestHostileRequestDumpInDebugMode(t *testing.T) {
	tdb := openSQLite(t)
	var logs, out syncBuffer
	cfg := hzConfig(tdb.DB, &logs)
	cfg.Output = &out
	m := hzNew(t, cfg)
	defer m.Close()
	prev := gin.Mode()
	gin.SetMode(gin.DebugMode)
	defer gin.SetMode(prev)
	r := gin.New()
	r.Use(m.Middleware())
	r.GET("/d", func(*gin.Context) { panic("debug dump") })
	req := httptest.NewRequest(http.MethodGet, "/d?password="+url.QueryEscape(hzSecret)+"&x=%00", nil)
	req.Header["Authorization"] = []string{"Basic " + hzSecret}
	req.Header["Cookie"] = []string{"sid=" + hzSecret}
	req.Header["X-Client-Secret"] = []string{hzSecret}
	req.Header["X-Note"] = []string{"password=" + hzSecret + " \x00\xff"}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d", rec.Code)
	}
	if !strings.Contains(out.String(), "panic recovered") {
		t.Fatalf("no panic log: %q", out.String())
	}
	if strings.Contains(out.String(), hzSecret) {
		t.Errorf("the secret reached the debug request dump:\n%s", out.String())
	}
}

// Inputs the fuzzers found that the masker once leaked.
func TestHostileMaskerFuzzFindings(t *testing.T) {
	m := newMasker([]string{"password", "secret"}, DefaultMaskWith, true)
	for _, tc := range []struct{ in, secret string }{
		// An empty value lets the next key be taken for a bare value,
		// which stops at the quote of the real secret.
		{"password= password='" + hzSecret + "' tail", hzSecret},
		{"secret: password='" + hzSecret + "'", hzSecret},
	} {
		if out := m.text(tc.in); strings.Contains(out, tc.secret) {
			t.Errorf("secret survived: %q -> %q", tc.in, out)
		}
	}
}
