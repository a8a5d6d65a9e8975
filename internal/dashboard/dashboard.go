// Package dashboard serves errmon's dashboard: an HTML list and detail
// pages, form actions and a JSON API, read from and written to the store.
// Every link it emits is relative, so it works under any prefix and behind
// any router group or proxy path. The root package mounts it (routes.go)
// behind its permission, security headers and cross-origin check.
//
//	GET  {prefix}/                      list (q, status=open|resolved, sort=count|first_seen, page, after/before cursors)
//	GET  {prefix}/{hash}                detail ({hash} may be a unique prefix of 8 or more: a redirect)
//	POST {prefix}/{hash}/resolve        resolve (JSON with Accept: application/json, else 303)
//	POST {prefix}/{hash}/unresolve      reopen
//	POST {prefix}/{hash}/delete         delete with its samples, hourly counts and history
//	POST {prefix}/{hash}/resolve-next-release  resolve; it stays resolved while it recurs in its latest release only
//	POST {prefix}/{hash}/mute           no alert any more (unmute: again); it is still counted
//	POST {prefix}/{hash}/snooze         no alert for=1h|24h|7d, or until more=N occurrences (unsnooze: end it)
//	POST {prefix}/{hash}/note           note=... in the error's history
//	POST {prefix}/bulk                  action=resolve|unresolve|mute|unmute|snooze|unsnooze|delete, hash=... (repeated)
//	GET  {prefix}/{hash}/markdown       the error as Markdown, plain text to copy into a ticket
//	GET  {prefix}/api/errors            {"errors":[...],"total":N,"page":P}
//	GET  {prefix}/api/errors/{hash}     one error with traceback, request_data and samples
//	GET  {prefix}/assets/dashboard.css  the style sheet
package dashboard

import (
	"html/template"
	"io/fs"
	"log/slog"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// Options is what a Dashboard reads and shows.
type Options struct {
	Store         *store.Store
	Templates     fs.FS // layout.html, list.html, detail.html, notfound.html and dashboard.css
	ListSize      int   // errors per list page
	URLPrefix     string
	FlushInterval time.Duration
	Log           *slog.Logger
	// Stats gives the counters every page's footer shows.
	Stats func() any
	// InApp reports whether a traceback's frame is the application's own.
	InApp func(function, file string) bool
	// Actor names who performs an action, for the error's history,
	// already masked and cut (Config.Actor); nil or "" is "dashboard".
	Actor func(*gin.Context) string
	// Mask masks a note and cuts it to max bytes.
	Mask func(s string, max int) string
	// SourceLink returns the address of a frame's line of code
	// (Config.SourceURL), or "" for none; nil links nothing.
	SourceLink func(function, file string, line int) string
}

// Dashboard is the dashboard of one store.
type Dashboard struct {
	store         *store.Store
	listSize      int
	urlPrefix     string
	flushInterval time.Duration
	log           *slog.Logger
	stats         func() any
	inApp         func(function, file string) bool
	sourceLink    func(function, file string, line int) string
	pages         map[string]*template.Template
	css           []byte
	actorOf       func(*gin.Context) string
	mask          func(s string, max int) string
}

// New returns the dashboard that o describes, with its templates parsed.
func New(o Options) (*Dashboard, error) {
	pages, css, err := parsePages(o.Templates)
	if err != nil {
		return nil, err
	}
	return &Dashboard{
		store: o.Store, listSize: o.ListSize, urlPrefix: o.URLPrefix, flushInterval: o.FlushInterval,
		log: o.Log, stats: o.Stats, inApp: o.InApp, pages: pages, css: css,
		actorOf: o.Actor, mask: o.Mask,
		sourceLink: o.SourceLink,
	}, nil
}

// Mount registers the dashboard's routes on g, the group of its prefix.
func (d *Dashboard) Mount(g gin.IRouter) {
	if d.urlPrefix != "/" {
		g.GET("", redirectToSlash)
	}
	g.GET("/", d.list)
	g.GET("/assets/dashboard.css", d.serveCSS)
	g.GET("/api/errors", d.apiList)
	g.GET("/api/errors/:hash", d.apiDetail)
	g.GET("/:hash", d.detail)
	g.POST("/bulk", d.bulk)
	g.POST("/:hash/:action", d.action)
	g.GET("/:hash/:action", d.getAction)
}

// getAction serves {hash}/markdown; the other actions change state, so a
// GET of them is refused (405).
func (d *Dashboard) getAction(c *gin.Context) {
	if c.Param("action") == "markdown" {
		d.markdown(c)
		return
	}
	methodNotAllowed(c)
}

// Abort answers code with msg and stops the group's handlers: as JSON
// {"error": msg} for the API and for clients that ask for JSON, as text
// otherwise.
func Abort(c *gin.Context, code int, msg string) { abortWith(c, code, msg) }
