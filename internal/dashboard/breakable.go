package dashboard

import (
	"html/template"
	"strings"
	"unicode"
	"unicode/utf8"
)

// breakableRun is the length, in characters, from which a token without a
// space gets break opportunities: shorter ones fit a phone's line.
const breakableRun = 30

// breakable escapes s for HTML and lets its long tokens (routes, paths,
// URLs, Go names) wrap at their separators rather than anywhere: in a run
// of breakableRun or more characters without a space, a <wbr> goes after
// each "/" (not inside "//"), "&", ",", "_" and ":" (not a route's
// "/:name", nor before a digit or "/"), and before each "." that joins two
// names. A browser breaks a line there only when it must; text, copy
// and search are unchanged. Shorter runs are escaped as they are.
func breakable(s string) template.HTML {
	var b strings.Builder
	for s != "" {
		i := strings.IndexFunc(s, unicode.IsSpace)
		if i < 0 {
			i = len(s)
		}
		writeBreakable(&b, s[:i])
		s = s[i:]
		j := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsSpace(r) })
		if j < 0 {
			j = len(s)
		}
		b.WriteString(template.HTMLEscapeString(s[:j]))
		s = s[j:]
	}
	return template.HTML(b.String()) //nolint:gosec // escaped text and <wbr> only
}

// writeBreakable writes one run without spaces.
func writeBreakable(b *strings.Builder, run string) {
	if utf8.RuneCountInString(run) < breakableRun {
		b.WriteString(template.HTMLEscapeString(run))
		return
	}
	from := 0
	for i := 0; i < len(run); i++ {
		var at int // where the <wbr> goes: after run[i] (i+1), before it (i), or none (-1)
		switch c := run[i]; {
		case c == '/' && i+1 < len(run) && run[i+1] != '/' && (i == 0 || run[i-1] != '/'):
			at = i + 1
		case (c == '&' || c == ',' || c == '_') && i+1 < len(run):
			at = i + 1
		case c == ':' && i > 0 && run[i-1] != '/' && i+1 < len(run) && !isDigit(run[i+1]) && run[i+1] != '/':
			at = i + 1
		case c == '.' && i > 0 && i+1 < len(run) && nameByte(run[i-1]) && (nameByte(run[i+1]) && !isDigit(run[i+1]) || run[i+1] == '(' || run[i+1] == '*'):
			at = i
		default:
			at = -1
		}
		if at > from {
			b.WriteString(template.HTMLEscapeString(run[from:at]))
			b.WriteString("<wbr>")
			from = at
		}
	}
	b.WriteString(template.HTMLEscapeString(run[from:]))
}

func nameByte(c byte) bool {
	return c == '_' || c == ')' || isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
