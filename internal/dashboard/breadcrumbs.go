package dashboard

import (
	"strconv"
	"time"
)

// The breadcrumbs of a stored context: its member "breadcrumbs", a list of
// {"t", "level", "message", "attrs"} (log records) and {"t", "level":
// "SQL", "sql", "ms", "rows", "error"} (statements), oldest first, and
// "breadcrumbs_dropped", how many older ones were not kept. The detail
// page shows the latest occurrence's in a section of their own; the API
// returns them inside request_data, as stored. Each of the last
// occurrences shows its own the same way, folded (within its budget).

// crumbView is one breadcrumb as the detail page shows it.
type crumbView struct {
	Time  string // UTC, to the millisecond
	ISO   string // as stored, for the datetime attribute
	Level string
	Class string // the tag's class: its colour
	SQL   bool
	Text  string      // the message, or the SQL
	Facts string      // a statement's duration and rows
	Error string      // a statement's error
	Attrs [][2]string // a log record's attributes, when they are flat
	JSON  string      // else, indented
}

// crumbsView is the breadcrumbs section of the detail page.
type crumbsView struct {
	Items []crumbView
	// Dropped counts the older breadcrumbs the request's ring did not keep
	// (as stored); Unshown those kept that the page leaves out, past its
	// cap or its budget (the newest: the API has them).
	Dropped, Unshown int64
}

// Shown is how many breadcrumbs the view shows.
func (v *crumbsView) Shown() int64 { return int64(len(v.Items)) }

// crumbKeys are the members of a stored context that hold breadcrumbs.
var crumbKeys = map[string]bool{"breadcrumbs": true, "breadcrumbs_dropped": true}

// maxShownCrumbs caps the breadcrumbs shown: errmon keeps 32.
const maxShownCrumbs = 64

// breadcrumbsOf reads the breadcrumbs of the stored context data within
// budget bytes of HTML; nil when it holds none (or was cut short).
func breadcrumbsOf(data string, cut bool, budget int) *crumbsView {
	if cut {
		return nil
	}
	members, _, ok := objectMembers(data, maxShownRows, func(k string) bool { return crumbKeys[k] })
	if !ok {
		return nil
	}
	var list string
	v := &crumbsView{}
	for _, m := range members {
		switch m.Key {
		case "breadcrumbs":
			list = m.Value
		case "breadcrumbs_dropped":
			v.Dropped, _ = strconv.ParseInt(m.Value, 10, 64)
		}
	}
	if len(list) < 2 || list[0] != '[' {
		return nil
	}
	left := budget
	items, more := arrayItems(list, maxShownCrumbs)
	v.Unshown += int64(more)
	for _, it := range items {
		if left -= entryMarkup; left <= 0 {
			v.Unshown++
			continue
		}
		v.Items = append(v.Items, crumbOf(it, &left))
	}
	if len(v.Items) == 0 {
		return nil
	}
	return v
}

// arrayItems returns the first limit values of the JSON array text v, and
// how many more it holds.
func arrayItems(v string, limit int) (items []string, more int) {
	for i := skipSpace(v, 1); i < len(v)-1; {
		end, _, ok := scanValue(v, i)
		if !ok {
			break
		}
		if len(items) < limit {
			items = append(items, v[i:end])
		} else {
			more++
		}
		i = skipSpace(v, end)
		if i < len(v)-1 && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return items, more
}

// crumbOf reads one stored breadcrumb.
func crumbOf(obj string, left *int) crumbView {
	var cv crumbView
	members, _, ok := objectMembers(obj, 16, nil)
	if !ok {
		w := shownText{left: left}
		w.add(obj)
		return crumbView{Level: "?", Text: w.b.String()}
	}
	str := func(v string) string {
		if v == "" || v[0] != '"' {
			return cellText(v)
		}
		s, _ := jsonText(v)
		return s
	}
	shown := func(s string) string {
		w := shownText{left: left}
		w.add(s)
		return w.b.String()
	}
	var ms, rows string
	for _, m := range members {
		switch m.Key {
		case "t":
			cv.ISO = shown(str(m.Value))
			cv.Time = cv.ISO
			if t, err := time.Parse(time.RFC3339Nano, cv.ISO); err == nil {
				cv.Time = t.UTC().Format("15:04:05.000")
			}
		case "level":
			cv.Level = shown(str(m.Value))
		case "message":
			cv.Text = shown(str(m.Value))
		case "sql":
			cv.SQL, cv.Text = true, shown(str(m.Value))
		case "ms":
			ms = m.Value
		case "rows":
			rows = m.Value
		case "error":
			cv.Error = shown(str(m.Value))
		case "attrs":
			if sub, flat := flatMembers(m.Value); flat {
				for r, sm := range sub {
					if *left -= rowMarkup; *left <= 0 || r == maxShownRows {
						cv.Attrs = append(cv.Attrs, [2]string{"…", cutNote})
						break
					}
					cv.Attrs = append(cv.Attrs, [2]string{shown(sm.Key), shown(cellText(sm.Value))})
				}
			} else if m.Value != "" && m.Value[0] == '{' {
				cv.JSON = shownJSON(m.Value, 2, left)
			}
		}
	}
	if _, err := strconv.ParseFloat(ms, 64); err == nil {
		cv.Facts = ms + " ms"
	}
	if n, err := strconv.ParseInt(rows, 10, 64); err == nil {
		if cv.Facts != "" {
			cv.Facts += " · "
		}
		cv.Facts += pluralize(n, "row", "rows")
	}
	switch cv.Level {
	case "ERROR":
		cv.Class = "open"
	case "WARN":
		cv.Class = "regr"
	}
	if cv.Level == "" {
		cv.Level = "?"
	}
	return cv
}

// withoutCrumbs drops the breadcrumb members from a context's entries:
// the page shows them in their own section.
func withoutCrumbs(entries []ctxEntry) []ctxEntry {
	out := entries[:0:0]
	for _, e := range entries {
		if !crumbKeys[e.Key] {
			out = append(out, e)
		}
	}
	return out
}
