package errmon

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// A cut made to the budget, before masking, never keeps half a secret
// that masking would then not recognize: a string backs off to the last
// separator, a query or form cut short drops its partial last pair.
func TestCaptureCutsKeepSecretsWhole(t *testing.T) {
	const secret = "S3CR3T-cut-kq7wz"
	const part = "S3CR3T" // what must not survive, even half of it
	// straddle returns filler, s and a tail such that a cut keeping keep
	// bytes lands 8 bytes into the secret in s, past part.
	straddle := func(keep int, s string) string {
		return strings.Repeat("a", keep-8-strings.Index(s, secret)-1) + " " + s + " " + strings.Repeat("t", 40)
	}
	// A string longer than its cap keeps cap-20 bytes (the marker
	// "… [NNNN bytes cut]" takes 20).
	const keepString = maxContextString - 20
	urlText := "next=https://u:" + secret + "@host/x"
	encodedPair := "next=https%3A%2F%2Fu%3A" + secret + "%40host"
	for _, tc := range []struct {
		name   string
		target string
		ctype  string
		body   string
		header string
		limit  int64 // Config.MaxBodyBytes; 0 keeps the default
		read   bool
	}{
		{name: "text body across the string cap", ctype: "text/plain", body: straddle(keepString, urlText), read: true},
		{name: "text body across the string cap, bare value", ctype: "text/plain", body: straddle(keepString, "password="+secret), read: true},
		{name: "text body across the string cap, JWT-like", ctype: "text/plain", body: straddle(keepString, "token=eyJ"+secret+".x.y"), read: true},
		{name: "header across the string cap", header: straddle(keepString, urlText)},
		{name: "query across the url cap", target: "/c?pad=" + strings.Repeat("p", maxContextString-40) + "&" + encodedPair},
		{name: "query across the query share", target: "/c?" + strings.Repeat("a=1&", (queryShare-20)/4) + encodedPair + "&z=1"},
		{name: "form body cut by MaxBodyBytes", ctype: "application/x-www-form-urlencoded", limit: 1024,
			body: strings.Repeat("f=1&", 1000/4) + encodedPair + "&z=1", read: true},
		{name: "form body across the budget", ctype: "application/x-www-form-urlencoded",
			body: strings.Repeat("f=1&", 60000/4) + encodedPair + "&z=1", read: true},
		{name: "path across maxPathBytes", target: "/c/" + strings.Repeat("p", store.MaxPathBytes-20-8-len("/c/")-len("/https://u:")) +
			"/https://u:" + secret + "@host/x/more-more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := hzFuzzMonitor()
			m.cfg.MaxBodyBytes = defaultMaxBodyBytes
			if tc.limit != 0 {
				m.cfg.MaxBodyBytes = tc.limit
			}
			target := tc.target
			if target == "" {
				target = "/c"
			}
			req := httptest.NewRequest("POST", target, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.header != "" {
				req.Header.Set("X-Note", tc.header)
			}
			body := captureBody(req, m.cfg.MaxBodyBytes)
			defer func() {
				if body != nil {
					body.release(req)
				}
			}()
			c, _ := gin.CreateTestContext(httptest.NewRecorder())
			c.Request = req
			if tc.read {
				_, _ = io.ReadAll(req.Body)
			}
			o := m.capture(c, "panic", "cut case", nil, nil)
			dump := m.requestDump(c)
			for name, s := range map[string]string{"RequestData": o.RequestData, "Path": o.Path, "dump": dump} {
				if i := strings.Index(s, part); i >= 0 {
					t.Errorf("part of the secret survived in %s: …%s…", name, s[max(i-200, 0):min(i+60, len(s))])
				}
			}
			if !strings.Contains(o.RequestData+o.Path, "bytes cut]") {
				t.Errorf("no cut marker: %.300s … %s", o.RequestData, o.Path)
			}
		})
	}
}
