package tests

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// TestErrorID: a recorded failure answers with the short id of its error
// (a prefix of the stored hash) in X-Errmon-Id, and ErrorID gives it to a
// RecoveryHandler for its error page; a response already written keeps
// its headers, and ErrorID still tells.
func TestErrorID(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tdb := openSQLite(t)
	m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) {
		c.RecoveryHandler = func(c *gin.Context, _ any) {
			c.String(http.StatusInternalServerError, "Something broke. Quote this id: %s", errmon.ErrorID(c))
		}
	})
	var late string
	r := gin.New()
	r.Use(m.Middleware())
	r.GET("/panic", func(c *gin.Context) { panic("checkout exploded") })
	r.GET("/cerror", func(c *gin.Context) {
		_ = c.Error(errors.New("inventory unreachable"))
		c.Status(http.StatusBadGateway)
	})
	r.GET("/written", func(c *gin.Context) {
		c.String(http.StatusOK, "done")
		m.Record(c, errors.New("audit log write failed"))
		late = errmon.ErrorID(c)
	})
	r.GET("/ok", func(c *gin.Context) { c.String(http.StatusOK, "fine") })
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	panicked, cerr, written, ok := get("/panic"), get("/cerror"), get("/written"), get("/ok")
	dashFlush(t, m)
	hashes := map[string]string{}
	for _, rec := range allRecords(t, tdb.DB) {
		hashes[rec.Message] = rec.Hash
	}
	for name, tc := range map[string]struct {
		w    *httptest.ResponseRecorder
		msg  string
		want bool
	}{
		"panic":    {panicked, "checkout exploded", true},
		"c.Error":  {cerr, "inventory unreachable", true},
		"written":  {written, "audit log write failed", false},
		"no error": {ok, "", false},
	} {
		id := tc.w.Header().Get("X-Errmon-Id")
		if !tc.want {
			if id != "" {
				t.Errorf("%s: X-Errmon-Id %q, want none", name, id)
			}
			continue
		}
		if len(id) != 12 || !strings.HasPrefix(hashes[tc.msg], id) {
			t.Errorf("%s: X-Errmon-Id %q, want the first 12 digits of %q", name, id, hashes[tc.msg])
		}
	}
	if body := panicked.Body.String(); !strings.HasSuffix(body, panicked.Header().Get("X-Errmon-Id")) {
		t.Errorf("the RecoveryHandler's page %q does not quote the id", body)
	}
	if !strings.HasPrefix(hashes["audit log write failed"], late) || late == "" {
		t.Errorf("ErrorID after the response was written = %q, want a prefix of %q", late, hashes["audit log write failed"])
	}
}

// TestShortIDAddress: {prefix}/{id}, for a prefix of 8 to 63 hex digits,
// redirects to the one error it names (page and API), and is a 404 when it
// names none or two.
func TestShortIDAddress(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		hash := func(prefix string) string { return prefix + strings.Repeat("0", 64-len(prefix)) }
		for i, h := range []string{hash("0fffffffff1"), hash("1000000000a"), hash("1000000000b"), hash("7ac3e0d2f19a5")} {
			rec := dashRecord(fmt.Sprint("short ", i), 1, 0)
			rec.Hash = h
			d.seed(t, rec)
		}
		for _, tc := range []struct {
			target, location string
			code             int
		}{
			{"/dev/error/7ac3e0d2f19a", hash("7ac3e0d2f19a5"), http.StatusSeeOther},
			{"/dev/error/api/errors/7ac3e0d2", hash("7ac3e0d2f19a5"), http.StatusSeeOther},
			{"/dev/error/0fffffffff", hash("0fffffffff1"), http.StatusSeeOther}, // the range ends at 1000000000
			{"/dev/error/1000000000", "", http.StatusNotFound},                  // two errors
			{"/dev/error/1000000000b", hash("1000000000b"), http.StatusSeeOther},
			{"/dev/error/deadbeef00", "", http.StatusNotFound},
			{"/dev/error/7ac3e0d", "", http.StatusNotFound}, // too short to look up
		} {
			w := d.do(http.MethodGet, tc.target, nil)
			if w.Code != tc.code || w.Header().Get("Location") != tc.location {
				t.Errorf("GET %s: %d Location %q, want %d %q", tc.target, w.Code, w.Header().Get("Location"), tc.code, tc.location)
			}
		}
	})
}
