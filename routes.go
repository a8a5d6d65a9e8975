package errmon

import (
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
)

// RegisterRoutes mounts the dashboard and its JSON API on r under
// Config.URLPrefix. Extra middleware (gin.BasicAuth, say) runs before
// Config.ViewPermission for every route of the group.
func (m *Monitor) RegisterRoutes(r gin.IRouter, middleware ...gin.HandlerFunc) {
	g := r.Group(m.cfg.URLPrefix, middleware...)
	g.Use(m.permission)
}

// permission answers 401 unless Config.ViewPermission allows the request.
func (m *Monitor) permission(c *gin.Context) {
	if !m.cfg.ViewPermission(c) {
		c.AbortWithStatus(http.StatusUnauthorized)
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
