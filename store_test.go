package errmon

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/errmon/errmon/internal/text"
)

// The storage tests on real databases (atomic dedup across monitors,
// first-seen times, a database gone or locked, oversized and hostile
// values) are in internal/tests (store_test.go); here, the sanitizing
// they rely on.

// TestSanitize: sanitize makes text valid UTF-8 without NUL bytes, within
// its limit, cut with a marker; maskCap masks before it cuts.
func TestSanitize(t *testing.T) {
	long := strings.Repeat("ab", 1000)
	for _, tc := range []struct {
		name, in string
		limit    int
		want     string // "" means: check the shape only
	}{
		{"plain", "hello", 10, "hello"},
		{"NUL", "a\x00b", 10, "a\uFFFDb"},
		{"invalid UTF-8", "a\xffb", 10, "a\uFFFDb"},
		{"cut", long, 100, ""},
		{"cut multibyte", strings.Repeat("日本", 100), 50, ""},
		{"tiny limit", long, 3, "aba"},
		{"method column", strings.Repeat("M", 40), 16, strings.Repeat("M", 16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sanitize(tc.in, tc.limit)
			if tc.want != "" && got != tc.want {
				t.Errorf("sanitize = %q, want %q", got, tc.want)
			}
			if len(got) > tc.limit {
				t.Errorf("%d bytes, limit %d", len(got), tc.limit)
			}
			if !utf8.ValidString(got) || strings.ContainsRune(got, 0) {
				t.Errorf("not sanitized: %q", got)
			}
			if len(tc.in) > tc.limit && tc.limit >= 50 && !strings.HasSuffix(got, " bytes cut]") {
				t.Errorf("no marker: %q", got)
			}
		})
	}
	m := &Monitor{mask: text.NewMasker([]string{"password"}, "***", true)}
	huge := strings.Repeat("x", 10<<20) + " password=late-secret"
	if got := m.maskCap(huge, 1000); len(got) > 1000 || !strings.Contains(got, fmt.Sprintf("[%d bytes cut]", len(huge)-len(strings.TrimRight(got[:strings.LastIndex(got, "…")], "…")))) {
		t.Errorf("maskCap of 10 MB: %d bytes, ends %q", len(got), got[max(0, len(got)-40):])
	}
	if got := m.maskCap("a password=early-secret b", 1000); got != "a password=*** b" {
		t.Errorf("maskCap = %q", got)
	}
}
