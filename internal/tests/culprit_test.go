package tests

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

//go:noinline
func failingOrderHandler(c *gin.Context) {
	_ = c.Error(errors.New("order lookup failed"))
	c.Status(http.StatusInternalServerError)
}

// TestCErrorCulpritIsTheHandler: an error attached with c.Error that
// carries no stack is stored with the handler's frame as its traceback,
// and the occurrence names the handler as its culprit; an error given to
// Record names the function that called Record.
func TestCErrorCulpritIsTheHandler(t *testing.T) {
	var culprits []string
	tm := sqliteMonitor(t, func(c *errmon.Config) {
		c.Ignore = func(o *errmon.Occurrence) bool { culprits = append(culprits, o.Culprit); return false }
	})
	r := tm.engine(false)
	r.GET("/orders/:id", failingOrderHandler)
	r.GET("/record", func(c *gin.Context) {
		tm.Record(c, errors.New("recorded by hand"))
		c.Status(http.StatusOK)
	})
	serve(r, "GET", "/orders/7", nil, nil)
	serve(r, "GET", "/record", nil, nil)

	recs := tm.records(t)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	var tb string
	for _, rec := range recs {
		if rec.Message == "order lookup failed" {
			tb = rec.Traceback
		}
	}
	handler := pkgPath + "failingOrderHandler"
	if got := topFunction(tb); got != handler {
		t.Errorf("c.Error traceback starts with %q, want %q:\n%s", got, handler, tb)
	}
	if !strings.Contains(tb, "culprit_test.go:") {
		t.Errorf("c.Error traceback has no file of the handler:\n%s", tb)
	}
	if len(culprits) != 2 || culprits[0] != handler || !strings.HasPrefix(culprits[1], pkgPath+"TestCErrorCulpritIsTheHandler.func") {
		t.Errorf("culprits %q, want the handler then the closure that called Record", culprits)
	}
}

// TestListLeadsWithMessageAndCulprit: the list's row links the message
// (what broke) and names the type and the culprit after it; the culprit is
// stored with the error.
func TestListLeadsWithMessageAndCulprit(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		r := gin.New()
		r.Use(d.m.Middleware())
		r.GET("/orders/:id", failingOrderHandler)
		serve(r, "GET", "/orders/7", nil, nil)
		dashFlush(t, d.m)
		var rec errmon.ErrorRecord
		if err := tdb.DB.Take(&rec).Error; err != nil {
			t.Fatal(err)
		}
		if rec.Culprit != pkgPath+"failingOrderHandler" {
			t.Errorf("stored culprit %q", rec.Culprit)
		}
		page := d.do("GET", dashPrefix+"/", nil).Body.String()
		for _, want := range []string{
			`<a class="name" href="./` + rec.Hash + `" title="order lookup failed">order lookup failed</a>`,
			`<code>*errors.errorString</code> <span class="muted">in</span> <code>`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("list lacks %q", want)
			}
		}
	})
}
