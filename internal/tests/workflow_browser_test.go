package tests

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWorkflowBrowser: the pages of the workflow (a snoozed error with a
// history and a long note, a muted error resolved in the next release of a
// long release name, the list with its bulk snooze, the Muted tab) have
// no axe-core violation and do not scroll sideways, on a 390 px phone and
// on a desktop.
func TestWorkflowBrowser(t *testing.T) {
	bin := browserBin(t)
	axe := axeSource(t) + "\n;void 0"
	d := newDash(t, openSQLite(t), nil)
	a, b := dashRecord("wf-browser-a", 12, time.Minute), dashRecord("wf-browser-b", 3, time.Hour)
	a.LastRelease, a.FirstRelease = "v2.3.1", "v2.3.0"
	b.LastRelease, b.FirstRelease = "release-2025-01-02-"+strings.Repeat("abcdef", 7), "v1"
	d.seed(t, a, b)
	post := func(hash, action string, form url.Values) {
		t.Helper()
		if w := d.do("POST", dashPrefix+"/"+hash+"/"+action, form); w.Code != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", action, w.Code, w.Body)
		}
	}
	post(a.Hash, "snooze", url.Values{"more": {"100"}})
	post(a.Hash, "note", url.Values{"note": {"Rolled back in " + strings.Repeat("deployment-", 30) + "\nline two of the note"}})
	post(a.Hash, "mute", nil)
	post(a.Hash, "unmute", nil)
	post(b.Hash, "mute", nil)
	post(b.Hash, "resolve-next-release", nil)
	post(b.Hash, "note", url.Values{"note": {"short"}})
	srv := httptest.NewServer(d.h)
	t.Cleanup(srv.Close)
	ctx := newBrowser(t, bin)
	pages := []struct{ name, path, wait string }{
		{"snoozed", "/" + a.Hash, "#history"},
		{"muted", "/" + b.Hash, "#history"},
		{"list", "/", "table.errors"},
		{"mutedtab", "/?status=muted", "table.errors"},
	}
	for _, vp := range []struct {
		name   string
		width  int64
		mobile bool
	}{{"phone", 390, true}, {"desktop", 1280, false}} {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
		if vp.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.width, 900, opts...)); err != nil {
			t.Fatal(err)
		}
		for _, pg := range pages {
			view := "workflow-" + pg.name + "-" + vp.name
			if _, err := chromedp.Run(ctx, chromedp.NavigateResponse(srv.URL+dashPrefix+pg.path)); err != nil {
				t.Fatalf("%s: %v", view, err)
			}
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(pg.wait))); err != nil {
				t.Fatalf("%s: %s: %v", view, pg.wait, err)
			}
			p := a11yCheck(t, ctx, view, vp.width, false, false)
			if vp.mobile {
				browserScreenshot(t, ctx, view+".png")
			}
			ax := runAxe(t, ctx, view, axe)
			t.Logf("%s: scrollWidth %d (innerWidth %d); axe: %d violations", view, p.ScrollWidth, p.InnerWidth, len(ax.Violations))
		}
	}
}
