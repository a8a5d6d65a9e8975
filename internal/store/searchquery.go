package store

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/text"
)

// The search box's language: free terms, in any order, each of which an
// error's exception name, message or path must contain; "quoted phrases"
// kept whole; and prefixes that filter on one column:
//
//	is:open, is:resolved   the status (as the tabs)
//	route:X                the route contains X
//	method:GET             the method, exactly (upper-cased)
//	hash:a1b2c3            the fingerprint starts with these hex digits
//	env:X                  the latest occurrence's environment is X
//	release:X              the first or the latest release is X
//
// A prefix's value may be quoted (route:"/a b"); a quoted token is a free
// term whatever it holds ("is:open" searches that text). Every term is
// matched as literal text (LIKE wildcards escaped), and the whole text is
// cut to MaxSearchLen: a search costs at most MaxSearchTerms terms and
// one filter of each kind.

// MaxSearchTerms caps the free terms of a search; the ones after it are
// not searched (Search.Dropped counts them).
const MaxSearchTerms = 8

// Search is a search box's text, parsed (see ParseSearch).
type Search struct {
	// Terms must each be in the exception name, the message or the path
	// (case-insensitive: ASCII on SQLite, the collation's on MySQL,
	// lower() on PostgreSQL). Duplicates are left out.
	Terms []string
	// Status is is:'s StatusOpen or StatusResolved, or StatusAll.
	Status string
	// Route is contained in the route; Method, Env and Release are
	// equal to the method, the environment and the first or the latest
	// release; Hash is a prefix of the fingerprint (lower-case hex).
	Route, Method, Hash, Env, Release string
	// Dropped counts the free terms beyond MaxSearchTerms: not searched.
	Dropped int
	// Ignored are the prefixed tokens whose value is not understood
	// (is:muted, hash:xyz, ...): they filter nothing.
	Ignored []string
}

// Empty reports whether s filters nothing.
func (s Search) Empty() bool {
	return len(s.Terms) == 0 && s.Status == "" && s.Route == "" && s.Method == "" && s.Hash == "" && s.Env == "" && s.Release == ""
}

// searchToken is one word or "phrase" of a search, its quotes removed;
// from and to are its bytes in the text searched.
type searchToken struct {
	text     string
	quoted   bool // it started with a quote: a free term, whatever it holds
	from, to int
}

// searchTokens splits q into words and quoted phrases. An unclosed quote
// runs to the end.
func searchTokens(q string) []searchToken {
	var out []searchToken
	i := 0
	for i < len(q) {
		r, n := utf8.DecodeRuneInString(q[i:])
		if unicode.IsSpace(r) {
			i += n
			continue
		}
		tok := searchToken{from: i, quoted: r == '"'}
		var b strings.Builder
		inQuote := false
		for i < len(q) {
			r, n := utf8.DecodeRuneInString(q[i:])
			if r == '"' {
				inQuote = !inQuote
			} else if !inQuote && unicode.IsSpace(r) {
				break
			} else {
				b.WriteString(q[i : i+n])
			}
			i += n
		}
		tok.text, tok.to = b.String(), i
		out = append(out, tok)
	}
	return out
}

// searchPrefixes are the prefixes ParseSearch knows.
var searchPrefixes = map[string]bool{"is": true, "route": true, "method": true, "hash": true, "env": true, "release": true}

// prefixOf splits a token into a known prefix and its value, or returns
// "" when the token is a free term. The prefix must be written before any
// quote: route:"/a b" is a prefix, "route:x" a phrase.
func prefixOf(tok searchToken, raw string) (key, value string) {
	if tok.quoted {
		return "", ""
	}
	colon := strings.IndexByte(raw, ':')
	if colon <= 0 || strings.IndexByte(raw[:colon], '"') >= 0 {
		return "", ""
	}
	key = strings.ToLower(raw[:colon])
	if !searchPrefixes[key] {
		return "", ""
	}
	value = tok.text[colon+1:] // the same bytes as raw's up to the colon
	if value == "" {
		return "", "" // "route:" alone is text
	}
	return key, value
}

// cleanSearch is q cut to MaxSearchLen, without NUL bytes and invalid
// UTF-8 (which PostgreSQL refuses in a text parameter, and no stored
// text holds there).
func cleanSearch(q string) string {
	q = text.Cut(q, MaxSearchLen)
	if strings.IndexByte(q, 0) >= 0 {
		q = strings.ReplaceAll(q, "\x00", "")
	}
	return strings.ToValidUTF8(q, "")
}

// ParseSearch reads a search box's text (cut to MaxSearchLen first). A
// prefix given twice keeps its last value.
func ParseSearch(q string) Search {
	q = cleanSearch(q)
	var s Search
	seen := map[string]bool{}
	for _, tok := range searchTokens(q) {
		key, value := prefixOf(tok, q[tok.from:tok.to])
		switch key {
		case "":
			if tok.text == "" {
				continue
			}
			if k := strings.ToLower(tok.text); !seen[k] {
				if len(s.Terms) == MaxSearchTerms {
					s.Dropped++
					continue
				}
				seen[k] = true
				s.Terms = append(s.Terms, tok.text)
			}
			continue
		case "is":
			switch v := strings.ToLower(value); v {
			case StatusOpen, StatusResolved, StatusMuted:
				s.Status = v
				continue
			}
		case "route":
			s.Route = value
			continue
		case "method":
			if len(value) <= MaxMethodBytes && isASCIILetters(value) {
				s.Method = strings.ToUpper(value)
				continue
			}
		case "hash":
			if v := strings.ToLower(value); len(v) <= 64 && isHex(v) {
				s.Hash = v
				continue
			}
		case "env":
			if len(value) <= 64 {
				s.Env = value
				continue
			}
		case "release":
			if len(value) <= 64 {
				s.Release = value
				continue
			}
		}
		s.Ignored = append(s.Ignored, q[tok.from:tok.to])
	}
	return s
}

// LiftStatus takes the is:open, is:resolved and is:muted tokens out of a search's
// text, and returns the rest (as typed) and the status they name (the
// last one), or "" when there is none.
func LiftStatus(q string) (rest, status string) {
	q = cleanSearch(q)
	var pieces []string // the text between the lifted tokens (never inside quotes)
	last := 0
	for _, tok := range searchTokens(q) {
		key, value := prefixOf(tok, q[tok.from:tok.to])
		v := strings.ToLower(value)
		if key != "is" || v != StatusOpen && v != StatusResolved && v != StatusMuted {
			continue
		}
		status = v
		if p := strings.TrimSpace(q[last:tok.from]); p != "" {
			pieces = append(pieces, p)
		}
		last = tok.to
	}
	if status == "" {
		return q, ""
	}
	if p := strings.TrimSpace(q[last:]); p != "" {
		pieces = append(pieces, p)
	}
	return strings.Join(pieces, " "), status
}

// isHex reports whether s is lower-case hex digits, at least one.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return s != ""
}

// isASCIILetters reports whether s is ASCII letters only.
func isASCIILetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}
