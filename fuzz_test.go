package errmon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// hzFuzzMonitor is a monitor with no database, enough to capture.
func hzFuzzMonitor() *Monitor {
	cfg := Config{Output: nil}.withDefaults()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.MaxBodyBytes = 4 << 10
	return &Monitor{cfg: cfg, mask: text.NewMasker(cfg.MaskedKeyHas, cfg.MaskWith, !cfg.DisableBuiltinMasking), log: cfg.Logger}
}

// FuzzContextBuilder: whatever the body, content type, header and query,
// capturing a failure never panics, RequestData is valid JSON within
// maxRequestDataBytes nested at most maxContextDepth levels, all text is
// valid UTF-8 without NUL, and the secrets planted under secret keys
// (query, also encoded and after ';', path parameters and key=value path
// segments, headers, cookie, JSON and form fields, message) never survive,
// neither in the occurrence nor in the debug request dump.
func FuzzContextBuilder(f *testing.F) {
	f.Add([]byte(`{"a":PLANT,"b":[PLANT]}`), "application/json", "X-Note", "hello", "a=1", uint8(0))
	f.Add([]byte(`{"a":{"password":"x"}}`), "application/json", "X-Note", "hello", "a=1", uint8(1))
	f.Add([]byte("password=x&b=%00"), "application/x-www-form-urlencoded", "", "", "q=%ff", uint8(3))
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nv\r\n--B--\r\n"), "multipart/form-data; boundary=B", "X-A", "\x00", "", uint8(2))
	f.Add([]byte{0, 1, 2, 0xff}, "application/octet-stream", "Content-Length", "4", ";;&&==", uint8(0))
	f.Add([]byte(strings.Repeat("[", 5000)), "", "X-Forwarded-For", "1.2.3.4, ::1", "%zz", uint8(1))
	f.Add([]byte(`{"secret":`), "application/json; charset=\xff", "Cookie", "a=b; c", "password", uint8(0))
	f.Add([]byte(strings.Repeat("a", 5000)), "text/plain", "X-Password", "x", "x=1&x=2", uint8(1))
	// Adversarial shapes of issue 10: deep nesting of every kind (decodable
	// by encoding/json or not), many small keys, objects in arrays, a big
	// header, JSON as a form name, encoded secrets in the query.
	f.Add([]byte(strings.Repeat("[", 9000)+strings.Repeat("]", 9000)), "application/json", "X-Big", strings.Repeat("h", 8<<10), "a=1", uint8(1))
	f.Add([]byte(strings.Repeat(`[{"a":`, 3000)+"PLANT"+strings.Repeat("}]", 3000)), "application/json", "", "", "", uint8(0))
	f.Add([]byte(strings.Repeat(`{"a":[`, 20000)), "application/json", "", "", "", uint8(1))
	f.Add(hzManyKeys(5000), "application/json", "", "", "", uint8(1))
	f.Add([]byte(`{"user":"ann","password":"hunter2"}`), "application/x-www-form-urlencoded", "", "", "", uint8(3))
	f.Add([]byte(`{"user":"ann","password":"hunter2"}`), "application/x-www-form-urlencoded", "", "", "", uint8(0))
	f.Add([]byte("a=1"), "", "X-Note", "password=x", "next=https%3A%2F%2Fu%3Apw%40h&cb=password%3Dx;secret=y", uint8(0))
	f.Add([]byte(strings.Repeat("f=1&", 20000)), "application/x-www-form-urlencoded", "", "", strings.Repeat("q=1;", 5000), uint8(1))
	const secret = "PLANTED-kq7wz-secret"
	m := hzFuzzMonitor()
	hunterSeeds := [][]byte{[]byte(`{"user":"ann","password":"hunter2"}`), hzManyKeys(5000)}
	f.Fuzz(func(t *testing.T, body []byte, ctype, hname, hval, query string, mode uint8) {
		if bytes.Contains(body, []byte(secret)) || strings.Contains(ctype+hname+hval+query, secret) {
			return
		}
		// The secret, under secret keys everywhere a request can carry it
		// (in a JSON body, where a key is a key).
		if strings.Contains(strings.ToLower(ctype), "json") {
			body = bytes.ReplaceAll(body, []byte("PLANT"), []byte(`{"password":"`+secret+`"}`))
		}
		req := httptest.NewRequest(http.MethodPost, "/f/x", bytes.NewReader(body))
		req.URL.Path = "/f/" + secret + "/password=" + secret + "/x"
		req.URL.RawQuery = query + "&password=" + secret + ";password=" + secret +
			"&cb=password%3D" + secret + "&next=https%3A%2F%2Fu%3A" + secret + "%40h"
		if ctype != "" {
			req.Header["Content-Type"] = []string{ctype}
		}
		if hname != "" {
			req.Header[hname] = []string{hval}
		}
		req.Header["X-Password"] = []string{secret}
		req.Header["Authorization"] = []string{"Bearer " + secret}
		req.Header["Cookie"] = []string{"sid=" + secret + "; " + hval}
		cap := captureBody(req, m.cfg.MaxBodyBytes)
		defer func() {
			if cap != nil {
				cap.release(req)
			}
		}()
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = req
		c.Params = gin.Params{{Key: "password", Value: secret}}
		switch mode % 4 {
		case 1:
			_, _ = io.ReadAll(req.Body)
		case 2:
			_ = req.ParseMultipartForm(1 << 20)
			if req.MultipartForm != nil {
				defer req.MultipartForm.RemoveAll() // net/http's server would
			}
		case 3:
			_ = req.ParseForm()
		}
		o := m.capture(c, "panic", "failed: "+hval+" password="+secret, nil, nil)
		if !json.Valid([]byte(o.RequestData)) {
			t.Fatalf("RequestData is not valid JSON: %q", o.RequestData)
		}
		if len(o.RequestData) > store.MaxRequestDataBytes {
			t.Errorf("RequestData is %d bytes, cap %d", len(o.RequestData), store.MaxRequestDataBytes)
		}
		if d := hzJSONDepth(o.RequestData); d > maxContextDepth {
			t.Errorf("RequestData nests %d levels, limit %d", d, maxContextDepth)
		}
		dump := m.requestDump(c)
		for name, s := range map[string]string{"RequestData": o.RequestData, "Message": o.Message, "Path": o.Path, "Host": o.Host, "dump": dump} {
			if name != "dump" && (!utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
				t.Errorf("%s is not clean text: %q", name, s)
			}
			if strings.Contains(s, secret) {
				t.Errorf("the secret survived in %s: %s", name, s)
			}
		}
		for _, seed := range hunterSeeds {
			if bytes.Equal(body, seed) && strings.Contains(o.RequestData, "hunter2") {
				t.Errorf("hunter2 (under a secret key) survived: %.2000s", o.RequestData)
			}
		}
	})
}

// hzManyKeys returns a JSON object of n small keys after a secret one.
func hzManyKeys(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"password":"hunter2"`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	b.WriteString("}")
	return b.Bytes()
}
