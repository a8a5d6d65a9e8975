package dashboard

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// maxMarkdownFrames caps the frames the Markdown summary lists (in-app
// first); the rest are counted.
const maxMarkdownFrames = 12

// markdown answers GET {prefix}/{hash}/markdown: the error as Markdown, for
// a ticket or a chat, as a plain-text page to select and copy (no script).
// Everything in it is what the dashboard shows: the masked message, the
// culprit, the in-app frames (the newest store.MaxSourceFrames with the
// stored, masked lines around their line, the line marked ">", as alerts
// show them), the request's method, route and path, and the counts. The
// message and the frames are fenced code blocks, their fence longer than
// any run of backticks inside, so nothing in them is read as Markdown.
func (d *Dashboard) markdown(c *gin.Context) {
	hash := c.Param("hash")
	if !validHash(hash) {
		d.notFound(c, false)
		return
	}
	rec, ok := d.record(c, hash, false)
	if !ok {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s: %s\n\n", mdInline(rec.ExceptionName), mdInline(firstLine(rec.Message)))
	groups, inApp := d.traceback(c.Request.Context(), rec.Traceback)
	var frames []tbFrame
	for _, g := range groups {
		if g.InApp || inApp == 0 {
			frames = append(frames, g.Frames...)
		}
	}
	if len(frames) > 0 {
		fmt.Fprintf(&b, "- **Culprit:** %s\n", mdInline(frames[0].Function))
	}
	if rec.Method != "" || rec.Route != "" {
		fmt.Fprintf(&b, "- **Request:** %s %s (path %s)\n", mdInline(rec.Method), mdInline(rec.Route), mdInline(rec.Path))
	}
	fmt.Fprintf(&b, "- **Occurrences:** %s, first seen %s, last seen %s\n", formatCount(rec.Count),
		rec.CreatedOn.UTC().Format(time.RFC3339), rec.LastSeen.UTC().Format(time.RFC3339))
	if rec.Users > 0 {
		estimated := ""
		if rec.UsersEstimated() {
			estimated = " (estimated)"
		}
		fmt.Fprintf(&b, "- **Users affected:** %s%s\n", formatCount(rec.Users), estimated)
	}
	status := "open"
	if rec.Resolved {
		status = "resolved"
	}
	fmt.Fprintf(&b, "- **Status:** %s, %s\n", status, pluralize(rec.Regressions, "regression", "regressions"))
	fmt.Fprintf(&b, "- **Fingerprint:** %s\n", mdInline(rec.Hash))
	if rec.Message != "" {
		fmt.Fprintf(&b, "\n**Message**\n\n%s", fenced(rec.Message))
	}
	if len(frames) > 0 {
		var tb strings.Builder
		for i, f := range frames {
			if i == maxMarkdownFrames {
				fmt.Fprintf(&tb, "… %d more\n", len(frames)-i)
				break
			}
			fmt.Fprintf(&tb, "%s\n\t%s:%s\n", f.Function, f.File, f.Line)
			store.WriteSourceText(&tb, f.Source, f.Link)
		}
		title := "In-app frames"
		if inApp == 0 {
			title = "Frames"
		}
		fmt.Fprintf(&b, "\n**%s** (newest first)\n\n%s", title, fenced(tb.String()))
	}
	respondData(c, http.StatusOK, contentText, []byte(b.String()))
}

// firstLine is s up to its first line break.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// mdInline is s as inline code, so that nothing in it is read as Markdown:
// the backtick fence is longer than any run of backticks inside.
func mdInline(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "—"
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence // CommonMark strips one space each side
	}
	return fence + s + fence
}

// fenced is s as a fenced code block longer than any backtick run inside.
func fenced(s string) string {
	fence := strings.Repeat("`", max(3, longestRun(s, '`')+1))
	return fence + "\n" + strings.TrimRight(s, "\n") + "\n" + fence + "\n"
}

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}
