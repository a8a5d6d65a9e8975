package errmon

import (
	"embed"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/render"
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
