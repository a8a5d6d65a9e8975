package errmon

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// masker hides secret values. A key is secret when its lower-cased name
// contains one of the configured substrings; headers that carry
// credentials are secret whatever the configuration.
type masker struct {
	keys []string // lower-cased
	with string
	raw  *regexp.Regexp // key=value and "key": value pairs in free text
	// rawAt is raw anchored at the start: whether a text starts with a
	// secret key and its separator.
	rawAt *regexp.Regexp
}

// alwaysSecretHeader lists header name parts that always hide the value.
var alwaysSecretHeader = []string{
	"authorization", "cookie", "api-key", "apikey", "api_key", "token",
	"session", "password", "secret", "csrf", "xsrf", "signature", "credential",
}

// userinfo matches the password of a URL such as postgres://user:pass@host.
var userinfo = regexp.MustCompile(`(://[^:/?#@\s"']*:)[^@/?#\s"']*@`)

func newMasker(keys []string, with string) *masker {
	m := &masker{keys: keys, with: with}
	if len(keys) > 0 {
		quoted := make([]string, len(keys))
		for i, k := range keys {
			quoted[i] = regexp.QuoteMeta(k)
		}
		// a key containing a secret word, an optional closing quote, a
		// separator, then the value: quoted (possibly cut short) or bare.
		key := `[\w.\-\[\]]*(?:` + strings.Join(quoted, "|") + `)[\w.\-\[\]]*"?'?\s*(?:=|:)\s*`
		m.raw = regexp.MustCompile(`(?i)(` + key + `)("(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s&,;}\]"']*)`)
		m.rawAt = regexp.MustCompile(`(?i)^"?` + key)
	}
	return m
}

// secret reports whether key names a secret.
func (m *masker) secret(key string) bool {
	if key == "" {
		return false
	}
	lower := strings.ToLower(key)
	for _, k := range m.keys {
		if strings.Contains(lower, k) {
			return true
		}
	}
	return false
}

// secretHeader reports whether a header's value must be hidden.
func (m *masker) secretHeader(name string) bool {
	return m.secret(name) || secretHeaderName(name)
}

// fn returns the mask function handed to a ContextBuilder.
func (m *masker) fn(key string) (bool, string) {
	if m.secret(key) {
		return true, m.with
	}
	return false, ""
}

// text hides the values of secret keys written as key=value or "key": value
// in free text (raw bodies, messages, query strings) and the passwords of
// URLs. A value that opens a bracket ("passwords": ["a", {"b": 1}]) is
// hidden up to the bracket that closes it, or to the end of a text cut
// short.
func (m *masker) text(s string) string {
	if s == "" {
		return s
	}
	if strings.Contains(s, "@") {
		s = userinfo.ReplaceAllString(s, "${1}"+strings.ReplaceAll(m.with, "$", "$$")+"@")
	}
	if m.raw == nil {
		return s
	}
	var b strings.Builder
	pos := 0
	for pos < len(s) {
		loc := m.raw.FindStringSubmatchIndex(s[pos:])
		if loc == nil {
			break
		}
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		vs, ve := pos+loc[4], pos+loc[5]
		b.WriteString(s[pos:vs])
		value := s[vs:ve]
		quoted := strings.HasPrefix(value, `"`) || strings.HasPrefix(value, `'`)
		if !quoted && vs < len(s) && m.rawAt.MatchString(s[vs:]) {
			// What looks like a bare value is the next secret key: this
			// key's value is empty, and the next one is masked in turn.
			pos = vs
			continue
		}
		switch {
		case strings.HasPrefix(value, `"`):
			b.WriteString(`"` + m.with + `"`)
		case strings.HasPrefix(value, `'`):
			b.WriteString(`'` + m.with + `'`)
		case strings.HasPrefix(value, "[") || strings.HasPrefix(value, "{"):
			ve = vs + bracketEnd(s[vs:])
			b.WriteString(m.with)
		default:
			b.WriteString(m.with)
		}
		pos = ve
	}
	if pos == 0 {
		return s
	}
	b.WriteString(s[pos:])
	return b.String()
}

// bracketEnd returns the length of the bracketed value s starts with (up
// to the bracket that closes it, strings skipped), or len(s) when s ends
// first.
func bracketEnd(s string) int {
	depth, inString := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
		case ']', '}':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// value masks a decoded structure: every map key that names a secret, at
// any depth, has its value replaced, and secrets written in text are hidden.
// It returns a new structure.
func (m *masker) value(v any) any { return maskTree(v, m.fn, m.with, m.text) }

// maskTree returns a copy of v in which the value of every map key that
// mask reports secret is replaced, at any depth. A map under the key
// "headers" also has its credential headers and cookie values replaced by
// with. leaf, when not nil, rewrites every string left.
func maskTree(v any, mask func(string) (bool, string), with string, leaf func(string) string) any {
	keyed := func(k string, x any) any {
		if secret, with := mask(k); secret {
			return with
		}
		if strings.EqualFold(k, "headers") {
			x = headerTree(x, with)
		}
		return maskTree(x, mask, with, leaf)
	}
	switch t := v.(type) {
	case string:
		if leaf != nil {
			return leaf(t)
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = keyed(k, x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = maskTree(x, mask, with, leaf)
		}
		return out
	case []string:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = maskTree(x, mask, with, leaf)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = keyed(k, x)
		}
		return out
	case map[string][]string:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = keyed(k, joinValues(x))
		}
		return out
	case url.Values:
		return maskTree(map[string][]string(t), mask, with, leaf)
	case http.Header:
		return maskTree(headerTree(map[string][]string(t), with), mask, with, leaf)
	}
	return v
}

// headerTree hides credential headers and cookie values in a header map,
// whatever its concrete type.
func headerTree(x any, with string) any {
	hide := func(k string, v any) any {
		if strings.EqualFold(k, "Cookie") {
			if s, ok := v.(string); ok {
				return cookieNames(s, with)
			}
			return with
		}
		if secretHeaderName(k) {
			return with
		}
		return v
	}
	switch t := x.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = hide(k, v)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = hide(k, v)
		}
		return out
	case map[string][]string:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = hide(k, joinValues(v))
		}
		return out
	case http.Header:
		return headerTree(map[string][]string(t), with)
	}
	return x
}

// secretHeaderName reports whether a header carries credentials whatever
// the configuration.
func secretHeaderName(name string) bool {
	lower := strings.ToLower(name)
	for _, k := range alwaysSecretHeader {
		if strings.Contains(lower, k) {
			return true
		}
	}
	return false
}

// cookieNames keeps the names of a Cookie header and hides every value.
func cookieNames(v, with string) string {
	parts := strings.Split(v, ";")
	names := make([]string, 0, len(parts))
	for _, p := range parts {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		if name != "" {
			names = append(names, name+"="+with)
		}
	}
	return strings.Join(names, "; ")
}

func joinValues(v []string) any {
	if len(v) == 1 {
		return v[0]
	}
	return append([]string(nil), v...)
}
