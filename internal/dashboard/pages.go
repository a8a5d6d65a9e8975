package dashboard

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// The dashboard's HTML pages: the list and the detail of one error.

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
// store.ErrorRecord: text/template finds promoted fields slowly, with allocations.
type listRow struct {
	Hash, ExceptionName, Message string
	Method, Route, Path          string
	Count, Regressions           int64
	Resolved                     bool
	LastSeen, CreatedOn          time.Time
	Spark                        template.HTML
	FirstRelease, Environment    string
	// Lead is what the row leads with: the message (what broke), else the
	// exception's type; Culprit the function to blame.
	Lead, Culprit string
	Muted         bool
	Snooze        string // "" or what a snooze waits for ("2025-01-02 15:04 UTC")
	Users         string // "" or the users it hit: "1 user", "~4,096 users" (see usersText)
}

// usersText says how many users rec hit: "" when none was set, "~" before
// an estimate.
func usersText(rec *store.ErrorRecord) string {
	if rec.Users <= 0 {
		return ""
	}
	s := formatCount(rec.Users)
	if rec.UsersEstimated() {
		s = "~" + s
	}
	if rec.Users == 1 {
		return s + " user"
	}
	return s + " users"
}

type listView struct {
	pageCommon
	Query        store.ListQuery
	Rows         []listRow
	Total        int64
	TotalText    template.HTML // "1,234", or "1,000+" when the count stopped at its cap (digits only: no escaping)
	RangeText    template.HTML // "21–40 of 1,000+", or "20 of 1,000+" on a page reached by a cursor
	Capped       bool          // the count stopped at its cap
	Window       int64         // a search looked at this many newest errors only (0: all)
	Clamped      bool          // the page asked for is beyond the pages counted
	Page, Pages  int
	From, To     int64
	PageLinks    []pageLink
	Prev, Next   string
	Sorts        []tabLink
	Statuses     []tabLink
	Filtered     bool
	Searching    []searchPart // what the search looked for, in words (see searchWords)
	Notice       *notice
	URLPrefix    string
	FlushSeconds string
}

// notice is what an action's redirect asks the list or detail page to
// show: a fixed text for a key, with the count the action changed; Error
// styles it (and announces it) as a failure.
type notice struct {
	Text  string
	Error bool
}

// searchPart is a piece of the sentence that says what a search looked
// for: Strong sets apart what was typed.
type searchPart struct {
	Text   string
	Strong bool
}

// searchWords says in words what the search of q looks for: "Showing open
// errors whose exception, message or path contains “a” and “b”, whose
// route contains “/x”, with method GET." and what of it was not searched.
func searchWords(q store.ListQuery) []searchPart {
	srch := store.ParseSearch(q.Q)
	var out []searchPart
	say := func(s string) { out = append(out, searchPart{Text: s}) }
	typed := func(s string) { out = append(out, searchPart{Text: s, Strong: true}) }
	quoted := func(s string) { say("“"); typed(s); say("”") }
	status := map[string]string{store.StatusOpen: "open ", store.StatusResolved: "resolved "}[q.Status]
	say("Showing " + status + "errors")
	clauses := 0
	clause := func(s string) {
		if clauses > 0 {
			s = "," + s
		}
		clauses++
		say(s)
	}
	for i, t := range srch.Terms {
		if i == 0 {
			clause(" whose exception, message or path contains ")
		} else {
			say(" and ")
		}
		quoted(t)
	}
	if srch.Route != "" {
		clause(" whose route contains ")
		quoted(srch.Route)
	}
	if srch.Method != "" {
		clause(" with method ")
		typed(srch.Method)
	}
	if srch.Hash != "" {
		clause(" whose fingerprint starts with ")
		typed(srch.Hash)
	}
	if srch.Env != "" {
		clause(" from environment ")
		quoted(srch.Env)
	}
	if srch.Release != "" {
		clause(" first or last seen in release ")
		quoted(srch.Release)
	}
	say(".")
	if srch.Dropped > 0 {
		say(" Only the first " + strconv.Itoa(store.MaxSearchTerms) + " terms were searched; " +
			pluralize(int64(srch.Dropped), "more was", "more were") + " left out.")
	}
	for i, t := range srch.Ignored {
		if i == 0 {
			say(" Not understood, so not applied: ")
		} else {
			say(", ")
		}
		quoted(t)
		if i == len(srch.Ignored)-1 {
			say(" (is: takes open or resolved; hash: hex digits; method: letters).")
		}
	}
	return out
}

// noticeFor builds the notice of a redirect's "notice" and "n" parameters;
// an unknown key shows nothing.
func noticeFor(key, count string) *notice {
	n, err := strconv.ParseInt(count, 10, 64)
	if err != nil || n < 0 {
		n = -1 // a single error's page: no count
	}
	errs := func(n int64) string { return pluralize(n, "error", "errors") }
	switch key {
	case "none":
		return &notice{Text: "Nothing selected: tick the errors to change first, or use “all on this page”.", Error: true}
	case "resolved":
		if n < 0 {
			return &notice{Text: "Marked as resolved. It reopens if it happens again."}
		}
		if n == 0 {
			return &notice{Text: "No error changed: the selected ones were resolved already.", Error: true}
		}
		return &notice{Text: errs(n) + " marked as resolved. Each reopens if it happens again."}
	case "unresolved":
		if n < 0 {
			return &notice{Text: "Reopened."}
		}
		if n == 0 {
			return &notice{Text: "No error changed: the selected ones were open already.", Error: true}
		}
		return &notice{Text: errs(n) + " reopened."}
	case "deleted":
		if n < 0 {
			return &notice{Text: "Deleted, with its samples and hourly counts."}
		}
		if n == 0 {
			return &notice{Text: "No error deleted: the selected ones were gone already.", Error: true}
		}
		return &notice{Text: errs(n) + " deleted, with their samples and hourly counts."}
	}
	return workflowNotice(key, n)
}

func (d *Dashboard) list(c *gin.Context) {
	q := d.listQuery(c.Query)
	ctx := c.Request.Context()
	d.store.LogSearchOnce(d.log.Warn)
	res, err := d.store.List(ctx, q)
	if err != nil {
		d.serverError(c, err)
		return
	}
	v := listView{
		pageCommon: d.frame("Errors"), Query: q, Total: res.Total, Page: res.Page, Pages: res.Pages,
		TotalText: totalText(res), Capped: res.Capped, Window: int64(res.Window), Clamped: res.Clamped,
		Filtered: q.Q != "" || q.Status != store.StatusAll, Notice: noticeFor(c.Query("notice"), c.Query("n")),
		URLPrefix: d.urlPrefix, FlushSeconds: d.flushInterval.String(),
	}
	if q.Q != "" {
		v.Searching = searchWords(q)
	}
	switch {
	case len(res.Errors) == 0:
	case res.Page > 0:
		v.From = int64(res.Page-1)*int64(q.Size) + 1
		v.To = v.From + int64(len(res.Errors)) - 1
		v.RangeText = template.HTML(formatCount(v.From)+"–"+formatCount(v.To)+" of ") + v.TotalText
	default:
		v.RangeText = template.HTML(formatCount(int64(len(res.Errors)))+" of ") + v.TotalText
	}
	hashes := make([]string, len(res.Errors))
	for i, e := range res.Errors {
		hashes[i] = e.Hash
	}
	hourly, err := d.store.HourlyCounts(ctx, hashes, v.Now, sparkHours)
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
			Spark:        sparkline(hourly[e.Hash], v.Now),
			FirstRelease: e.FirstRelease, Environment: e.Environment,
			Lead: leadOf(&e), Culprit: e.Culprit,
			Muted: e.Muted, Snooze: snoozeText(&e),
			Users: usersText(&e),
		})
	}
	for _, s := range []struct{ key, label string }{{store.SortLastSeen, "Last seen"}, {store.SortCount, "Count"}, {store.SortFirstSeen, "First seen"}, {store.SortUsers, "Users"}} {
		o := q
		o.Sort = s.key
		v.Sorts = append(v.Sorts, tabLink{Label: s.label, Href: listHref(listValues(o, 1)), Active: q.Sort == s.key || (q.Sort == "" && s.key == store.SortLastSeen)})
	}
	for _, s := range []struct{ key, label string }{{store.StatusAll, "All"}, {store.StatusOpen, "Open"}, {store.StatusResolved, "Resolved"}, {store.StatusMuted, "Muted"}} {
		o := q
		o.Status = s.key
		v.Statuses = append(v.Statuses, tabLink{Label: s.label, Href: listHref(listValues(o, 1)), Active: q.Status == s.key})
	}
	// Previous and Next follow keyset cursors: a page far down the list
	// costs what the first one does. Page numbers link the pages counted.
	if res.Prev != "" {
		v.Prev = listHref(cursorValues(q, "before", res.Prev))
	}
	if res.Next != "" {
		v.Next = listHref(cursorValues(q, "after", res.Next))
	}
	v.PageLinks = pageLinks(res.Page, res.Pages, func(p int) string { return listHref(listValues(q, p)) })
	d.html(c, http.StatusOK, "list", v)
}

// listQuery reads the list's parameters (see parseListQuery) with its
// keyset cursors, after and before.
func (d *Dashboard) listQuery(get func(string) string) store.ListQuery {
	q := d.parseListQuery(get)
	q.After, q.Before = text.Cut(get("after"), 100), text.Cut(get("before"), 100)
	return q
}

// cursorValues encodes q with a cursor (key "after" or "before") in place
// of its page.
func cursorValues(q store.ListQuery, key, cur string) url.Values {
	v := listValues(q, 1)
	v.Set(key, cur)
	return v
}

// totalText shows a count, "1,000+" when it stopped at its cap. It is
// digits, commas and "+" only, which need no escaping (html/template would
// write "+" as "&#43;").
func totalText(res store.ListResult) template.HTML {
	s := formatCount(res.Total)
	if res.Capped {
		s += "+"
	}
	return template.HTML(s)
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
	// Link is the frame's code at Config.SourceURL; Source the stored
	// lines around its line (see frameSources).
	Link   string
	Source []store.SourceLine
}

// frameSources links the application frames of groups to their code and
// gives the newest store.MaxSourceFrames of them their stored lines, read
// with one query.
func (d *Dashboard) frameSources(ctx context.Context, groups []frameGroup) error {
	var (
		keys []store.SourceKey
		at   []*tbFrame
	)
	for gi := range groups {
		if !groups[gi].InApp {
			continue
		}
		for fi := range groups[gi].Frames {
			f := &groups[gi].Frames[fi]
			line, err := strconv.Atoi(f.Line)
			if err != nil || line <= 0 {
				continue
			}
			if d.sourceLink != nil {
				f.Link = d.sourceLink(f.Function, f.File, line)
			}
			if len(keys) < store.MaxSourceFrames {
				keys = append(keys, store.SourceKey{File: f.File, Line: line})
				at = append(at, f)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	got, err := d.store.Sources(ctx, keys)
	if err != nil {
		return err
	}
	for i, f := range at {
		if text, ok := got[keys[i]]; ok {
			f.Source = sourceLines(text, keys[i].Line)
		}
	}
	return nil
}

// traceback parses a stored traceback (see parseTraceback) and gives its
// application frames their links and stored lines (see frameSources). A
// failure to read the lines is logged: the traceback is shown without
// them.
func (d *Dashboard) traceback(ctx context.Context, tb string) ([]frameGroup, int64) {
	groups, inApp := parseTraceback(tb, d.inApp)
	if err := d.frameSources(ctx, groups); err != nil {
		d.log.Warn("errmon: could not read source context", "err", err)
	}
	return groups, inApp
}

// sourceLines reads a stored snippet, the lines from
// store.FirstSourceLine(line), at most 2*store.SourceContext+1 of them.
func sourceLines(text string, line int) []store.SourceLine {
	first := store.FirstSourceLine(line)
	var out []store.SourceLine
	for i, s := range strings.SplitN(strings.ToValidUTF8(text, "\uFFFD"), "\n", 2*store.SourceContext+2) {
		if i > 2*store.SourceContext {
			break
		}
		out = append(out, store.SourceLine{Num: first + i, Text: s, Current: first+i == line})
	}
	return out
}

type frameGroup struct {
	InApp  bool
	Frames []tbFrame
}

// parseTraceback reads the stored traceback ("function\n\tfile:line\n" per
// frame, newest first) into runs of application and library frames.
func parseTraceback(tb string, inApp func(function, file string) bool) (groups []frameGroup, inAppCount int64) {
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

// ctxEntry is one top-level key of the request context, as the page shows
// it (see requestContext).
type ctxEntry struct {
	Key   string
	Text  string      // a scalar value
	Table [][2]string // an object of scalars or lists of them
	JSON  string      // anything else, indented
}

type occurrenceView struct {
	store.ErrorOccurrence
	Context     []ctxEntry
	Breadcrumbs *crumbsView // nil without any
}

type detailView struct {
	pageCommon
	E           *store.ErrorRecord
	Groups      []frameGroup
	InAppFrames int64
	Context     []ctxEntry
	ContextJSON string
	Breadcrumbs *crumbsView // the latest occurrence's, nil without any
	Hourly      template.HTML
	Daily       template.HTML
	Last24      int64
	Occurrences []occurrenceView
	History     int // samples kept per error
	Notice      *notice
	// ConfirmDelete asks, at the top of the page, whether to delete it.
	ConfirmDelete bool
	// Snooze says what the error's snooze waits for ("" when none);
	// Events is its history, newest first (workflow.go).
	Snooze string
	Events []eventView
}

func (d *Dashboard) detail(c *gin.Context) {
	hash := c.Param("hash")
	if !validHash(hash) {
		if !d.shortID(c, false) {
			d.notFound(c, false)
		}
		return
	}
	ctx := c.Request.Context()
	rec, ok := d.record(c, hash, false)
	if !ok {
		return
	}
	v := detailView{pageCommon: d.frame(rec.ExceptionName), E: &rec.ErrorRecord, Notice: noticeFor(c.Query("notice"), ""), History: store.OccurrenceHistory,
		ConfirmDelete: c.Query("confirm") == "delete"}
	v.Groups, v.InAppFrames = d.traceback(ctx, rec.Traceback)
	v.Context, v.ContextJSON = requestContext(rec.RequestData, rec.ContextCut, pageContextBudget, true)
	if v.Breadcrumbs = breadcrumbsOf(rec.RequestData, rec.ContextCut, pageContextBudget); v.Breadcrumbs != nil {
		v.Context = withoutCrumbs(v.Context)
	}
	hours := chartDays * 24
	hourly, err := d.store.HourlyCounts(ctx, []string{hash}, v.Now, hours)
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
	v.Snooze = snoozeText(&rec.ErrorRecord)
	if v.Events, err = d.history(ctx, &rec.ErrorRecord); err != nil {
		d.serverError(c, err)
		return
	}
	occ, err := d.store.LastOccurrences(ctx, hash, store.OccurrenceHistory)
	if err != nil {
		d.serverError(c, err)
		return
	}
	for _, o := range occ {
		ov := occurrenceView{ErrorOccurrence: o.ErrorOccurrence}
		ov.Context, _ = requestContext(o.RequestData, o.ContextCut, sampleBudget, false)
		if ov.Breadcrumbs = breadcrumbsOf(o.RequestData, o.ContextCut, sampleBudget); ov.Breadcrumbs != nil {
			ov.Context = withoutCrumbs(ov.Context)
		}
		v.Occurrences = append(v.Occurrences, ov)
	}
	d.html(c, http.StatusOK, "detail", v)
}

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

// leadOf is what a listed error leads with: the first line of its latest
// (masked) message, so the row says what broke; the exception's type when
// there is no message. It is shown as it is, not normalized: a <n> in
// place of each number would mangle ids and tokens a reader searches for.
func leadOf(e *store.ErrorRecord) string {
	if m := firstLine(e.Message); strings.TrimSpace(m) != "" {
		return m
	}
	return e.ExceptionName
}
