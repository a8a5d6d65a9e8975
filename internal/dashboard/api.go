package dashboard

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// The dashboard's JSON API.

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
	FirstRelease  string     `json:"first_release"`
	LastRelease   string     `json:"last_release"`
	Environment   string     `json:"environment"`
	// Muted, SnoozedUntil, SnoozeUntilCount and ResolvedInRelease are the
	// triage workflow's state (see store.ErrorRecord).
	Muted             bool       `json:"muted"`
	SnoozedUntil      *time.Time `json:"snoozed_until"`
	SnoozeUntilCount  int64      `json:"snooze_until_count"`
	ResolvedInRelease string     `json:"resolved_in_release"`
	// Users is how many distinct users the error hit (errmon.SetUser), an
	// estimate when UsersEstimated (past 1,000 users); 0 when none was named.
	Users          int64 `json:"users"`
	UsersEstimated bool  `json:"users_estimated"`
}

// APIErrorDetail is one error with everything stored about it, as
// GET {prefix}/api/errors/{hash} shows it.
type APIErrorDetail struct {
	APIError
	Traceback string `json:"traceback"`
	// Source is the source context of the application frames, newest
	// first: those of the newest store.MaxSourceFrames (8) in-app frames
	// of Traceback whose lines are stored, each with the lines around its
	// own, masked as stored. It is [] when none are (and when they could
	// not be read: errmon logs why).
	Source []APISource `json:"source"`
	// RequestData is the stored request context, an object. Levels nested
	// deeper than 64 are replaced by a string such as "[… 8937 more
	// levels]"; a context that is not a JSON object is {"raw": text}, with
	// "truncated": true when text is cut (at 16 KiB, or when the context is
	// longer than errmon stores, 64 KiB). Its member "breadcrumbs" lists
	// the latest occurrence's breadcrumbs, oldest first, as stored (and
	// "breadcrumbs_dropped" counts those left out); so does each
	// occurrence's.
	RequestData json.RawMessage `json:"request_data"`
	// Hourly holds the occurrences per hour over the last 24 hours, oldest
	// first.
	Hourly      []int64         `json:"hourly"`
	Occurrences []APIOccurrence `json:"occurrences"` // newest first
}

// APISource is the source context of one application frame: its code
// from line FirstSourceLine(Line) (3 lines before Line, fewer at the top
// of the file) to 3 lines after it (fewer at the end), as errmon read it
// from the file when the frame was first captured, masked.
type APISource struct {
	Function string `json:"function"`
	File     string `json:"file"` // as the traceback names it
	Line     int    `json:"line"`
	// URL is the frame's code at Config.SourceURL, "" without one.
	URL string `json:"url"`
	// Lines holds at most 7 lines, in order; the one whose Current is set
	// is Line.
	Lines []APISourceLine `json:"lines"`
}

// APISourceLine is one line of code of an APISource.
type APISourceLine struct {
	Number  int    `json:"number"`
	Text    string `json:"text"` // without its line break, cut at 300 bytes when captured
	Current bool   `json:"current"`
}

// apiSources lists the application frames of groups that have stored
// lines (frameSources gave them), newest first.
func apiSources(groups []frameGroup) []APISource {
	out := []APISource{}
	for _, g := range groups {
		if !g.InApp {
			continue
		}
		for _, f := range g.Frames {
			if len(f.Source) == 0 {
				continue
			}
			line, _ := strconv.Atoi(f.Line)
			s := APISource{Function: f.Function, File: f.File, Line: line, URL: f.Link, Lines: make([]APISourceLine, len(f.Source))}
			for i, l := range f.Source {
				s.Lines[i] = APISourceLine{Number: l.Num, Text: l.Text, Current: l.Current}
			}
			out = append(out, s)
		}
	}
	return out
}

// APIOccurrence is one stored sample of an error.
type APIOccurrence struct {
	SeenAt      time.Time       `json:"seen_at"`
	Host        string          `json:"host"`
	Path        string          `json:"path"`
	Method      string          `json:"method"`
	Message     string          `json:"message"`
	RequestData json.RawMessage `json:"request_data"` // as in apiErrorDetail
	Release     string          `json:"release"`
	Environment string          `json:"environment"`
	Server      string          `json:"server"`
	Status      int             `json:"status"` // the response status; 0 outside a request
	User        string          `json:"user"`   // the user it hit (errmon.SetUser), masked; "" when none
}

// APIErrorList is a page of errors, as GET {prefix}/api/errors shows it.
//
// The list is read in pages of PageSize, newest first (or as sort= asks).
// To walk it, pass Next as after= (Prev as before=), with the same q,
// status and sort: a cursor costs the same however deep it reaches.
// page= still serves the pages counted (see Total), clamped to them.
type APIErrorList struct {
	Errors []APIError `json:"errors"`
	// Total is the number of matching errors, counted up to a cap: 1,000
	// (or ten pages, if that is more) for the list, ten pages (at least
	// 100) for a search. When TotalIsLowerBound is set there are at least
	// that many, and Pages counts the pages of the cap only. A search that
	// looked at the newest errors only (SearchWindow) counts the matches
	// among them, and sets TotalIsLowerBound too.
	Total int64 `json:"total"`
	// TotalIsLowerBound tells that Total stopped at its cap (or that older
	// errors were not searched): there may be more.
	TotalIsLowerBound bool `json:"total_is_lower_bound"`
	// Page is the page served, after clamping; 0 for a page asked for by
	// a cursor (after= or before=).
	Page     int `json:"page"`
	Pages    int `json:"pages"`
	PageSize int `json:"page_size"`
	// Next is the cursor of the following page (pass it as after=), ""
	// on the last page.
	Next string `json:"next"`
	// Prev is the cursor of the preceding page (pass it as before=), ""
	// on the first page.
	Prev string `json:"prev"`
	// SearchWindow, when not 0, is how many of the newest errors (by last
	// seen) a search looked at: where no index serves the search (SQLite,
	// MySQL, PostgreSQL without pg_trgm), older errors are not searched.
	SearchWindow int `json:"search_window"`
}

func toAPI(e *store.ErrorRecord) APIError {
	return APIError{
		Hash: e.Hash, ExceptionName: e.ExceptionName, Message: e.Message, Host: e.Host,
		Path: e.Path, Route: e.Route, Method: e.Method, Count: e.Count,
		CreatedOn: e.CreatedOn.UTC(), LastSeen: e.LastSeen.UTC(), Resolved: e.Resolved,
		ResolvedAt: e.ResolvedAt, Regressions: e.Regressions,
		FirstRelease: e.FirstRelease, LastRelease: e.LastRelease, Environment: e.Environment,
		Muted: e.Muted, SnoozedUntil: e.SnoozedUntil, SnoozeUntilCount: e.SnoozeUntilCount,
		ResolvedInRelease: e.ResolvedInRelease,
		Users:             e.Users, UsersEstimated: e.UsersEstimated(),
	}
}

func (d *Dashboard) apiList(c *gin.Context) {
	q := d.listQuery(c.Query)
	d.store.LogSearchOnce(d.log.Warn)
	res, err := d.store.List(c.Request.Context(), q)
	if err != nil {
		d.serverError(c, err)
		return
	}
	out := APIErrorList{Errors: make([]APIError, 0, len(res.Errors)), Total: res.Total, TotalIsLowerBound: res.TotalIsLowerBound,
		Page: res.Page, Pages: res.Pages, PageSize: q.Size, Next: res.Next, Prev: res.Prev, SearchWindow: res.Window}
	for i := range res.Errors {
		out.Errors = append(out.Errors, toAPI(&res.Errors[i]))
	}
	respondJSON(c, http.StatusOK, out)
}

func (d *Dashboard) apiDetail(c *gin.Context) {
	hash := c.Param("hash")
	if !validHash(hash) {
		if !d.shortID(c, true) {
			d.notFound(c, true)
		}
		return
	}
	ctx := c.Request.Context()
	rec, ok := d.record(c, hash, true)
	if !ok {
		return
	}
	out := APIErrorDetail{APIError: toAPI(&rec.ErrorRecord), Traceback: rec.Traceback, RequestData: apiContext(rec.RequestData, rec.ContextCut)}
	groups, _ := d.traceback(ctx, rec.Traceback)
	out.Source = apiSources(groups)
	hourly, err := d.store.HourlyCounts(ctx, []string{hash}, time.Now(), sparkHours)
	if err != nil {
		d.serverError(c, err)
		return
	}
	out.Hourly = hourly[hash]
	if out.Hourly == nil {
		out.Hourly = make([]int64, sparkHours)
	}
	occ, err := d.store.LastOccurrences(ctx, hash, store.OccurrenceHistory)
	if err != nil {
		d.serverError(c, err)
		return
	}
	out.Occurrences = make([]APIOccurrence, 0, len(occ))
	for _, o := range occ {
		out.Occurrences = append(out.Occurrences, APIOccurrence{
			SeenAt: o.SeenAt.UTC(), Host: o.Host, Path: o.Path, Method: o.Method,
			Message: o.Message, RequestData: apiContext(o.RequestData, o.ContextCut),
			Release: o.Release, Environment: o.Environment, Server: o.Server, Status: o.Status,
			User: o.User,
		})
	}
	respondJSON(c, http.StatusOK, out)
}
