package dashboard

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/errmon/errmon/internal/store"
)

// Charts are drawn on the server as inline SVG: no script, no external
// resource, and nothing a Content-Security-Policy has to allow. Colours come
// from the dashboard's style sheet through the classes used here.

// barChart describes a bar chart of counts, oldest first.
type barChart struct {
	Counts []int64
	Width  int    // of the bars, in CSS pixels; 0: the chart's box, whatever its width (labels keep their size)
	Height int    // in CSS pixels
	Class  string // CSS class of the <svg>
	Label  string // accessible description of the whole chart
	// Title returns the tooltip of bar i; nil for none.
	Title func(i int) string
	// Axis returns the label under bar i, or "" for none; nil for no axis.
	Axis func(i int) string
}

// Every chart labels its peak (text.ymax): a fluid chart above its bars, at
// a dashed line; a fixed-width one right of them.
const (
	axisHeight = 16 // pixels under the bars for axis labels
	peakHeight = 14 // pixels above a fluid chart's bars for the peak's label
	peakGutter = 28 // pixels right of a fixed-width chart's bars for the peak's label
)

// svg renders the chart. The output holds only numbers and escaped text.
// A fluid chart has no viewBox: its x positions are percentages, so that
// its text is never scaled down on a narrow screen.
func (ch barChart) svg() template.HTML {
	n := len(ch.Counts)
	if n == 0 || ch.Width < 0 || ch.Height <= 0 {
		return ""
	}
	var peak int64
	for _, c := range ch.Counts {
		peak = max(peak, c)
	}
	fluid := ch.Width == 0
	top, barsH := 0, ch.Height
	if ch.Axis != nil {
		barsH -= axisHeight
	}
	if fluid {
		top = peakHeight
		barsH -= peakHeight
	}
	var buf []byte // reused for numbers
	num := func(f float64) string {
		buf = strconv.AppendFloat(buf[:0], f, 'f', 1, 64)
		return string(buf)
	}
	// x places a fraction of the bars' width.
	x := func(f float64) string {
		if fluid {
			return num(f*100) + "%"
		}
		return num(f * float64(ch.Width))
	}
	slot := 1 / float64(n)
	gap := slot * 0.2
	if !fluid && float64(ch.Width)*slot < 3 {
		gap = 0
	}
	var b strings.Builder
	if fluid {
		fmt.Fprintf(&b, `<svg class="%s" width="100%%" height="%d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
			template.HTMLEscapeString(ch.Class), ch.Height, template.HTMLEscapeString(ch.Label))
		fmt.Fprintf(&b, `<line class="grid" x1="0" y1="%.1f" x2="100%%" y2="%.1f"/>`, float64(top)+0.5, float64(top)+0.5)
		fmt.Fprintf(&b, `<text class="axis ymax" x="0" y="%d">%s</text>`, top-3, formatCount(peak))
	} else {
		fmt.Fprintf(&b, `<svg class="%s" width="%d" height="%d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
			template.HTMLEscapeString(ch.Class), ch.Width+peakGutter, ch.Height, template.HTMLEscapeString(ch.Label))
		fmt.Fprintf(&b, `<text class="axis ymax" x="%d" y="10">%s</text>`, ch.Width+4, compactCount(peak))
	}
	fmt.Fprintf(&b, `<line class="base" x1="0" y1="%.1f" x2="%s" y2="%.1f"/>`, float64(top+barsH)-0.5, x(1), float64(top+barsH)-0.5)
	for i, c := range ch.Counts {
		left := float64(i)*slot + gap/2
		w := slot - gap
		if c > 0 { // empty hours are the base line: no element each
			h := max(float64(barsH-1)*float64(c)/float64(peak), 1.5)
			b.WriteString(`<rect class="bar" x="`)
			b.WriteString(x(left))
			b.WriteString(`" y="`)
			b.WriteString(num(float64(top+barsH) - h))
			b.WriteString(`" width="`)
			b.WriteString(x(w))
			b.WriteString(`" height="`)
			b.WriteString(num(h))
			b.WriteString(`">`)
			if ch.Title != nil {
				b.WriteString(`<title>`)
				b.WriteString(template.HTMLEscapeString(ch.Title(i)))
				b.WriteString(`</title>`)
			}
			b.WriteString(`</rect>`)
		}
		if ch.Axis != nil {
			if l := ch.Axis(i); l != "" {
				// Labels at the ends align with their bar's outer edge, not to
				// be cut off.
				anchor, at := "middle", left+w/2
				if at < 0.08 {
					anchor, at = "start", left
				} else if at > 0.92 {
					anchor, at = "end", left+w
				}
				fmt.Fprintf(&b, `<text class="axis" x="%s" y="%d" text-anchor="%s">%s</text>`,
					x(at), ch.Height-4, anchor, template.HTMLEscapeString(l))
			}
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers and escaped text only
}

// compactCount shortens a count for a small label: 999, 1.2k, 12k, 1.2M.
func compactCount(n int64) string {
	switch {
	case n < 1000:
		return strconv.FormatInt(n, 10)
	case n < 10_000:
		return strconv.FormatFloat(float64(n/100)/10, 'f', -1, 64) + "k"
	case n < 1_000_000:
		return strconv.FormatInt(n/1000, 10) + "k"
	case n < 10_000_000:
		return strconv.FormatFloat(float64(n/100_000)/10, 'f', -1, 64) + "M"
	}
	return strconv.FormatInt(n/1_000_000, 10) + "M"
}

// pluralize formats n with a noun in the singular or plural.
func pluralize(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// sumCounts adds counts.
func sumCounts(counts []int64) int64 {
	var t int64
	for _, c := range counts {
		t += c
	}
	return t
}

// sparkline is the list's small chart: occurrences per hour over the last
// 24 hours, ending with the hour of now.
func sparkline(counts []int64, now time.Time) template.HTML {
	if counts == nil {
		counts = make([]int64, sparkHours)
	}
	start := store.HourStart(now).Add(-time.Duration(len(counts)-1) * time.Hour)
	return barChart{
		Counts: counts, Width: 96, Height: 22, Class: "spark",
		Label: pluralize(sumCounts(counts), "occurrence", "occurrences") + " in the last 24 hours",
		Title: func(i int) string {
			h := start.Add(time.Duration(i) * time.Hour)
			return fmt.Sprintf("%s UTC: %s", h.Format("Jan 2 15:04"), pluralize(counts[i], "occurrence", "occurrences"))
		},
	}.svg()
}

// hourlyChart is the detail page's chart of the last 24 hours.
func hourlyChart(counts []int64, now time.Time) template.HTML {
	start := store.HourStart(now).Add(-time.Duration(len(counts)-1) * time.Hour)
	return barChart{
		Counts: counts, Width: 0, Height: 120, Class: "chart",
		Label: pluralize(sumCounts(counts), "occurrence", "occurrences") + " in the last 24 hours, per hour",
		Title: func(i int) string {
			h := start.Add(time.Duration(i) * time.Hour)
			return fmt.Sprintf("%s–%s UTC: %s", h.Format("Jan 2 15:04"), h.Add(time.Hour).Format("15:04"),
				pluralize(counts[i], "occurrence", "occurrences"))
		},
		Axis: func(i int) string {
			h := start.Add(time.Duration(i) * time.Hour)
			if h.Hour()%6 == 0 {
				return h.Format("15:00")
			}
			return ""
		},
	}.svg()
}

// dailyChart is the detail page's chart of the last days, one bar per UTC
// day; hourly holds the counts of the hours that end with now's hour.
func dailyChart(hourly []int64, now time.Time, days int) template.HTML {
	start := store.HourStart(now).Add(-time.Duration(len(hourly)-1) * time.Hour)
	today := now.UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(days - 1))
	counts := make([]int64, days)
	for i, c := range hourly {
		d := int(start.Add(time.Duration(i)*time.Hour).Truncate(24*time.Hour).Sub(first) / (24 * time.Hour))
		if d >= 0 && d < days {
			counts[d] += c
		}
	}
	return barChart{
		Counts: counts, Width: 0, Height: 100, Class: "chart",
		Label: pluralize(sumCounts(counts), "occurrence", "occurrences") + fmt.Sprintf(" in the last %d days, per day", days),
		Title: func(i int) string {
			return fmt.Sprintf("%s: %s", first.AddDate(0, 0, i).Format("Mon Jan 2"), pluralize(counts[i], "occurrence", "occurrences"))
		},
		Axis: func(i int) string {
			if (days-1-i)%2 == 0 {
				return first.AddDate(0, 0, i).Format("Jan 2")
			}
			return ""
		},
	}.svg()
}

const (
	sparkHours = 24
	chartDays  = 14
)
