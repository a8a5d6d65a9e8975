package tests

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// TestCrumbsBrowser opens the detail page of an error whose request left
// breadcrumbs that stretch a page (long messages and tokens, nested
// attributes, a long statement, a failed one) at a desktop's, a tablet's
// and a phone's width, and checks what the accessibility test checks on
// every page: no sideways scroll (details closed and open), no cell
// overflowing, no word broken that fits, and no axe-core violation. The
// breadcrumbs show in order, in their section and, once opened, in the
// sample's row of the last occurrences.
func TestCrumbsBrowser(t *testing.T) {
	bin := browserBin(t)
	axe := axeSource(t) + "\n;void 0"
	dashQuietGin(t)
	tdb := openSQLite(t)
	tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) { c.Output = io.Discard })
	if err := tdb.DB.Use(tm.GormPlugin()); err != nil {
		t.Fatal(err)
	}
	if err := tdb.DB.AutoMigrate(&crumbAccount{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(tm.SlogHandler(nil))
	app := gin.New()
	tm.InitApp(app)
	token := strings.Repeat("9f86d081884c7d65", 8)
	app.GET("/checkout/:cart", func(c *gin.Context) {
		log.InfoContext(c, "loading the cart of organisation acme-corporation-international for checkout-service-frontend", "cart", c.Param("cart"),
			"idempotency_key", token, "url", "https://payments.internal.example.com/v2/organisations/acme/carts/"+c.Param("cart")+"?expand=lines,discounts")
		var a []crumbAccount
		tdb.DB.WithContext(c).Where("name = ? AND password <> ?", "x", "y").Order("id").Limit(10).Find(&a)
		log.WarnContext(c, "retrying "+token, slog.Group("retry", "attempt", 2, slog.Group("backoff", "ms", 250, "jitter", true)), "lines", []string{"SKU-0000042-BLUE-XL", "SKU-0000043-RED-S"})
		tdb.DB.WithContext(c.Request.Context()).Exec("UPDATE crumb_missing_table_with_a_rather_long_name_for_the_layout SET note = 'x' WHERE id IN (1, 2, 3)")
		log.ErrorContext(c, "charge refused", "err", fmt.Errorf("gateway answered 402 for cart %s", token))
		panic("crumbs: checkout failed")
	})
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/checkout/cart_01HV3K9Q7Z8Y6X5W4V3U2T1S0R")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rec := recordWithMessage(t, tm.records(t), "crumbs: checkout failed")
	url := srv.URL + "/dev/error/" + rec.Hash

	ctx := newBrowser(t, bin)
	for _, vp := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"desktop", 1280, 900, false}, {"tablet", 768, 1024, true}, {"phone", 390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
		if vp.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.width, vp.height, opts...)); err != nil {
			t.Fatal(err)
		}
		view := "crumbs-" + vp.name
		if _, err := chromedp.Run(ctx, chromedp.NavigateResponse(url)); err != nil {
			t.Fatalf("%s: open %s: %v", view, url, err)
		}
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("table.trail"))); err != nil {
			t.Fatalf("%s: no breadcrumbs: %v", view, err)
		}
		// The section of the latest occurrence's, and the sample's own in
		// the last occurrences (folded until opened), in order.
		levels := func(sel string) string {
			t.Helper()
			got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
				`[...document.querySelectorAll(`+"`"+sel+` > tbody > tr > td.level`+"`"+`)].filter(td => td.checkVisibility()).map(td => td.innerText.trim())`))
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(got, " ")
		}
		if got := levels("#breadcrumbs table.trail"); got != "INFO SQL WARN SQL ERROR" {
			t.Errorf("%s: breadcrumbs %q, want INFO SQL WARN SQL ERROR", view, got)
		}
		if got := levels("table.occ td.msg details.sample-crumbs table.trail"); got != "" {
			t.Errorf("%s: the sample's breadcrumbs show folded: %q", view, got)
		}
		a11yCheck(t, ctx, view, vp.width, false, false)
		browserScreenshot(t, ctx, view+".png")
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](
			`[...document.querySelectorAll('details')].map(d => d.open = true).length`)); err != nil {
			t.Fatal(err)
		}
		if got := levels("table.occ td.msg details.sample-crumbs table.trail"); got != "INFO SQL WARN SQL ERROR" {
			t.Errorf("%s: the sample's breadcrumbs %q, want INFO SQL WARN SQL ERROR", view, got)
		}
		a11yCheck(t, ctx, view+" (details open)", vp.width, false, false)
		browserScreenshot(t, ctx, view+"-open.png")
		runAxe(t, ctx, view, axe)
	}
}
