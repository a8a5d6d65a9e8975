package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// detailBrowserPanic fails the checkout of the detail browser test: its
// line and the ones around it are the source lines the page shows.
//
//go:noinline
func detailBrowserPanic(cart string) {
	total := len(cart) * 100 // the line before the panic's
	panic(fmt.Sprintf("detail browser: checkout failed (%d)", total%1))
}

// detailBrowserApp is a gin app on m that logs, queries and fails in
// detailBrowserPanic; with dashboard, m's dashboard is mounted too.
func detailBrowserApp(t *testing.T, m *testMonitor, db *gorm.DB, dashboard bool) *httptest.Server {
	t.Helper()
	if err := db.Use(m.GormPlugin()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(m.SlogHandler(nil))
	app := gin.New()
	if dashboard {
		m.InitApp(app)
	} else {
		app.Use(m.Middleware())
	}
	app.GET("/checkout/:cart", func(c *gin.Context) {
		log.InfoContext(c, "loading the cart for checkout", "cart", c.Param("cart"))
		var a []crumbAccount
		db.WithContext(c).Where("name = ?", "detail-browser").Find(&a)
		log.WarnContext(c, "payment provider slow", "provider", "acme-pay")
		detailBrowserPanic(c.Param("cart"))
	})
	srv := httptest.NewServer(app) // 127.0.0.1: LocalOnly lets the browser in
	t.Cleanup(srv.Close)
	return srv
}

// TestDetailBrowser opens, in a real headless Chromium, the detail page of
// an error first seen in release v1.0.0, resolved in the next release (by
// clicking the page's button), and regressed in v1.1.0, on SQLite and on
// PostgreSQL, and checks that a person sees, as visible text of the
// rendered page: the first and latest releases; the history (created in
// v1.0.0, resolved in the next release after v1.0.0, regressed in v1.1.0,
// each at its stored time); the source lines of the failing frame, its
// line marked; the breadcrumbs in order with their levels and attributes,
// in their section and in the sample's row once opened. The page has no
// axe-core violation and does not scroll sideways, on a desktop and on a
// phone.
func TestDetailBrowser(t *testing.T) {
	bin := browserBin(t)
	axe := axeSource(t) + "\n;void 0"
	dashQuietGin(t)
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	panicLine := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "\tpanic(fmt.Sprintf(\"detail browser: checkout failed") && strings.HasSuffix(lines[i-1], "// the line before the panic's") {
			panicLine = i + 1
		}
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			tdb := openTestDB(t, kind)
			if err := tdb.DB.AutoMigrate(&crumbAccount{}); err != nil {
				t.Fatal(err)
			}
			release := func(r string) func(*errmon.Config) {
				return func(c *errmon.Config) { c.Output, c.Release = io.Discard, r }
			}
			first := newTestMonitor(t, tdb.DB, release("v1.0.0"))
			srv := detailBrowserApp(t, first, tdb.DB, true)
			resp, err := http.Get(srv.URL + "/checkout/cart-0001")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			rec := recordWithMessage(t, first.records(t), "detail browser: checkout failed (0)")
			url := srv.URL + "/dev/error/" + rec.Hash

			ctx := newBrowser(t, bin)
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(ctx, chromedp.NavigateResponse(url)); err != nil {
				t.Fatalf("open %s: %v", url, err)
			}
			if err := chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`form[action$="/resolve-next-release"] button`)),
				chromedp.WaitVisible(chromedp.CSS(".notice")),
			); err != nil {
				t.Fatalf("resolve in the next release: %v", err)
			}

			// The next release: it happens again, and regresses.
			next := newTestMonitor(t, tdb.DB, release("v1.1.0"))
			resp, err = http.Get(detailBrowserApp(t, next, tdb.DB, false).URL + "/checkout/cart-0002")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			next.flush(t)
			var stored errmon.ErrorRecord
			if err := tdb.DB.Where("hash = ?", rec.Hash).Take(&stored).Error; err != nil {
				t.Fatal(err)
			}
			if stored.Resolved || stored.Regressions != 1 || stored.FirstRelease != "v1.0.0" || stored.LastRelease != "v1.1.0" {
				t.Fatalf("stored: resolved %v, %d regressions, releases %q to %q; want a regression in v1.1.0 of an error first seen in v1.0.0",
					stored.Resolved, stored.Regressions, stored.FirstRelease, stored.LastRelease)
			}
			// The history as stored, newest first, and its creation made
			// from the row.
			events, err := store.New(tdb.DB).History(context.Background(), &stored, store.EventHistory)
			if err != nil {
				t.Fatal(err)
			}

			for _, vp := range []struct {
				name   string
				width  int64
				mobile bool
			}{{"desktop", 1280, false}, {"phone", 390, true}} {
				view := "detail-" + kind + "-" + vp.name
				opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
				if vp.mobile {
					opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
				}
				if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.width, 900, opts...)); err != nil {
					t.Fatal(err)
				}
				if _, err := chromedp.Run(ctx, chromedp.NavigateResponse(url)); err != nil {
					t.Fatalf("%s: open %s: %v", view, url, err)
				}
				if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#history"))); err != nil {
					t.Fatalf("%s: %v", view, err)
				}
				// visible is the text a person sees of each element sel
				// matches: its innerText, nothing folded, "" when the
				// element itself is not shown (innerText is then all its
				// text).
				visible := func(sel string) []string {
					t.Helper()
					got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
						`[...document.querySelectorAll(`+strconv.Quote(sel)+`)].map(e => e.checkVisibility() ? e.innerText.replace(/\s+/g, ' ').trim() : '')`))
					if err != nil {
						t.Fatalf("%s: text of %s: %v", view, sel, err)
					}
					return got
				}
				one := func(sel string) string {
					t.Helper()
					got := visible(sel)
					if len(got) == 0 {
						t.Errorf("%s: nothing shows %s", view, sel)
						return ""
					}
					return got[0]
				}

				// Releases.
				facts := strings.ToLower(one("dl.facts")) // the terms are shown in capitals
				for _, want := range []string{"first release v1.0.0 latest v1.1.0", "occurrences 2"} {
					if !strings.Contains(facts, want) {
						t.Errorf("%s: the facts do not show %q: %q", view, want, facts)
					}
				}
				if h := one(".head h1"); !strings.Contains(h, "open") || !strings.Contains(h, "1 regression") {
					t.Errorf("%s: the title shows %q, want open with 1 regression", view, h)
				}

				// The history, newest first, each at its stored time.
				want := map[string]string{
					store.EventRegressed: "Regressed in release v1.1.0",
					store.EventResolved:  "Resolved in the next release: stays resolved in v1.0.0",
					store.EventCreated:   "Created in release v1.0.0",
				}
				items := visible("#history ol.history > li")
				if len(items) != len(events) {
					t.Errorf("%s: the history shows %d events, %d in store.History: %q", view, len(items), len(events), items)
				}
				var kinds []string
				for i, ev := range events {
					kinds = append(kinds, ev.Kind)
					if i >= len(items) {
						break
					}
					at := ev.At.UTC().Format("2006-01-02 15:04:05 UTC")
					if !strings.HasPrefix(items[i], at+" ") {
						t.Errorf("%s: history entry %d %q does not start with its time %s", view, i, items[i], at)
					}
					if w, ok := want[ev.Kind]; ok && !strings.Contains(items[i], w) {
						t.Errorf("%s: history entry %d %q, want %q", view, i, items[i], w)
					}
				}
				if got := strings.Join(kinds, " "); got != "regressed resolved created" {
					t.Errorf("%s: history %q, want regressed resolved created", view, got)
				}

				// The source lines of the failing frame, its line marked.
				if panicLine == 0 {
					t.Fatal("detailBrowserPanic's line not found in this file")
				}
				// Each shown line as "number|text", the marked one "number>text".
				src, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelector('.traceback .frame.app pre.src').querySelectorAll('.l')].map(l => {
					const n = l.querySelector('.ln').innerText;
					return (l.checkVisibility() ? n : 'hidden ') + (l.tagName === 'MARK' ? '>' : '|') + l.innerText.slice(n.length).trim();
				})`))
				if err != nil {
					t.Fatalf("%s: the source lines: %v", view, err)
				}
				var wantSrc []string
				for n := panicLine - store.SourceContext; n <= panicLine+store.SourceContext; n++ {
					sep := "|"
					if n == panicLine {
						sep = ">"
					}
					wantSrc = append(wantSrc, strconv.Itoa(n)+sep+strings.TrimSpace(lines[n-1]))
				}
				if strings.Join(src, "\n") != strings.Join(wantSrc, "\n") {
					t.Errorf("%s: the first frame's source lines show\n%s\nwant\n%s", view, strings.Join(src, "\n"), strings.Join(wantSrc, "\n"))
				}
				if fn := one(".traceback .frame.app .fn"); !strings.Contains(fn, "detailBrowserPanic") {
					t.Errorf("%s: the first application frame is %q", view, fn)
				}

				// The breadcrumbs: the latest occurrence's section, then the
				// samples' own once opened (the newest's, cart-0002, first).
				crumbs := visible("#breadcrumbs table.trail > tbody > tr")
				wantCrumbs := func(cart string) []string {
					return []string{"INFO loading the cart for checkout cart " + cart, "SQL SELECT * FROM", "WARN payment provider slow provider acme-pay"}
				}
				checkCrumbs := func(where string, got, want []string) {
					t.Helper()
					if len(got) != len(want) {
						t.Errorf("%s: %s show %d breadcrumbs, want %d: %q", view, where, len(got), len(want), got)
						return
					}
					for i := range want {
						// The time leads each row: 15:04:05.000.
						_, rest, _ := strings.Cut(got[i], " ")
						if !strings.HasPrefix(rest, want[i]) {
							t.Errorf("%s: %s: breadcrumb %d %q, want %q after its time", view, where, i, got[i], want[i])
						}
					}
				}
				checkCrumbs("the breadcrumbs section", crumbs, wantCrumbs("cart-0002"))
				if folded := visible("table.occ td.msg details.sample-crumbs table.trail > tbody > tr"); strings.Join(folded, "") != "" {
					t.Errorf("%s: the samples' breadcrumbs show before they are opened: %q", view, folded)
				}
				if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](
					`[...document.querySelectorAll('details')].map(d => d.open = true).length`)); err != nil {
					t.Fatal(err)
				}
				samples := visible("#occurrences > table.occ > tbody > tr")
				if len(samples) != 2 {
					t.Fatalf("%s: %d samples shown, want 2", view, len(samples))
				}
				for i, cart := range []string{"cart-0002", "cart-0001"} {
					if !strings.Contains(samples[i], "/checkout/"+cart) || !strings.Contains(samples[i], "3 breadcrumbs") {
						t.Errorf("%s: sample %d shows %q, want /checkout/%s with 3 breadcrumbs", view, i, samples[i], cart)
					}
					rows := visible(fmt.Sprintf("#occurrences > table.occ > tbody > tr:nth-child(%d) details.sample-crumbs table.trail > tbody > tr", i+1))
					checkCrumbs("sample "+cart, rows, wantCrumbs(cart))
				}
				for _, s := range samples {
					if !strings.Contains(s, "release v1.") {
						t.Errorf("%s: a sample does not show its release: %q", view, s)
					}
				}
				if !strings.Contains(samples[0], "release v1.1.0") || !strings.Contains(samples[1], "release v1.0.0") {
					t.Errorf("%s: the samples' releases: %q", view, samples)
				}

				a11yCheck(t, ctx, view+" (details open)", vp.width, false, false)
				browserScreenshot(t, ctx, view+".png")
				runAxe(t, ctx, view, axe)
			}
		})
	}
}
