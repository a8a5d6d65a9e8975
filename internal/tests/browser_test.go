package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
)

// TestDashboardBrowser drives the dashboard in a real headless Chromium:
// it opens the list, searches, opens a detail page, resolves the error,
// checks the status filters, and keeps screenshots.
//
// The browser is ERRMON_CHROMIUM (default /usr/bin/chromium). When it is
// missing the test skips, unless ERRMON_REQUIRE_BROWSER=1 (CI), where it
// fails. Screenshots are kept in testdata/output/ (ignored by git), or in
// ERRMON_SCREENSHOT_DIR when it is set.
func TestDashboardBrowser(t *testing.T) {
	bin := browserBin(t)

	// The application: a gin app with errmon and three failing routes.
	tdb := openSQLite(t)
	cfg := errmon.DefaultConfig()
	cfg.DB, cfg.Output = tdb.DB, nil
	cfg.FlushInterval = time.Hour
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := errmon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	dashQuietGin(t)
	app := gin.New()
	m.InitApp(app)
	app.GET("/items/:id", browserItemHandler)
	app.GET("/pay", func(c *gin.Context) {
		_ = c.Error(errors.New("payment gateway timeout"))
		c.AbortWithStatus(http.StatusBadGateway)
	})
	app.GET("/xss", func(c *gin.Context) { panic("<script>alert(1)</script>") })
	srv := httptest.NewServer(app) // 127.0.0.1: LocalOnly lets the browser in
	t.Cleanup(srv.Close)
	for _, p := range []string{"/items/5", "/items/7", "/pay", "/xss"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	dashFlush(t, m)

	ctx := newBrowser(t, bin)

	// Watch for script dialogs (an XSS would open one) and CSP violations.
	var mu sync.Mutex
	var dialogs, cspReports []string
	dialogEvents := chromedp.Events(ctx, page.JavascriptDialogOpening)
	logEvents := chromedp.Events(ctx, cdplog.EntryAdded)
	go func() {
		for ev, err := range dialogEvents {
			if err != nil {
				return
			}
			mu.Lock()
			dialogs = append(dialogs, ev.Message)
			mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	go func() {
		for ev, err := range logEvents {
			if err != nil {
				return
			}
			if ev.Entry != nil && (ev.Entry.Source == cdplog.EntrySourceSecurity || strings.Contains(ev.Entry.Text, "Content Security Policy")) {
				mu.Lock()
				cspReports = append(cspReports, ev.Entry.Text)
				mu.Unlock()
			}
		}
	}()

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	count := func(sel string) int {
		t.Helper()
		nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(0)))
		if err != nil {
			t.Fatalf("nodes %s: %v", sel, err)
		}
		return len(nodes)
	}
	screenshot := func(name string) {
		t.Helper()
		browserScreenshot(t, ctx, "dashboard-"+name)
	}

	// 1. The list shows the three errors, as text.
	run("open the list",
		chromedp.Navigate(srv.URL+"/dev/error"), // redirected to /dev/error/
		chromedp.WaitVisible(chromedp.CSS("table.errors")),
	)
	body := text("body")
	// The list leads with the message (what broke), shown as text, then
	// the type.
	for _, want := range []string{"Errors 3", "runtime.boundsError", "index out of range", "payment gateway timeout",
		"<script>alert(1)</script>", "GET", "/items/:id"} {
		if !strings.Contains(body, want) {
			t.Errorf("list: a person does not see %q in:\n%s", want, body)
		}
	}
	if n := count("table.errors tbody tr"); n != 3 {
		t.Errorf("list: %d rows, want 3", n)
	}
	if n := count("td.spark svg rect.bar:not(.zero)"); n < 3 {
		t.Errorf("list: %d non-empty sparkline bars, want one per error", n)
	}
	styles, err := chromedp.Run(ctx, chromedp.ComputedStyle(chromedp.CSS("header.top")))
	if err != nil {
		t.Fatal(err)
	}
	sticky := false
	for _, p := range styles {
		if p.Name == "position" && p.Value == "sticky" {
			sticky = true
		}
	}
	if !sticky {
		t.Error("the style sheet did not apply (blocked by the CSP?)")
	}
	screenshot("list.png")

	// 2. Search.
	run("search",
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "out of range\n"),
		chromedp.WaitVisible(chromedp.ID("searching")),
	)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.Contains(loc, "q=out+of+range") {
		t.Errorf("search URL %q (%v)", loc, err)
	}
	if n := count("table.errors tbody tr"); n != 1 {
		t.Errorf("search: %d rows, want 1", n)
	}
	if row := text("table.errors tbody tr"); !strings.Contains(row, "runtime.boundsError") || !strings.Contains(row, "2") {
		t.Errorf("search row: %q", row)
	}

	// 3. The detail page.
	run("open the detail",
		chromedp.Click(chromedp.CSS("table.errors a.name")),
		chromedp.WaitVisible(chromedp.CSS(".head h1")),
	)
	head := text(".head")
	if !strings.Contains(head, "runtime.boundsError") || !strings.Contains(head, "index out of range [5] with length 0") &&
		!strings.Contains(head, "index out of range [7] with length 0") || !strings.Contains(head, "open") {
		t.Errorf("detail head: %q", head)
	}
	if occ := text(".facts dd.big"); occ != "2" {
		t.Errorf("detail: occurrences %q, want 2", occ)
	}
	if n := count(".traceback .frame.app"); n < 1 {
		t.Errorf("detail: %d application frames", n)
	}
	if tb := text(".traceback .frame.app"); !strings.Contains(tb, "browserItemHandler") || !strings.Contains(tb, "browser_test.go") {
		t.Errorf("first application frame: %q", tb)
	}
	if ctxText := text("dl.ctx"); !strings.Contains(ctxText, "client_ip") || !strings.Contains(ctxText, "/items/") {
		t.Errorf("request context: %q", ctxText)
	}
	if n := count("svg.chart rect.bar:not(.zero)"); n < 2 {
		t.Errorf("detail charts: %d non-empty bars", n)
	}
	screenshot("detail.png")

	// 4. Resolve.
	run("resolve",
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if n := text(".notice"); !strings.Contains(n, "Marked as resolved") {
		t.Errorf("notice %q", n)
	}
	if h := text(".head h1"); !strings.Contains(h, "resolved") {
		t.Errorf("detail after resolve: %q", h)
	}

	// 5. The filters: resolved shows it, open does not.
	run("resolved filter",
		chromedp.Click(chromedp.CSS(".crumbs a")),
		chromedp.WaitVisible(chromedp.CSS("table.errors")),
		chromedp.Click(chromedp.CSS(`nav.tabs a[href*="status=resolved"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav.tabs a.active[href*="status=resolved"]`)),
	)
	if n := count("table.errors tbody tr"); n != 1 {
		t.Errorf("resolved filter: %d rows, want 1", n)
	}
	if row := text("table.errors tbody tr"); !strings.Contains(row, "runtime.boundsError") || !strings.Contains(row, "resolved") {
		t.Errorf("resolved row: %q", row)
	}
	run("open filter",
		chromedp.Click(chromedp.CSS(`nav.tabs a[href*="status=open"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav.tabs a.active[href*="status=open"]`)),
	)
	if body := text("main"); strings.Contains(body, "runtime.boundsError") || !strings.Contains(body, "payment gateway timeout") {
		t.Errorf("open filter shows:\n%s", body)
	}
	run("back to all",
		chromedp.Click(chromedp.CSS(`nav.tabs a[href="./"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav.tabs a.active[href="./"]`)),
	)
	screenshot("list-after-resolve.png")

	// 6. The bulk form: tick one error and delete it.
	var pay errmon.ErrorRecord
	if err := tdb.DB.Where("message = ?", "payment gateway timeout").Take(&pay).Error; err != nil {
		t.Fatal(err)
	}
	run("bulk delete asks first",
		chromedp.Click(chromedp.CSS(`input[type=checkbox][value="`+pay.Hash+`"]`)),
		chromedp.Click(chromedp.CSS(`.bulkbar button[value="delete"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.actions button.danger`)),
	)
	if body := text("main"); !strings.Contains(body, "Delete 1 error?") || !strings.Contains(body, "payment gateway timeout") {
		t.Errorf("the confirmation page shows:\n%s", body)
	}
	screenshot("confirm-delete.png")
	run("bulk delete confirmed",
		chromedp.Click(chromedp.CSS(`form.actions button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if n := text(".notice"); !strings.Contains(n, "1 error deleted") {
		t.Errorf("bulk delete notice %q", n)
	}
	if n := count("table.errors tbody tr"); n != 2 {
		t.Errorf("after bulk delete: %d rows, want 2", n)
	}
	if body := text("main"); strings.Contains(body, "payment gateway timeout") {
		t.Error("the deleted error is still listed")
	}
	if (&dashEnv{db: tdb.DB}).get(t, pay.Hash) != nil {
		t.Error("the deleted error is still stored")
	}

	// The same page in dark mode: the style sheet follows the system.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	bodyStyle, err := chromedp.Run(ctx, chromedp.ComputedStyle(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range bodyStyle {
		if p.Name == "background-color" && p.Value != "rgb(15, 19, 24)" {
			t.Errorf("dark mode background %s", p.Value)
		}
	}
	screenshot("list-dark.png")

	if rec := (&dashEnv{db: tdb.DB}).get(t, dashHashOfFirst(t, m)); rec == nil || !rec.Resolved {
		t.Errorf("the database does not have the error resolved: %+v", rec)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialogs) > 0 {
		t.Errorf("script dialogs opened (XSS): %q", dialogs)
	}
	if len(cspReports) > 0 {
		t.Errorf("Content-Security-Policy reports: %q", cspReports)
	}
}

// browserItemHandler fails with an index out of range for every id.
func browserItemHandler(c *gin.Context) {
	var items []string
	i, _ := strconv.Atoi(c.Param("id"))
	c.String(http.StatusOK, items[i])
}

// dashHashOfFirst returns the hash of the bounds error.
func dashHashOfFirst(t *testing.T, m *errmon.Monitor) string {
	t.Helper()
	var rec errmon.ErrorRecord
	if err := m.Config().DB.Where("exception_name = ?", "runtime.boundsError").Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	return rec.Hash
}

// browserBin returns the Chromium the browser tests drive:
// ERRMON_CHROMIUM, default /usr/bin/chromium. When it is missing the test
// skips, unless ERRMON_REQUIRE_BROWSER=1 (CI), where it fails.
func browserBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ERRMON_CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("ERRMON_REQUIRE_BROWSER") == "1" {
			t.Fatalf("ERRMON_REQUIRE_BROWSER=1 but no browser at %s (apt-get install chromium, or set ERRMON_CHROMIUM): %v", bin, err)
		}
		t.Skipf("browser test skipped: no Chromium at %s (apt-get install chromium, or set ERRMON_CHROMIUM)", bin)
	}
	return bin
}

// newBrowser starts a headless Chromium, quiet on the closed network, with
// a fresh profile, and returns the context of its tab. It ends with the
// test.
func newBrowser(t *testing.T, bin string) context.Context {
	t.Helper()
	base, cancelBase := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancelBase)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(base,
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true), // the same layout width on every machine
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelCtx)
	return ctx
}

// browserScreenshot keeps a full-page PNG of the tab in testdata/output/
// (ignored by git), or in ERRMON_SCREENSHOT_DIR when it is set.
func browserScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	shotDir := os.Getenv("ERRMON_SCREENSHOT_DIR")
	if shotDir == "" {
		shotDir = filepath.Join("testdata", "output")
	}
	if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Fatalf("screenshot %s is not a PNG (%d bytes)", name, len(png))
	}
	path := filepath.Join(shotDir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// axeVersion is the axe-core the accessibility test installs when
// ERRMON_AXE_JS does not name one.
const axeVersion = "4"

// axeSource returns the text of axe.min.js: the file ERRMON_AXE_JS names
// (scripts/test.sh sets it), else the copy in the user's cache directory,
// installed there with npm when missing. Without it the test fails: the
// accessibility check is never skipped where a browser is.
func axeSource(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ERRMON_AXE_JS"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("ERRMON_AXE_JS: %v", err)
		}
		return string(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "errmon", "axe-core")
	path := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(path); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("axe-core is needed: set ERRMON_AXE_JS to an axe.min.js, or install npm (apt-get install npm) so that the test installs axe-core@%s into %s", axeVersion, dir)
		}
		cmd := exec.Command(npm, "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
			"--loglevel=error", "--prefix", dir, "axe-core@"+axeVersion)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install axe-core@%s into %s: %v\n%s", axeVersion, dir, err, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	return string(b)
}

// TestDashboardBrowserAccessibility opens each kind of dashboard page (the
// list, a detail, search results, the empty list, a search without
// matches, not found) at a desktop's 1280 px, a tablet's 768 px and a
// phone's 390 px, in light and dark mode (prefers-color-scheme), and checks
// on each:
//   - no horizontal scroll: document.documentElement.scrollWidth is at most
//     window.innerWidth, with every <details> closed and open;
//   - no word broken across two lines when it fits on one: long tokens
//     (routes, paths, function names) break at their separators;
//   - chart labels at least 10 px, none overlapping or cut off, and a
//     y-axis label on every chart;
//   - an inline icon (<link rel=icon> with a data: URI) and no request but
//     the page and its style sheet, none failing (no /favicon.ico);
//   - labelled tabs (a named nav, the current tab marked aria-current);
//   - axe-core (injected through the DevTools protocol, as the page's CSP
//     allows no script) finds no violation, every <details> open.
//
// axe.min.js comes from ERRMON_AXE_JS, else npm installs axe-core@4 into the
// user's cache directory (see axeSource). Screenshots of every phone and
// tablet view and every dark view are kept beside the others (a11y-*.png).
func TestDashboardBrowserAccessibility(t *testing.T) {
	bin := browserBin(t)
	axe := axeSource(t) + "\n;void 0"
	dashQuietGin(t)
	log := &requestLog{}
	full := a11ySite(t, log, true)
	empty := a11ySite(t, log, false)
	ctx := newBrowser(t, bin)

	const prefix = "/dev/error"
	pages := []struct {
		name, url string
		status    int
		wait      string // a selector the page shows
		list      bool   // has the status and sort tabs
	}{
		{"list", full.url + prefix + "/", 200, "table.errors", true},
		{"detail", full.url + prefix + "/" + full.detail, 200, ".traceback", false},
		{"search", full.url + prefix + "/?q=deploy", 200, "#searching", true},
		{"empty", empty.url + prefix + "/", 200, ".empty", true},
		{"nomatch", full.url + prefix + "/?q=matches-nothing", 200, ".empty", true},
		{"notfound", full.url + prefix + "/" + strings.Repeat("0", 64), 404, ".empty h1", false},
	}
	viewports := []struct {
		name          string
		width, height int64
		mobile        bool // a touch device whose browser honours the viewport meta tag
	}{
		{"desktop", 1280, 900, false},
		{"tablet", 768, 1024, true},
		{"phone", 390, 844, true},
	}
	nodesByRule := map[string]int{} // axe: failing nodes per rule, over all views
	viewsByRule := map[string]int{} // axe: views with the rule failing
	views := 0
	for _, vp := range viewports {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
		if vp.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.width, vp.height, opts...)); err != nil {
			t.Fatal(err)
		}
		for _, scheme := range []string{"light", "dark"} {
			if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			}); err != nil {
				t.Fatal(err)
			}
			for _, pg := range pages {
				view := pg.name + "-" + vp.name + "-" + scheme
				views++
				mark := log.mark()
				resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(pg.url))
				if err != nil {
					t.Fatalf("%s: open %s: %v", view, pg.url, err)
				}
				if resp.Status != int64(pg.status) {
					t.Errorf("%s: status %d, want %d", view, resp.Status, pg.status)
				}
				if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(pg.wait))); err != nil {
					t.Fatalf("%s: %s: %v", view, pg.wait, err)
				}
				before := a11yCheck(t, ctx, view, vp.width, true, pg.list)
				if vp.mobile || scheme == "dark" {
					browserScreenshot(t, ctx, "a11y-"+view+".png")
				}
				if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](
					`[...document.querySelectorAll('details')].map(d => d.open = true).length`)); err != nil {
					t.Fatal(err)
				}
				after := a11yCheck(t, ctx, view+" (details open)", vp.width, false, false)

				ax := runAxe(t, ctx, view, axe)
				var rules []string
				for _, v := range ax.Violations {
					nodesByRule[v.ID] += len(v.Nodes)
					viewsByRule[v.ID]++
					rules = append(rules, fmt.Sprintf("%s ×%d", v.ID, len(v.Nodes)))
				}
				t.Logf("%s: scrollWidth %d (innerWidth %d), %d with details open; height %d; axe: %d violations %v",
					view, before.ScrollWidth, before.InnerWidth, after.ScrollWidth, before.ScrollHeight, len(ax.Violations), rules)
				for _, r := range log.since(mark) {
					if r.status >= 400 && r.uri != strings.TrimPrefix(pg.url, r.host) {
						t.Errorf("%s: request %s failed: %d", view, r.uri, r.status)
					} else if r.uri != strings.TrimPrefix(pg.url, r.host) && r.uri != prefix+"/assets/dashboard.css" {
						t.Errorf("%s: an extra request: %s (%d)", view, r.uri, r.status)
					}
				}
			}
		}
	}
	var summary []string
	for id, n := range nodesByRule {
		summary = append(summary, fmt.Sprintf("%s: %d nodes in %d views", id, n, viewsByRule[id]))
	}
	slices.Sort(summary)
	t.Logf("axe-core over %d views: %d rules violated %v", views, len(summary), summary)
	time.Sleep(300 * time.Millisecond) // a late favicon request
	for _, r := range log.since(0) {
		if strings.Contains(r.uri, "favicon") {
			t.Errorf("the browser asked for %s (%d): the pages have no inline icon", r.uri, r.status)
			break
		}
	}
}

// runAxe injects axe-core (axe, its source) into the page of ctx, runs it
// and reports each violation as an error of the test, naming view. It
// returns the result, for callers that also tally the rules.
func runAxe(t *testing.T, ctx context.Context, view, axe string) axeResult {
	t.Helper()
	// Runtime.evaluate runs whatever the page's CSP says.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](axe)); err != nil {
		t.Fatalf("%s: inject axe-core: %v", view, err)
	}
	ax, err := chromedp.Run(ctx, chromedp.Evaluate[axeResult](axeRunJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe.run: %v", view, err)
	}
	for _, v := range ax.Violations {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: axe-core %s: %s (%s): %s", view, ax.Version, v.ID, v.Impact, v.Help)
		for _, n := range v.Nodes {
			fmt.Fprintf(&b, "\n    %s\n        %s", n.Target, n.Summary)
		}
		t.Error(b.String())
	}
	return ax
}

// axeRunJS runs axe-core on the page and keeps what the test reports.
const axeRunJS = `axe.run(document, {resultTypes: ['violations']}).then(r => ({
  version: axe.version,
  violations: r.violations.map(v => ({
    id: v.id, impact: v.impact || '', help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.map(String).join(' '), summary: (n.failureSummary || '').replace(/\s+/g, ' ')})),
  })),
}))`

type axeResult struct {
	Version    string `json:"version"`
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target  string `json:"target"`
			Summary string `json:"summary"`
		} `json:"nodes"`
	} `json:"violations"`
}

// a11yProbe is what a11yProbeJS measures on a page.
type a11yProbe struct {
	ScrollWidth  int      `json:"scrollWidth"`
	InnerWidth   int      `json:"innerWidth"`
	ScrollHeight int      `json:"scrollHeight"`
	Wide         []string `json:"wide"`     // the innermost elements past the right edge
	Spill        []string `json:"spill"`    // table cells whose content is wider than they are
	Split        []string `json:"split"`    // words broken across lines though they fit on one
	Labels       []string `json:"labels"`   // chart labels too small, overlapping or cut off
	NoY          []string `json:"noY"`      // charts without a y-axis label (text.ymax)
	Icon         string   `json:"icon"`     // href of <link rel=icon>
	Tabs         []string `json:"tabs"`     // per nav.tabs: "accessible name|visible label|current tab"
	Rows         int      `json:"rows"`     // of the list
	Sparks       int      `json:"sparks"`   // sparklines shown in the list
	MsgLines     []int    `json:"msgLines"` // lines of each message in the list
}

// a11yProbeJS is a function of the viewport's width.
const a11yProbeJS = `(vw => {
  const iw = Math.min(window.innerWidth, vw), de = document.documentElement;
  const cls = el => (typeof el.className === 'string' ? el.className : (el.className && el.className.baseVal) || '').trim();
  const desc = el => {
    let s = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '');
    if (cls(el)) s += '.' + cls(el).split(/\s+/).join('.');
    const txt = (el.getAttribute('aria-label') || el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 50);
    return txt ? s + ' "' + txt + '"' : s;
  };
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const out = {scrollWidth: de.scrollWidth, innerWidth: iw, scrollHeight: de.scrollHeight,
    wide: [], spill: [], split: [], labels: [], noY: [], icon: '', tabs: [],
    rows: document.querySelectorAll('table.errors tbody tr').length,
    sparks: [...document.querySelectorAll('table.errors svg.spark')].filter(shown).length,
    msgLines: [...document.querySelectorAll('table.errors .msg')].map(el =>
      Math.round(el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight)))};
  const icon = document.querySelector('link[rel~="icon"]');
  out.icon = icon ? icon.getAttribute('href') : '';

  if (de.scrollWidth > iw) {
    const past = new Set();
    for (const el of document.body.querySelectorAll('*')) {
      if (el.getBoundingClientRect().right > iw + 0.5) past.add(el);
    }
    for (const el of past) {
      if ([...el.children].some(c => past.has(c))) continue;
      let clipped = false;
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== 'visible' && a.getBoundingClientRect().right <= iw + 0.5) { clipped = true; break; }
      }
      if (clipped) continue;
      const r = el.getBoundingClientRect();
      out.wide.push(desc(el) + ' right ' + Math.round(r.right) + ' width ' + Math.round(r.width));
      if (out.wide.length >= 12) break;
    }
  }

  const clipped = el => { for (let a = el; a; a = a.parentElement) if (getComputedStyle(a).clip !== 'auto') return true; return false; };
  for (const td of document.querySelectorAll('main td, main th')) {
    if (shown(td) && !clipped(td) && td.scrollWidth > td.clientWidth + 1) out.spill.push(desc(td) + ' ' + td.scrollWidth + ' px in ' + td.clientWidth);
  }

  const lineWidth = node => {
    let el = node.parentElement;
    while (el && getComputedStyle(el).display.startsWith('inline')) el = el.parentElement;
    if (!el) return Infinity;
    const cs = getComputedStyle(el);
    return el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  };
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  // A word is a run of letters and digits. One split across lines though it
  // fits on one is reported, unless its token (a run without spaces) holds
  // a word wider than the line: that one breaks anywhere, and so may the
  // words beside it.
  const measure = (n, from, to) => {
    range.setStart(n, from);
    range.setEnd(n, to);
    const rects = [...range.getClientRects()].filter(r => r.width > 0);
    return {lines: new Set(rects.map(r => Math.round(r.top))).size, width: rects.reduce((s, r) => s + r.width, 0)};
  };
  for (let n; (n = walker.nextNode()) && out.split.length < 20; ) {
    const line = lineWidth(n);
    for (const tok of n.data.matchAll(/\S+/g)) {
      const words = [...tok[0].matchAll(/[\p{L}\p{N}]{2,}/gu)].map(m => ({word: m[0], ...measure(n, tok.index + m.index, tok.index + m.index + m[0].length)}));
      if (words.some(w => w.width >= line - 1)) continue;
      for (const w of words) {
        if (w.lines > 1) out.split.push(desc(n.parentElement) + ': "' + w.word + '"');
      }
    }
  }

  for (const svg of document.querySelectorAll('svg')) {
    if (!shown(svg)) continue;
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].filter(shown);
    const rects = texts.map(tx => tx.getBoundingClientRect());
    texts.forEach((tx, i) => {
      const ctm = tx.getScreenCTM();
      const px = parseFloat(getComputedStyle(tx).fontSize) * (ctm ? Math.hypot(ctm.a, ctm.b) : 1);
      const r = rects[i];
      if (px < 10) out.labels.push(desc(svg) + ': "' + tx.textContent + '" is ' + px.toFixed(1) + ' px');
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
        out.labels.push(desc(svg) + ': "' + tx.textContent + '" is cut off');
      for (let j = 0; j < i; j++) {
        const q = rects[j];
        if (r.left < q.right && q.left < r.right && r.top < q.bottom && q.top < r.bottom)
          out.labels.push(desc(svg) + ': "' + tx.textContent + '" overlaps "' + texts[j].textContent + '"');
      }
    });
    const c = cls(svg).split(/\s+/);
    if ((c.includes('chart') || c.includes('spark')) && !texts.some(tx => cls(tx).split(/\s+/).includes('ymax')))
      out.noY.push(desc(svg));
  }

  for (const nav of document.querySelectorAll('nav.tabs')) {
    let name = nav.getAttribute('aria-label') || '', label = '';
    const by = nav.getAttribute('aria-labelledby');
    const el = by && document.getElementById(by);
    if (el) { name = el.textContent.trim(); if (shown(el)) label = name; }
    const cur = nav.querySelectorAll('[aria-current="page"]');
    out.tabs.push(name + '|' + label + '|' + (cur.length === 1 ? cur[0].textContent.trim() : cur.length + ' current'));
  }
  return out;
})`

// a11yCheck measures the open page (a11yProbeJS) and reports what fails:
// the page must fit width, the viewport's width (a phone's browser widens
// innerWidth to a page wider than its screen); first checks the icon too,
// and tabs the list's tabs.
func a11yCheck(t *testing.T, ctx context.Context, view string, width int64, first, tabs bool) a11yProbe {
	t.Helper()
	p, err := chromedp.Run(ctx, chromedp.Evaluate[a11yProbe](a11yProbeJS+"("+strconv.FormatInt(width, 10)+")"))
	if err != nil {
		t.Fatalf("%s: probe: %v", view, err)
	}
	if p.ScrollWidth > p.InnerWidth || int64(p.ScrollWidth) > width {
		t.Errorf("%s: scrolls sideways: scrollWidth %d, innerWidth %d, viewport %d px; past the edge:\n    %s",
			view, p.ScrollWidth, p.InnerWidth, width, strings.Join(p.Wide, "\n    "))
	}
	if len(p.Spill) > 0 {
		t.Errorf("%s: table cells overflow (their content overlaps the next):\n    %s", view, strings.Join(p.Spill, "\n    "))
	}
	if len(p.Split) > 0 {
		t.Errorf("%s: words broken across lines that fit on one:\n    %s", view, strings.Join(p.Split, "\n    "))
	}
	if len(p.Labels) > 0 {
		t.Errorf("%s: chart labels:\n    %s", view, strings.Join(p.Labels, "\n    "))
	}
	if len(p.NoY) > 0 {
		t.Errorf("%s: charts without a y-axis label:\n    %s", view, strings.Join(p.NoY, "\n    "))
	}
	if first && !strings.HasPrefix(p.Icon, "data:image/") {
		t.Errorf("%s: no inline icon: <link rel=icon> href %q", view, p.Icon)
	}
	if tabs {
		// A tablet's list (641 to 900 px) leaves the sparklines out, for room.
		if (width <= 640 || width > 900) && p.Sparks != p.Rows {
			t.Errorf("%s: %d sparklines shown for %d rows", view, p.Sparks, p.Rows)
		}
		lines := 1 // a message in the list: one line cut with an ellipsis, two on a phone
		if width < 640 {
			lines = 2
		}
		for i, n := range p.MsgLines {
			if n < 1 || n > lines {
				t.Errorf("%s: the message of row %d takes %d lines, want 1 to %d", view, i+1, n, lines)
			}
		}
		want := []string{"Status|Status|", "Sort|Sort|"}
		if len(p.Tabs) != len(want) {
			t.Errorf("%s: tabs %q, want a status and a sort nav", view, p.Tabs)
		}
		for i := range min(len(p.Tabs), len(want)) {
			if !strings.HasPrefix(p.Tabs[i], want[i]) || strings.HasSuffix(p.Tabs[i], " current") {
				t.Errorf("%s: tabs %q: want a visible label naming the nav (%q) and one aria-current tab", view, p.Tabs[i], want[i])
			}
		}
	}
	return p
}

// requestLog keeps every request the test servers answer.
type requestLog struct {
	mu   sync.Mutex
	reqs []loggedRequest
}

type loggedRequest struct {
	host, uri string // host: "http://127.0.0.1:port"
	status    int
}

func (l *requestLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

func (l *requestLog) since(mark int) []loggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs[mark:])
}

// wrap serves h and logs each request with its status.
func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		l.mu.Lock()
		l.reqs = append(l.reqs, loggedRequest{host: "http://" + r.Host, uri: r.URL.RequestURI(), status: sw.status})
		l.mu.Unlock()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// a11yServer is a dashboard the accessibility test opens.
type a11yServer struct {
	url    string // http://127.0.0.1:port
	detail string // the hash of the error with the most samples
}

// browserRollbackError is an error with a long name, a long message and
// long unbroken tokens, as real ones have.
type browserRollbackError struct{ org, deployment string }

func (e *browserRollbackError) Error() string {
	return "upstream deployment rollback timed out after 30s: POST https://deployments.internal.example.com/v2/organisations/" +
		e.org + "/deployments/" + e.deployment + "/rollbacks?wait=true&timeout=30s (idempotency key " +
		strings.Repeat("9f86d081884c7d65", 4) + ")"
}

// a11ySite starts a dashboard with errors that stretch a page (long names,
// routes, paths, messages and tokens; a resolved error, a regression, many
// samples with request context, two list pages), or with none.
func a11ySite(t *testing.T, log *requestLog, seed bool) a11yServer {
	t.Helper()
	tdb := openSQLite(t)
	cfg := errmon.DefaultConfig()
	cfg.DB, cfg.Output = tdb.DB, nil
	cfg.FlushInterval = time.Hour
	cfg.ListSize = 5
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := errmon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	app := gin.New()
	m.InitApp(app)
	const rollbackRoute = "/api/v1/organisations/:organisationID/projects/:projectID/environments/:environmentName/deployments/:deploymentID/rollbacks"
	app.POST(rollbackRoute, func(c *gin.Context) {
		panic(&browserRollbackError{org: c.Param("organisationID"), deployment: c.Param("deploymentID")})
	})
	app.GET("/items/:id", browserItemHandler)
	app.GET("/pay", func(c *gin.Context) {
		_ = c.Error(errors.New("payment gateway timeout"))
		c.AbortWithStatus(http.StatusBadGateway)
	})
	app.GET("/xss", func(c *gin.Context) { panic("<script>alert(1)</script>") })
	app.GET("/orders/validate", func(c *gin.Context) {
		_ = c.Error(fmt.Errorf("validate order: %s", strings.Repeat("the shipping address of the order does not match the billing address on file, and ", 6)+
			"the payload was {\"order\":{\"id\":\"ord_8f14e45fceea167a5a36dedd4bea2543\",\"lines\":[{\"sku\":\"SKU-0000042-BLUE-XL\",\"qty\":2}]}}"))
		c.AbortWithStatus(http.StatusInternalServerError)
	})
	app.GET("/session", func(c *gin.Context) {
		_ = c.Error(errors.New("invalid session token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQSflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"))
		c.AbortWithStatus(http.StatusInternalServerError)
	})
	srv := httptest.NewServer(log.wrap(app)) // 127.0.0.1: LocalOnly lets the browser in
	t.Cleanup(srv.Close)
	if !seed {
		return a11yServer{url: srv.URL}
	}
	do := func(method, path, body string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
		req.Header.Set("X-Request-Id", "req_01HV3K9Q7Z8Y6X5W4V3U2T1S0R-"+strconv.Itoa(len(path)))
		req.Header.Set("Authorization", "Bearer sk_live_51H8xYzAbCdEfGhIjKlMnOpQrStUvWxYz")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, p := range []string{"/items/5", "/items/7", "/pay", "/xss", "/orders/validate", "/session"} {
		do("GET", p, "")
	}
	time.Sleep(10 * time.Millisecond) // the last seen: first in the list
	for i := range 4 {
		do("POST", fmt.Sprintf("/api/v1/organisations/acme-corporation-international-%d/projects/checkout-service-frontend/environments/production-eu-west-1/deployments/dep_2024_11_28_%04d/rollbacks?reason=health-check-failed&requested_by=platform-oncall-rotation@example.com", i, 1000+i),
			`{"reason":"the health check of the canary failed three times in a row","target_revision":"rev_7c4a8d09ca3762af61e59520943dc26494f8941b","notify":["platform-oncall@example.com","release-managers@example.com"],"options":{"force":true,"drain_seconds":120}}`)
	}
	dashFlush(t, m)
	now := time.Now().UTC()
	if err := tdb.DB.Model(&errmon.ErrorRecord{}).Where("message = ?", "payment gateway timeout").
		Updates(map[string]any{"resolved": true, "resolved_at": now}).Error; err != nil {
		t.Fatal(err)
	}
	if err := tdb.DB.Model(&errmon.ErrorRecord{}).Where("message LIKE ?", "validate order:%").
		Update("regressions", 2).Error; err != nil {
		t.Fatal(err)
	}
	var rec errmon.ErrorRecord
	if err := tdb.DB.Where("exception_name LIKE ?", "%browserRollbackError").Order("count desc").Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	return a11yServer{url: srv.URL, detail: rec.Hash}
}
