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
//	GET  {prefix}/                      list (q, status=open|resolved, sort=count|first_seen, page, after/before cursors)
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
	"ago":       agoText,
	"utc":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num":       formatCount,
	"plural":    pluralize,
	"breakable": breakable,
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
// nosniff, noindex, no-store) and its own Content-Type, whatever the host's
// middleware set before; cross-site POSTs are refused with 403.
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
	respondText(c, http.StatusMethodNotAllowed, "use POST (the buttons on the error's page)\n")
}

// Content types of the dashboard's responses. Each response sets its own
// with Header().Set: gin's renderers keep a Content-Type that the host's
// middleware set before, which would turn a page into "JSON" (and, with
// nosniff, into nothing a browser shows).
const (
	contentHTML = "text/html; charset=utf-8"
	contentText = "text/plain; charset=utf-8"
	contentJSON = "application/json; charset=utf-8"
	contentCSS  = "text/css; charset=utf-8"
)

// respondHTML renders one of the dashboard's pages.
func respondHTML(c *gin.Context, code int, page string, data any) {
	c.Header("Content-Type", contentHTML)
	c.Render(code, render.HTML{Template: dashPages[page], Name: "layout", Data: data})
}

// respondJSON writes v as JSON, without escaping &, < and > (a JSON
// answer is never read as HTML: its type is set and nosniff is on), so
// that stored text costs its own size.
func respondJSON(c *gin.Context, code int, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		respondText(c, http.StatusInternalServerError, "errmon: "+err.Error()+"\n")
		return
	}
	respondData(c, code, contentJSON, b)
}

// respondText writes a plain-text answer.
func respondText(c *gin.Context, code int, text string) {
	c.Header("Content-Type", contentText)
	c.Data(code, contentText, []byte(text))
}

// respondData writes body with the given content type.
func respondData(c *gin.Context, code int, contentType string, body []byte) {
	c.Header("Content-Type", contentType)
	c.Data(code, contentType, body)
}

// abortWith answers code with msg and stops the group's handlers: as JSON
// {"error": msg} for the API and for clients that ask for JSON, as text
// otherwise.
func abortWith(c *gin.Context, code int, msg string) {
	if wantsJSON(c) || isAPI(c) {
		respondJSON(c, code, gin.H{"error": msg})
	} else {
		respondText(c, code, "errmon: "+msg+"\n")
	}
	c.Abort()
}

// isAPI reports whether the request is for the JSON API.
func isAPI(c *gin.Context) bool {
	return strings.Contains(c.Request.URL.Path, "/api/")
}

// permission answers 401 unless the view permission allows the request.
// The refusal says how to open the dashboard.
func (m *Monitor) permission(c *gin.Context) {
	if allow := m.cfg.ViewPermission; allow != nil {
		if allow(c) {
			c.Next()
			return
		}
		abortWith(c, http.StatusUnauthorized, "not allowed to see the error dashboard: "+
			"Config.ViewPermission refused this request")
		return
	}
	if gin.Mode() == gin.ReleaseMode {
		abortWith(c, http.StatusUnauthorized, "the error dashboard is closed: gin runs in release mode "+
			"and Config.ViewPermission is not set. Set Config.ViewPermission to decide who may open it "+
			"(errmon.LocalOnly opens it to requests made on this machine)")
		return
	}
	if why := notLocal(c.Request); why != "" {
		abortWith(c, http.StatusUnauthorized, "the error dashboard answers only requests made on this "+
			"machine (a loopback peer and Host, no proxy headers), and "+why+
			". Set Config.ViewPermission to decide who may open it")
		return
	}
	c.Next()
}

// LocalOnly allows only requests made on this machine: a loopback peer
// (127.0.0.0/8 or ::1), a loopback Host header (localhost or a name under
// .localhost, 127.0.0.0/8, [::1], any port; an empty Host is refused), and
// no proxy forwarding header (X-Forwarded-For, X-Real-IP, Forwarded). The
// Host check refuses DNS rebinding: a page of another site whose name now
// points at 127.0.0.1 still sends its own name as Host.
//
// It is the default Config.ViewPermission in gin's debug and test mode; in
// release mode the default refuses everyone, and setting LocalOnly opens
// the dashboard to local requests again. LocalOnly cannot tell a request
// from a reverse proxy on the same machine that adds no forwarding header
// and sends a loopback Host (nginx's proxy_pass to 127.0.0.1 does both by
// default) from a local one: behind such a proxy, use your own permission.
func LocalOnly(c *gin.Context) bool {
	return notLocal(c.Request) == ""
}

// notLocal says why r is not a request made on this machine, or returns ""
// when it is.
func notLocal(r *http.Request) string {
	h := r.Header
	if h.Get("X-Forwarded-For") != "" || h.Get("X-Real-IP") != "" || h.Get("Forwarded") != "" {
		return "this one came through a proxy (it has a forwarding header)"
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return "this one came from another machine"
	}
	if !loopbackHost(r.Host) {
		return "this one names another host (its Host header is not localhost, 127.0.0.1 or [::1])"
	}
	return ""
}

// loopbackHost reports whether a Host header names this machine: localhost
// or a name under .localhost (RFC 6761: never delegated, resolved to
// loopback), an IPv4 address in 127.0.0.0/8 or [::1] (or an IPv4-mapped
// loopback), each with or without a port. Names are compared without case
// and without a final dot.
func loopbackHost(hostport string) bool {
	host, bracketed := hostport, false
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		if strings.Trim(port, "0123456789") != "" {
			return false
		}
		host, bracketed = h, strings.HasPrefix(hostport, "[")
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host, bracketed = hostport[1:len(hostport)-1], true
	} else if strings.Contains(hostport, ":") {
		return false // an IPv6 address without brackets, or a malformed port
	}
	if host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		// Brackets hold IPv6 literals only; a bare IPv6 literal is no Host.
		return ip.IsLoopback() && bracketed == strings.Contains(host, ":")
	}
	if bracketed {
		return false
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	return name == "localhost" || strings.HasSuffix(name, ".localhost") && !strings.HasPrefix(name, ".")
}

// securityHeaders sets the headers every response of the group carries,
// replacing what the host's middleware set before the group: the security
// headers, a plain-text Content-Type (each handler then sets its own) and
// no Content-Disposition.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", contentText)
	h.Del("Content-Disposition")
	c.Next()
}

// sameOrigin refuses cross-site state-changing requests with 403, with Go's
// http.CrossOriginProtection (Sec-Fetch-Site, then Origin against Host).
func sameOrigin(c *gin.Context) {
	if err := crossOrigin.Check(c.Request); err != nil {
		abortWith(c, http.StatusForbidden, "cross-origin request refused")
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
	c.Header("Content-Type", contentText)
	c.Status(code)
	c.Writer.WriteHeaderNow()
}

func serveCSS(c *gin.Context) {
	respondData(c, http.StatusOK, contentCSS, dashboardCSS)
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
	abortWith(c, http.StatusInternalServerError, "database error; see the service log")
}

// notFound answers 404 in the format asked for.
func (d *dashboard) notFound(c *gin.Context, api bool) {
	if api || wantsJSON(c) {
		respondJSON(c, http.StatusNotFound, gin.H{"error": "no error with this hash"})
	} else {
		respondHTML(c, http.StatusNotFound, "notfound", d.frame("Not found"))
	}
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
