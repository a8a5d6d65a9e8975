package tests

import (
	"errors"
	"net/http"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// TestPackageRecordUsesTheRequestsMonitor: inside a request served by a
// monitor's middleware, the package-level Record and Track record with
// that monitor, not with the default one; outside it, with the default.
func TestPackageRecordUsesTheRequestsMonitor(t *testing.T) {
	withGinMode(t, gin.TestMode)
	def := sqliteMonitor(t, nil)
	other := sqliteMonitor(t, nil)
	prev := errmon.Default()
	errmon.SetDefault(def.Monitor)
	t.Cleanup(func() { errmon.SetDefault(prev) })

	r := other.engine(false)
	r.GET("/record", func(c *gin.Context) {
		errmon.Record(c, errors.New("recorded in the request"))
		c.Status(http.StatusOK)
	})
	r.GET("/track", errmon.Track(func(c *gin.Context) { panic("tracked in the request") }))
	if w := serve(r, "GET", "/record", nil, nil); w.Code != http.StatusOK {
		t.Fatalf("record: status %d", w.Code)
	}
	if w := serve(r, "GET", "/track", nil, nil); w.Code != http.StatusInternalServerError {
		t.Fatalf("track: status %d", w.Code)
	}
	errmon.Record(nil, errors.New("recorded outside any request"))

	got := map[string]string{}
	for _, tm := range []*testMonitor{def, other} {
		for _, rec := range tm.records(t) {
			got[rec.Message] = map[*testMonitor]string{def: "default", other: "other"}[tm]
		}
	}
	want := map[string]string{
		"recorded in the request":      "other",
		"tracked in the request":       "other",
		"recorded outside any request": "default",
	}
	for msg, where := range want {
		if got[msg] != where {
			t.Errorf("%q stored by the %s monitor, want the %s one (all: %v)", msg, got[msg], where, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("stored %v, want %v", got, want)
	}
}

// TestDefaultMonitorMiddlewareAddsNoAllocation: the default monitor's
// middleware leaves nothing in the gin.Context (the package-level calls
// find it as the default), so a request that does not fail allocates as
// much with it as with gin.Recovery.
func TestDefaultMonitorMiddlewareAddsNoAllocation(t *testing.T) {
	withGinMode(t, gin.TestMode)
	tm := sqliteMonitor(t, nil)
	prev := errmon.Default()
	errmon.SetDefault(tm.Monitor)
	t.Cleanup(func() { errmon.SetDefault(prev) })

	allocs := func(mw gin.HandlerFunc) float64 {
		r := gin.New()
		r.Use(mw)
		r.GET("/ok", func(c *gin.Context) { c.Status(http.StatusNoContent) })
		req, _ := http.NewRequest("GET", "/ok", nil)
		w := &discardWriter{h: http.Header{}}
		return leastAllocs(200, func() { r.ServeHTTP(w, req) })
	}
	base, withDefault := allocs(gin.Recovery()), allocs(tm.Middleware())
	if withDefault > base {
		t.Errorf("a GET through the default monitor's middleware allocates %.0f times, gin.Recovery %.0f", withDefault, base)
	}
}

// discardWriter is an http.ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
