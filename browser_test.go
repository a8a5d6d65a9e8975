package errmon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
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

	// The application: a gin app with errmon and three failing routes.
	tdb := openSQLite(t)
	cfg := DefaultConfig()
	cfg.DB, cfg.Output = tdb.DB, nil
	cfg.FlushInterval = time.Hour
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := New(cfg)
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

	// The browser, quiet on the closed network, with a fresh profile.
	base, cancelBase := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelBase()
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
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	defer cancelCtx()

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
	shotDir := os.Getenv("ERRMON_SCREENSHOT_DIR")
	if shotDir == "" {
		shotDir = filepath.Join("testdata", "output") // ignored by git
	}
	if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
			t.Fatalf("screenshot %s is not a PNG (%d bytes)", name, len(png))
		}
		path := filepath.Join(shotDir, "dashboard-"+name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}

	// 1. The list shows the three errors, as text.
	run("open the list",
		chromedp.Navigate(srv.URL+"/dev/error"), // redirected to /dev/error/
		chromedp.WaitVisible(chromedp.CSS("table.errors")),
	)
	body := text("body")
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
	var pay ErrorRecord
	if err := tdb.DB.Where("message = ?", "payment gateway timeout").Take(&pay).Error; err != nil {
		t.Fatal(err)
	}
	run("bulk delete",
		chromedp.Click(chromedp.CSS(`input[type=checkbox][value="`+pay.Hash+`"]`)),
		chromedp.Click(chromedp.CSS(`.bulkbar button[value="delete"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if n := text(".notice"); !strings.Contains(n, "Deleted") {
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
func dashHashOfFirst(t *testing.T, m *Monitor) string {
	t.Helper()
	var rec ErrorRecord
	if err := m.cfg.DB.Where("exception_name = ?", "runtime.boundsError").Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	return rec.Hash
}
