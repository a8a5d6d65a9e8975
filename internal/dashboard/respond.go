package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/render"
	"gorm.io/gorm"
)

// maxBulk caps the hashes one bulk action may name.
const maxBulk = 1000

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

// html renders one of the dashboard's pages.
func (d *Dashboard) html(c *gin.Context, code int, page string, data any) {
	c.Header("Content-Type", contentHTML)
	c.Render(code, render.HTML{Template: d.pages[page], Name: "layout", Data: data})
}

// respondJSON writes v as JSON, without escaping &, < and > (a JSON
// answer is never read as HTML: its type is set and nosniff is on), so
// that stored text costs its own size.
func respondJSON(c *gin.Context, code int, v any) {
	b, err := text.MarshalJSON(v)
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

func (d *Dashboard) serveCSS(c *gin.Context) {
	respondData(c, http.StatusOK, contentCSS, d.css)
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
// to the defaults and page numbers that do not parse are page 1. An is:
// status in q takes the place of status.
func (d *Dashboard) parseListQuery(get func(string) string) store.ListQuery {
	q := store.ListQuery{
		Q:    text.Cut(strings.TrimSpace(get("q")), store.MaxSearchLen),
		Page: 1,
		Size: d.listSize,
	}
	switch s := get("status"); s {
	case store.StatusOpen, store.StatusResolved, store.StatusMuted:
		q.Status = s
	}
	// is:open and is:resolved in the search box are the status tabs: the
	// tab shows them, and the box keeps the rest.
	if rest, status := store.LiftStatus(q.Q); status != "" {
		q.Q, q.Status = rest, status
	}
	switch s := get("sort"); s {
	case store.SortCount, store.SortFirstSeen, store.SortUsers:
		q.Sort = s
	}
	if n, err := strconv.Atoi(get("page")); err == nil {
		q.Page = n // clamped by Store.List
	}
	q.Environment = text.Cut(strings.TrimSpace(get("env")), 64)
	return q
}

// values encodes q as URL parameters, leaving defaults out.
func listValues(q store.ListQuery, page int) url.Values {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Status != store.StatusAll {
		v.Set("status", q.Status)
	}
	if q.Sort != "" && q.Sort != store.SortLastSeen {
		v.Set("sort", q.Sort)
	}
	if q.Environment != "" {
		v.Set("env", q.Environment)
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
func (d *Dashboard) serverError(c *gin.Context, err error) {
	d.log.Error("errmon: dashboard", "path", c.Request.URL.Path, "err", err)
	abortWith(c, http.StatusInternalServerError, "database error; see the service log")
}

// notFound answers 404 in the format asked for.
func (d *Dashboard) notFound(c *gin.Context, api bool) {
	if api || wantsJSON(c) {
		respondJSON(c, http.StatusNotFound, gin.H{"error": "no error with this hash"})
	} else {
		d.html(c, http.StatusNotFound, "notfound", d.frame("Not found"))
	}
	c.Abort()
}

// pageCommon is what every page shows around its content.
type pageCommon struct {
	Title string
	Stats any
	Now   time.Time
}

// frame fills what every page shows around its content.
func (d *Dashboard) frame(title string) pageCommon {
	return pageCommon{Title: title, Stats: d.stats(), Now: time.Now().UTC()}
}

// record reads the error with this hash for a handler, or answers for it:
// 404 when there is none (as JSON for the API), 500 when the database
// fails. ok reports whether the handler goes on.
func (d *Dashboard) record(c *gin.Context, hash string, api bool) (rec *store.ShownError, ok bool) {
	rec, err := d.store.Get(c.Request.Context(), hash)
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		d.notFound(c, api)
		return nil, false
	case err != nil:
		d.serverError(c, err)
		return nil, false
	}
	return rec, true
}
