package errmon

import (
	"cmp"
	"net/url"
	"slices"
	"strings"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// The secrets of one request are known by name: a secret-named path or
// query parameter, form field, credential header or cookie. An application
// often repeats them in its own error text ("invalid token 3f9a…", "no
// user for /reset/3f9a…"), where nothing names them; so the values
// themselves are hidden wherever the occurrence repeats them (its message
// and traceback), besides masking each place by its name.

// Bounds of the search for a request's secret values.
const (
	// minSecretValue is the shortest value hidden by value: shorter ones
	// ("1", "yes") would hide ordinary text.
	minSecretValue = 5
	// maxSecretValues is how many values one request has looked for.
	maxSecretValues = 32
	// maxSecretValue is the longest value looked for.
	maxSecretValue = 1 << 10
)

// requestSecrets returns the values this request carries under secret
// names, longest first (so that a value containing another is hidden
// whole).
func requestSecrets(c *gin.Context, bm builderMask) []string {
	var out []string
	add := func(v string) {
		if n := len(v); n >= minSecretValue && n <= maxSecretValue && len(out) < maxSecretValues {
			out = append(out, v)
		}
	}
	for _, p := range c.Params {
		if secret, _ := bm.secret(p.Key); secret {
			add(p.Value)
		}
	}
	r := c.Request
	named := func(vs url.Values) {
		for k, list := range vs {
			if secret, _ := bm.secret(k); secret {
				for _, v := range list {
					add(v)
				}
			}
		}
	}
	if r.URL != nil && r.URL.RawQuery != "" && len(r.URL.RawQuery) <= store.MaxRequestDataBytes {
		vs, _ := url.ParseQuery(strings.ReplaceAll(r.URL.RawQuery, ";", "&"))
		named(vs)
	}
	named(r.PostForm)
	if r.MultipartForm != nil {
		named(r.MultipartForm.Value)
	}
	for k, list := range r.Header {
		switch {
		case strings.EqualFold(k, "Cookie"):
			for _, ck := range r.Cookies() {
				add(ck.Value)
			}
		case text.SecretHeaderName(k) || func() bool { s, _ := bm.secret(k); return s }():
			for _, v := range list {
				add(v)
				if _, cred, ok := strings.Cut(v, " "); ok { // "Bearer <token>"
					add(strings.TrimSpace(cred))
				}
			}
		}
	}
	// Encoded as a URL would carry them, too.
	for _, v := range out {
		for _, e := range []string{url.QueryEscape(v), url.PathEscape(v)} {
			if e != v && !slices.Contains(out, e) {
				add(e)
			}
		}
	}
	// Longest first, so that "Bearer abc…" goes before "abc…".
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}

// hideRequestSecrets hides, in s, the values c carries under secret names.
func (m *Monitor) hideRequestSecrets(c *gin.Context, s string) string {
	if c == nil || c.Request == nil || s == "" {
		return s
	}
	return hideValues(s, requestSecrets(c, m.monitorMask()), m.mask.With)
}

// hideValues replaces every occurrence in s of one of values by with.
func hideValues(s string, values []string, with string) string {
	for _, v := range values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, with)
		}
	}
	return s
}
