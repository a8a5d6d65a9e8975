package errmon

import (
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/render"
	"gorm.io/gorm"
)

// The dashboard: an HTML list and detail pages, form actions and a JSON API,
// all under Config.URLPrefix. Every link it emits is relative, so the group
// works under any prefix and behind any router group or proxy path.
//
//	GET  {prefix}/                      list (q, status=open|resolved, sort=count|first_seen, page)
//	GET  {prefix}/{hash}                detail
//	POST {prefix}/{hash}/resolve        resolve (JSON with Accept: application/json, else 303)
//	POST {prefix}/{hash}/unresolve      reopen
//	POST {prefix}/{hash}/delete         delete with its samples and hourly counts
//	POST {prefix}/bulk                  action=resolve|unresolve|delete, hash=... (repeated)
//	GET  {prefix}/api/errors            {"errors":[...],"total":N,"page":P}
//	GET  {prefix}/api/errors/{hash}     one error with traceback, request_data and samples
//	GET  {prefix}/assets/dashboard.css  the style sheet

//go:embed templates
var dashboardFS embed.FS

// contentSecurityPolicy allows the dashboard's own style sheet and inline
// SVG charts, and nothing else: no script at all.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxBulk caps the hashes one bulk action may name.
const maxBulk = 1000

var (
	dashboardCSS = mustRead("templates/dashboard.css")
	dashPages    = map[string]*template.Template{
		"list":     parsePage("list"),
		"detail":   parsePage("detail"),
		"notfound": parsePage("notfound"),
	}
	crossOrigin = http.NewCrossOriginProtection()
)

func mustRead(name string) []byte {
	b, err := dashboardFS.ReadFile(name)
	if err != nil {
		panic("errmon: embedded " + name + ": " + err.Error())
	}
	return b
}

var templateFuncs = template.FuncMap{
	"ago":    agoText,
	"utc":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num":    formatCount,
	"plural": pluralize,
}

// parsePage parses the layout with one page's templates.
func parsePage(name string) *template.Template {
	return template.Must(template.New(name).Funcs(templateFuncs).
		ParseFS(dashboardFS, "templates/layout.html", "templates/"+name+".html"))
}

// RegisterRoutes mounts the dashboard and its JSON API on r under
// Config.URLPrefix. Extra middleware (gin.BasicAuth, say) runs before
// Config.ViewPermission for every route of the group. Every response of the
// group carries security headers (a strict Content-Security-Policy,
// nosniff, noindex, no-store); cross-site POSTs are refused with 403.
func (m *Monitor) RegisterRoutes(r gin.IRouter, middleware ...gin.HandlerFunc) {
	g := r.Group(m.cfg.URLPrefix)
	g.Use(securityHeaders)
	if len(middleware) > 0 {
		g.Use(middleware...)
	}
	g.Use(m.permission, sameOrigin)
	d := &dashboard{m: m}
	if m.cfg.URLPrefix != "/" {
		g.GET("", redirectToSlash)
	}
	g.GET("/", d.list)
	g.GET("/assets/dashboard.css", serveCSS)
	g.GET("/api/errors", d.apiList)
	g.GET("/api/errors/:hash", d.apiDetail)
	g.GET("/:hash", d.detail)
	g.POST("/bulk", d.bulk)
	g.POST("/:hash/:action", d.action)
	g.GET("/:hash/:action", methodNotAllowed) // actions change state: POST only
}

// methodNotAllowed answers 405 to a GET of an action URL.
func methodNotAllowed(c *gin.Context) {
	c.Header("Allow", http.MethodPost)
	c.Data(http.StatusMethodNotAllowed, "text/plain; charset=utf-8", []byte("use POST (the buttons on the error's page)\n"))
}

// permission answers 401 unless Config.ViewPermission allows the request.
func (m *Monitor) permission(c *gin.Context) {
	if !m.cfg.ViewPermission(c) {
		c.Data(http.StatusUnauthorized, "text/plain; charset=utf-8",
			[]byte("errmon: not allowed to see the error dashboard (see Config.ViewPermission)\n"))
		c.Abort()
		return
	}
	c.Next()
}

// LocalOnly is the default Config.ViewPermission: it allows only requests
// that come straight from a loopback address, without proxy forwarding
// headers (X-Forwarded-For, X-Real-IP, Forwarded), so that a dashboard
// behind a reverse proxy is closed until you choose who may open it.
func LocalOnly(c *gin.Context) bool {
	h := c.Request.Header
	if h.Get("X-Forwarded-For") != "" || h.Get("X-Real-IP") != "" || h.Get("Forwarded") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// securityHeaders sets the headers every response of the group carries.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// sameOrigin refuses cross-site state-changing requests with 403, with Go's
// http.CrossOriginProtection (Sec-Fetch-Site, then Origin against Host).
func sameOrigin(c *gin.Context) {
	if err := crossOrigin.Check(c.Request); err != nil {
		c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "cross-origin request refused"})
		return
	}
	c.Next()
}

// redirectToSlash sends {prefix} to {prefix}/ with a relative Location, so
// that the page's relative links resolve under the prefix.
func redirectToSlash(c *gin.Context) {
	loc := path.Base(c.Request.URL.Path) + "/"
	if c.Request.URL.RawQuery != "" {
		loc += "?" + c.Request.URL.RawQuery
	}
	seeOther(c, http.StatusMovedPermanently, loc)
}

// seeOther redirects to a relative location. http.Redirect would make it
// absolute (from the root), which breaks behind a proxy that mounts the
// service under a path.
func seeOther(c *gin.Context, code int, loc string) {
	c.Header("Location", loc)
	c.Status(code)
	c.Writer.WriteHeaderNow()
}

func serveCSS(c *gin.Context) {
	c.Data(http.StatusOK, "text/css; charset=utf-8", dashboardCSS)
}

type dashboard struct {
	m *Monitor
}

// validHash reports whether s looks like a fingerprint: 64 lower-case hex
// digits.
func validHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// wantsJSON reports whether the client asked for JSON.
func wantsJSON(c *gin.Context) bool {
	return strings.Contains(c.GetHeader("Accept"), "application/json")
}

// parseListQuery reads q, status, sort and page; unknown values fall back
// to the defaults and page numbers that do not parse are page 1.
func (d *dashboard) parseListQuery(get func(string) string) listQuery {
	q := listQuery{
		Q:    cutString(strings.TrimSpace(get("q")), maxSearchLen),
		Page: 1,
		Size: d.m.cfg.ListSize,
	}
	switch s := get("status"); s {
	case statusOpen, statusResolved:
		q.Status = s
	}
	switch s := get("sort"); s {
	case sortCount, sortFirstSeen:
		q.Sort = s
	}
	if n, err := strconv.Atoi(get("page")); err == nil {
		q.Page = n // clamped by listErrors
	}
	return q
}

// values encodes q as URL parameters, leaving defaults out.
func (q listQuery) values(page int) url.Values {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Status != statusAll {
		v.Set("status", q.Status)
	}
	if q.Sort != "" && q.Sort != sortLastSeen {
		v.Set("sort", q.Sort)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

// listHref is a relative link to the list with v as its query.
func listHref(v url.Values) string {
	if len(v) == 0 {
		return "./"
	}
	return "./?" + v.Encode()
}

// serverError answers 500 after logging err.
func (d *dashboard) serverError(c *gin.Context, err error) {
	d.m.log.Error("errmon: dashboard", "path", c.Request.URL.Path, "err", err)
	if wantsJSON(c) || strings.Contains(c.Request.URL.Path, "/api/") {
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "database error; see the service log"})
		return
	}
	c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("errmon: database error; see the service log\n"))
	c.Abort()
}

// notFound answers 404 in the format asked for.
func (d *dashboard) notFound(c *gin.Context, api bool) {
	if api || wantsJSON(c) {
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": "no error with this hash"})
		return
	}
	c.Render(http.StatusNotFound, render.HTML{Template: dashPages["notfound"], Name: "layout", Data: d.frame("Not found")})
	c.Abort()
}

// pageCommon is what every page shows around its content.
type pageCommon struct {
	Title string
	Stats Stats
	Now   time.Time
}

// frame fills what every page shows around its content.
func (d *dashboard) frame(title string) pageCommon {
	return pageCommon{Title: title, Stats: d.m.Stats(), Now: time.Now().UTC()}
}

// --- list ---

type tabLink struct {
	Label  string
	Href   string
	Active bool
}

type pageLink struct {
	Num     int
	Href    string
	Current bool
	Gap     bool // an ellipsis between page numbers
}

// listRow is one row of the list. Its fields are its own, not an embedded
// ErrorRecord: text/template finds promoted fields slowly, with allocations.
type listRow struct {
	Hash, ExceptionName, Message string
	Method, Route, Path          string
	Count, Regressions           int64
	Resolved                     bool
	LastSeen, CreatedOn          time.Time
	Spark                        template.HTML
}

type listView struct {
	pageCommon
	Query        listQuery
	Rows         []listRow
	Total        int64
	Page, Pages  int
	From, To     int64
	PageLinks    []pageLink
	Prev, Next   string
	Sorts        []tabLink
	Statuses     []tabLink
	Filtered     bool
	Notice       string
	URLPrefix    string
	FlushSeconds string
}

// notices are the fixed messages an action's redirect may ask the list or
// detail page to show.
var notices = map[string]string{
	"resolved":   "Marked as resolved. It reopens if it happens again.",
	"unresolved": "Reopened.",
	"deleted":    "Deleted, with the samples and hourly counts.",
	"none":       "Nothing selected.",
}

func (d *dashboard) list(c *gin.Context) {
	q := d.parseListQuery(c.Query)
	ctx := c.Request.Context()
	res, err := d.m.store.listErrors(ctx, q)
	if err != nil {
		d.serverError(c, err)
		return
	}
	v := listView{
		pageCommon: d.frame("Errors"), Query: q, Total: res.Total, Page: res.Page, Pages: res.Pages,
		Filtered: q.Q != "" || q.Status != statusAll, Notice: notices[c.Query("notice")],
		URLPrefix: d.m.cfg.URLPrefix, FlushSeconds: d.m.cfg.FlushInterval.String(),
	}
	if res.Total > 0 {
		v.From = int64(res.Page-1)*int64(q.Size) + 1
		v.To = v.From + int64(len(res.Errors)) - 1
	}
	hashes := make([]string, len(res.Errors))
	for i, e := range res.Errors {
		hashes[i] = e.Hash
	}
	hourly, err := d.m.store.hourlyCounts(ctx, hashes, v.Now, sparkHours)
	if err != nil {
		d.serverError(c, err)
		return
	}
	for _, e := range res.Errors {
		v.Rows = append(v.Rows, listRow{
			Hash: e.Hash, ExceptionName: e.ExceptionName, Message: e.Message,
			Method: e.Method, Route: e.Route, Path: e.Path,
			Count: e.Count, Regressions: e.Regressions, Resolved: e.Resolved,
			LastSeen: e.LastSeen, CreatedOn: e.CreatedOn,
			Spark: sparkline(hourly[e.Hash], v.Now),
		})
	}
	for _, s := range []struct{ key, label string }{{sortLastSeen, "Last seen"}, {sortCount, "Count"}, {sortFirstSeen, "First seen"}} {
		o := q
		o.Sort = s.key
		v.Sorts = append(v.Sorts, tabLink{Label: s.label, Href: listHref(o.values(1)), Active: q.Sort == s.key || (q.Sort == "" && s.key == sortLastSeen)})
	}
	for _, s := range []struct{ key, label string }{{statusAll, "All"}, {statusOpen, "Open"}, {statusResolved, "Resolved"}} {
		o := q
		o.Status = s.key
		v.Statuses = append(v.Statuses, tabLink{Label: s.label, Href: listHref(o.values(1)), Active: q.Status == s.key})
	}
	if res.Page > 1 {
		v.Prev = listHref(q.values(res.Page - 1))
	}
	if res.Page < res.Pages {
		v.Next = listHref(q.values(res.Page + 1))
	}
	v.PageLinks = pageLinks(res.Page, res.Pages, func(p int) string { return listHref(q.values(p)) })
	c.Render(http.StatusOK, render.HTML{Template: dashPages["list"], Name: "layout", Data: v})
}

// pageLinks lists the first and last pages and those around the current
// one, with gaps between.
func pageLinks(cur, total int, hrefOf func(int) string) []pageLink {
	if total <= 1 {
		return nil
	}
	nums := []int{1}
	for p := max(cur-2, 2); p <= min(cur+2, total-1); p++ {
		nums = append(nums, p)
	}
	nums = append(nums, total)
	var out []pageLink
	for i, p := range nums {
		if i > 0 && p > nums[i-1]+1 {
			out = append(out, pageLink{Gap: true})
		}
		out = append(out, pageLink{Num: p, Href: hrefOf(p), Current: p == cur})
	}
	return out
}

// --- detail ---

type tbFrame struct {
	Function string
	File     string
	Line     string
	InApp    bool
}

type frameGroup struct {
	InApp  bool
	Frames []tbFrame
}

// parseTraceback reads the stored traceback ("function\n\tfile:line\n" per
// frame, newest first) into runs of application and library frames.
func parseTraceback(tb string) (groups []frameGroup, inAppCount int64) {
	lines := strings.Split(strings.TrimRight(tb, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == "" {
			continue
		}
		f := tbFrame{Function: lines[i]}
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "\t") {
			loc := strings.TrimPrefix(lines[i+1], "\t")
			if j := strings.LastIndexByte(loc, ':'); j > 0 {
				f.File, f.Line = loc[:j], loc[j+1:]
			} else {
				f.File = loc
			}
			i++
		}
		f.InApp = inApp(f.Function, f.File)
		if f.InApp {
			inAppCount++
		}
		if n := len(groups); n > 0 && groups[n-1].InApp == f.InApp {
			groups[n-1].Frames = append(groups[n-1].Frames, f)
		} else {
			groups = append(groups, frameGroup{InApp: f.InApp, Frames: []tbFrame{f}})
		}
	}
	return groups, inAppCount
}

// ctxEntry is one top-level key of the request context.
type ctxEntry struct {
	Key   string
	Text  string      // a scalar value
	Table [][2]string // an object of scalars or lists of them
	JSON  string      // anything else, indented
}

// contextOrder puts the request's identity first.
var contextOrder = []string{"method", "url", "route", "host", "client_ip", "proto", "params", "query", "headers", "cookies", "form", "files", "body"}

// requestContext renders the stored context JSON for the detail page, and
// returns it indented.
func requestContext(data string) ([]ctxEntry, string) {
	if data == "" {
		return nil, ""
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(data), &obj); err != nil {
		return []ctxEntry{{Key: "raw", Text: data}}, data
	}
	pretty, _ := json.MarshalIndent(obj, "", "  ")
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		for i, o := range contextOrder {
			if o == k {
				return i
			}
		}
		return len(contextOrder)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank(keys[i]), rank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	out := make([]ctxEntry, 0, len(keys))
	for _, k := range keys {
		e := ctxEntry{Key: k}
		switch v := obj[k].(type) {
		case map[string]any:
			if !flatObject(v) { // a JSON body, say: keep its shape
				b, _ := json.MarshalIndent(v, "", "  ")
				e.JSON = string(b)
				break
			}
			sub := make([]string, 0, len(v))
			for sk := range v {
				sub = append(sub, sk)
			}
			sort.Strings(sub)
			for _, sk := range sub {
				e.Table = append(e.Table, [2]string{sk, scalarText(v[sk])})
			}
		case []any:
			b, _ := json.MarshalIndent(v, "", "  ")
			e.JSON = string(b)
		default:
			e.Text = scalarText(v)
		}
		out = append(out, e)
	}
	return out, string(pretty)
}

// flatObject reports whether every value of m is a scalar or a list of strings,
// so that m reads well as a two-column table (headers, query, form).
func flatObject(m map[string]any) bool {
	for _, v := range m {
		switch x := v.(type) {
		case map[string]any:
			return false
		case []any:
			for _, p := range x {
				if _, ok := p.(string); !ok {
					return false
				}
			}
		}
	}
	return true
}

// scalarText shows a JSON value on one line: strings as they are, lists of
// strings joined by commas, anything else as compact JSON.
func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case []any:
		parts := make([]string, 0, len(x))
		for _, p := range x {
			s, ok := p.(string)
			if !ok {
				b, _ := json.Marshal(x)
				return string(b)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ", ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type occurrenceView struct {
	ErrorOccurrence
	Context []ctxEntry
}

type detailView struct {
	pageCommon
	E           *ErrorRecord
	Groups      []frameGroup
	InAppFrames int64
	Context     []ctxEntry
	ContextJSON string
	Hourly      template.HTML
	Daily       template.HTML
	Last24      int64
	Occurrences []occurrenceView
	History     int // samples kept per error
	Notice      string
}

func (d *dashboard) detail(c *gin.Context) {
	hash := c.Param("hash")
	if !validHash(hash) {
		d.notFound(c, false)
		return
	}
	ctx := c.Request.Context()
	rec, err := d.m.store.getError(ctx, hash)
	if errors.Is(err, gorm.ErrRecordNotFound) {
		d.notFound(c, false)
		return
	} else if err != nil {
		d.serverError(c, err)
		return
	}
	v := detailView{pageCommon: d.frame(rec.ExceptionName), E: rec, Notice: notices[c.Query("notice")], History: OccurrenceHistory}
	v.Groups, v.InAppFrames = parseTraceback(rec.Traceback)
	v.Context, v.ContextJSON = requestContext(rec.RequestData)
	hours := chartDays * 24
	hourly, err := d.m.store.hourlyCounts(ctx, []string{hash}, v.Now, hours)
	if err != nil {
		d.serverError(c, err)
		return
	}
	counts := hourly[hash]
	if counts == nil {
		counts = make([]int64, hours)
	}
	last := counts[hours-sparkHours:]
	v.Last24 = sumCounts(last)
	v.Hourly = hourlyChart(last, v.Now)
	v.Daily = dailyChart(counts, v.Now, chartDays)
	occ, err := d.m.store.lastOccurrences(ctx, hash, OccurrenceHistory)
	if err != nil {
		d.serverError(c, err)
		return
	}
	for _, o := range occ {
		entries, _ := requestContext(o.RequestData)
		v.Occurrences = append(v.Occurrences, occurrenceView{ErrorOccurrence: o, Context: entries})
	}
	c.Render(http.StatusOK, render.HTML{Template: dashPages["detail"], Name: "layout", Data: v})
}

// --- actions ---

func (d *dashboard) action(c *gin.Context) {
	hash, act := c.Param("hash"), c.Param("action")
	if !validHash(hash) || (act != "resolve" && act != "unresolve" && act != "delete") {
		d.notFound(c, false)
		return
	}
	ctx := c.Request.Context()
	if _, err := d.m.store.getError(ctx, hash); errors.Is(err, gorm.ErrRecordNotFound) {
		d.notFound(c, false)
		return
	} else if err != nil {
		d.serverError(c, err)
		return
	}
	var err error
	switch act {
	case "resolve":
		_, err = d.m.store.setResolved(ctx, []string{hash}, true, time.Now())
	case "unresolve":
		_, err = d.m.store.setResolved(ctx, []string{hash}, false, time.Now())
	case "delete":
		_, err = d.m.store.deleteErrors(ctx, []string{hash})
	}
	if err != nil {
		d.serverError(c, err)
		return
	}
	if wantsJSON(c) {
		if act == "delete" {
			c.JSON(http.StatusOK, gin.H{"hash": hash, "deleted": true})
			return
		}
		rec, err := d.m.store.getError(ctx, hash)
		if err != nil {
			d.serverError(c, err)
			return
		}
		c.JSON(http.StatusOK, toAPI(rec))
		return
	}
	switch act {
	case "delete":
		seeOther(c, http.StatusSeeOther, "../?notice=deleted")
	case "resolve":
		seeOther(c, http.StatusSeeOther, "../"+hash+"?notice=resolved")
	default:
		seeOther(c, http.StatusSeeOther, "../"+hash+"?notice=unresolved")
	}
}

func (d *dashboard) bulk(c *gin.Context) {
	act := c.PostForm("action")
	if act != "resolve" && act != "unresolve" && act != "delete" {
		if wantsJSON(c) {
			c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": "action must be resolve, unresolve or delete"})
			return
		}
		c.Data(http.StatusBadRequest, "text/plain; charset=utf-8", []byte("action must be resolve, unresolve or delete\n"))
		return
	}
	var hashes []string
	for _, h := range c.PostFormArray("hash") {
		if validHash(h) && len(hashes) < maxBulk {
			hashes = append(hashes, h)
		}
	}
	ctx := c.Request.Context()
	var n int64
	var err error
	switch act {
	case "resolve":
		n, err = d.m.store.setResolved(ctx, hashes, true, time.Now())
	case "unresolve":
		n, err = d.m.store.setResolved(ctx, hashes, false, time.Now())
	case "delete":
		n, err = d.m.store.deleteErrors(ctx, hashes)
	}
	if err != nil {
		d.serverError(c, err)
		return
	}
	if wantsJSON(c) {
		c.JSON(http.StatusOK, gin.H{"action": act, "selected": len(hashes), "changed": n})
		return
	}
	back := d.parseListQuery(c.PostForm).values(0)
	if p, err := strconv.Atoi(c.PostForm("page")); err == nil && p > 1 {
		back.Set("page", strconv.Itoa(p))
	}
	switch {
	case len(hashes) == 0:
		back.Set("notice", "none")
	case act == "delete":
		back.Set("notice", "deleted")
	default:
		back.Set("notice", act+"d")
	}
	seeOther(c, http.StatusSeeOther, listHref(back))
}

// --- JSON API ---

// APIError is an error as the JSON API shows it.
type APIError struct {
	Hash          string     `json:"hash"`
	ExceptionName string     `json:"exception_name"`
	Message       string     `json:"message"`
	Host          string     `json:"host"`
	Path          string     `json:"path"`
	Route         string     `json:"route"`
	Method        string     `json:"method"`
	Count         int64      `json:"count"`
	CreatedOn     time.Time  `json:"created_on"`
	LastSeen      time.Time  `json:"last_seen"`
	Resolved      bool       `json:"resolved"`
	ResolvedAt    *time.Time `json:"resolved_at"`
	Regressions   int64      `json:"regressions"`
}

// APIErrorDetail is one error with everything stored about it, as
// GET {prefix}/api/errors/{hash} shows it.
type APIErrorDetail struct {
	APIError
	Traceback   string          `json:"traceback"`
	RequestData json.RawMessage `json:"request_data"` // an object
	// Hourly holds the occurrences per hour over the last 24 hours, oldest
	// first.
	Hourly      []int64         `json:"hourly"`
	Occurrences []APIOccurrence `json:"occurrences"` // newest first
}

// APIOccurrence is one stored sample of an error.
type APIOccurrence struct {
	SeenAt      time.Time       `json:"seen_at"`
	Host        string          `json:"host"`
	Path        string          `json:"path"`
	Method      string          `json:"method"`
	Message     string          `json:"message"`
	RequestData json.RawMessage `json:"request_data"`
}

// APIErrorList is a page of errors, as GET {prefix}/api/errors shows it.
type APIErrorList struct {
	Errors   []APIError `json:"errors"`
	Total    int64      `json:"total"`
	Page     int        `json:"page"`
	Pages    int        `json:"pages"`
	PageSize int        `json:"page_size"`
}

func toAPI(e *ErrorRecord) APIError {
	return APIError{
		Hash: e.Hash, ExceptionName: e.ExceptionName, Message: e.Message, Host: e.Host,
		Path: e.Path, Route: e.Route, Method: e.Method, Count: e.Count,
		CreatedOn: e.CreatedOn.UTC(), LastSeen: e.LastSeen.UTC(), Resolved: e.Resolved,
		ResolvedAt: e.ResolvedAt, Regressions: e.Regressions,
	}
}

// jsonObject returns stored context JSON as an object: {} when empty, and
// {"raw": text} when it is not a JSON object.
func jsonObject(s string) json.RawMessage {
	s = strings.TrimSpace(s)
	if s == "" {
		return json.RawMessage("{}")
	}
	if strings.HasPrefix(s, "{") && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(map[string]string{"raw": s})
	return b
}

func (d *dashboard) apiList(c *gin.Context) {
	q := d.parseListQuery(c.Query)
	res, err := d.m.store.listErrors(c.Request.Context(), q)
	if err != nil {
		d.serverError(c, err)
		return
	}
	out := APIErrorList{Errors: make([]APIError, 0, len(res.Errors)), Total: res.Total, Page: res.Page, Pages: res.Pages, PageSize: q.Size}
	for i := range res.Errors {
		out.Errors = append(out.Errors, toAPI(&res.Errors[i]))
	}
	c.JSON(http.StatusOK, out)
}

func (d *dashboard) apiDetail(c *gin.Context) {
	hash := c.Param("hash")
	if !validHash(hash) {
		d.notFound(c, true)
		return
	}
	ctx := c.Request.Context()
	rec, err := d.m.store.getError(ctx, hash)
	if errors.Is(err, gorm.ErrRecordNotFound) {
		d.notFound(c, true)
		return
	} else if err != nil {
		d.serverError(c, err)
		return
	}
	out := APIErrorDetail{APIError: toAPI(rec), Traceback: rec.Traceback, RequestData: jsonObject(rec.RequestData)}
	hourly, err := d.m.store.hourlyCounts(ctx, []string{hash}, time.Now(), sparkHours)
	if err != nil {
		d.serverError(c, err)
		return
	}
	out.Hourly = hourly[hash]
	if out.Hourly == nil {
		out.Hourly = make([]int64, sparkHours)
	}
	occ, err := d.m.store.lastOccurrences(ctx, hash, OccurrenceHistory)
	if err != nil {
		d.serverError(c, err)
		return
	}
	out.Occurrences = make([]APIOccurrence, 0, len(occ))
	for _, o := range occ {
		out.Occurrences = append(out.Occurrences, APIOccurrence{
			SeenAt: o.SeenAt.UTC(), Host: o.Host, Path: o.Path, Method: o.Method,
			Message: o.Message, RequestData: jsonObject(o.RequestData),
		})
	}
	c.JSON(http.StatusOK, out)
}

// --- formatting ---

// agoText says how long before now t was, briefly.
func agoText(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h ago"
	case d < 60*24*time.Hour:
		return strconv.Itoa(int(d.Hours()/24)) + "d ago"
	}
	return t.UTC().Format("2006-01-02")
}

// formatCount groups digits by thousands: 1234567 -> "1,234,567".
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
