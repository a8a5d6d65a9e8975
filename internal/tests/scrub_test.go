package tests

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// TestRequestSecretsHiddenInMessages: a value the request carries under a
// secret name is hidden where the application repeats it in its own
// error text (message and panic log); short values, which would hide
// ordinary text, are left.
func TestRequestSecretsHiddenInMessages(t *testing.T) {
	withGinMode(t, gin.DebugMode)
	cases := []struct {
		name, target, header, value, message string
	}{
		{"path parameter", "/reset/rst-Q1w2e3", "", "rst-Q1w2e3", "no user for reset code rst-Q1w2e3"},
		{"query value", "/q?password=qv-9x8y7z", "", "qv-9x8y7z", "login qv-9x8y7z rejected upstream"},
		{"query value, encoded in the message", "/q?password=a%2Fb%3Dcd", "", "a/b=cd", "called /login?p=a%2Fb%3Dcd and failed"},
		{"bearer credential", "/q", "Authorization: Bearer bt-5t6y7u8i", "bt-5t6y7u8i", "token bt-5t6y7u8i expired"},
		{"cookie value", "/q", "Cookie: sid=ck-1a2b3c4d", "ck-1a2b3c4d", "session ck-1a2b3c4d unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tdb := openSQLite(t)
			var out syncBuffer
			m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) { c.Output = &out })
			r := gin.New()
			r.Use(m.Middleware())
			fail := func(c *gin.Context) { panic(fmt.Sprintf("%s (%d)", tc.message, 42)) }
			r.GET("/reset/:password", fail)
			r.GET("/q", fail)
			req := httptest.NewRequest(http.MethodGet, tc.target, nil)
			if k, v, ok := strings.Cut(tc.header, ": "); ok {
				req.Header.Set(k, v)
			}
			r.ServeHTTP(httptest.NewRecorder(), req)
			dashFlush(t, m)
			recs := allRecords(t, tdb.DB)
			if len(recs) != 1 {
				t.Fatalf("%d errors stored, want 1", len(recs))
			}
			secret := tc.value
			if strings.Contains(tc.message, "%") {
				secret = "a%2Fb%3Dcd"
			}
			for sink, text := range map[string]string{"message": recs[0].Message, "panic log": out.String()} {
				if strings.Contains(text, secret) {
					t.Errorf("%s shows %q: %s", sink, secret, text)
				}
				if !strings.Contains(text, m.Config().MaskWith) || !strings.Contains(text, "(42)") {
					t.Errorf("%s lost the rest of the message: %s", sink, text)
				}
			}
		})
	}
	t.Run("short values are left", func(t *testing.T) {
		tdb := openSQLite(t)
		m := coalesceMonitor(t, tdb.DB, nil)
		r := gin.New()
		r.Use(m.Middleware())
		r.GET("/q", func(c *gin.Context) { panic("page 1 of 2 failed") })
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/q?password=1", nil))
		dashFlush(t, m)
		if recs := allRecords(t, tdb.DB); len(recs) != 1 || recs[0].Message != "page 1 of 2 failed" {
			t.Errorf("stored %+v, want the message as it was", recs)
		}
	})
}
