package errmon

import (
	"embed"
	"io/fs"
	"net"
	"net/http"
	"strings"

	"github.com/errmon/errmon/internal/dashboard"
	"github.com/gin-gonic/gin"
)

// The dashboard itself (pages, actions, the JSON API) is package
// internal/dashboard; this file mounts it behind the permission, the
// security headers and the cross-origin check, and embeds its templates.

//go:embed templates
var dashboardFS embed.FS

// crossOrigin refuses cross-site state-changing requests.
var crossOrigin = http.NewCrossOriginProtection()

// contentSecurityPolicy allows the dashboard's own style sheet and inline
// SVG charts, and nothing else: no script at all.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

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
	templates, err := fs.Sub(dashboardFS, "templates")
	if err == nil {
		var d *dashboard.Dashboard
		if d, err = dashboard.New(dashboard.Options{
			Store: m.store, Templates: templates, ListSize: m.cfg.ListSize, URLPrefix: m.cfg.URLPrefix,
			FlushInterval: m.cfg.FlushInterval, Log: m.log, Stats: func() any { return m.Stats() }, InApp: inApp,
			Actor: m.actor, Mask: m.maskCap,
			SourceLink: m.sourceLink,
		}); err == nil {
			d.Mount(g)
			return
		}
	}
	panic("errmon: the embedded dashboard templates: " + err.Error()) // a build of errmon that cannot serve its pages
}

// actor is Config.Actor's name for who performs a dashboard action,
// masked, on one line and cut to 64 bytes; "" (the dashboard says
// "dashboard") when Config.Actor is not set.
func (m *Monitor) actor(c *gin.Context) string {
	if m.cfg.Actor == nil {
		return ""
	}
	return oneLine(m.maskCap(m.cfg.Actor(c), 256), 64)
}

// permission answers 401 unless the view permission allows the request.
// The refusal says how to open the dashboard.
func (m *Monitor) permission(c *gin.Context) {
	if allow := m.cfg.ViewPermission; allow != nil {
		if allow(c) {
			c.Next()
			return
		}
		dashboard.Abort(c, http.StatusUnauthorized, "not allowed to see the error dashboard: "+
			"Config.ViewPermission refused this request")
		return
	}
	if gin.Mode() == gin.ReleaseMode {
		dashboard.Abort(c, http.StatusUnauthorized, "the error dashboard is closed: gin runs in release mode "+
			"and Config.ViewPermission is not set. Set Config.ViewPermission to decide who may open it "+
			"(errmon.LocalOnly opens it to requests made on this machine)")
		return
	}
	if why := notLocal(c.Request); why != "" {
		dashboard.Abort(c, http.StatusUnauthorized, "the error dashboard answers only requests made on this "+
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
	h.Set("Content-Type", "text/plain; charset=utf-8") // each handler then sets its own
	h.Del("Content-Disposition")
	c.Next()
}

// sameOrigin refuses cross-site state-changing requests with 403, with Go's
// http.CrossOriginProtection (Sec-Fetch-Site, then Origin against Host).
func sameOrigin(c *gin.Context) {
	if err := crossOrigin.Check(c.Request); err != nil {
		dashboard.Abort(c, http.StatusForbidden, "cross-origin request refused")
		return
	}
	c.Next()
}
