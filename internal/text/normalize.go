package text

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "<uuid>"},
	{regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?`), "<date>"},
	{regexp.MustCompile(`(?i)\b0x[0-9a-f]+\b`), "<hex>"},
	{regexp.MustCompile(`\d+`), "<n>"},
}

// hexWord matches hex-looking words such as commit ids or object ids;
// those with both digits and letters are replaced after normalizers[hexStep].
var hexWord = regexp.MustCompile(`(?i)\b[0-9a-f]{6,}\b`)

const hexStep = 2

// MaxNormalized is the length of a message (bytes) that Normalize reads:
// the rest does not change its result, so its cost is bounded.
const MaxNormalized = 1024

// Normalize replaces the parts of a message that vary between
// occurrences of one bug (UUIDs, dates, hex values and addresses, numbers)
// with placeholders, so that they do not split its group.
func Normalize(msg string) string {
	if len(msg) > MaxNormalized {
		cut := MaxNormalized
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	for i, n := range normalizers {
		msg = n.re.ReplaceAllString(msg, n.with)
		if i == hexStep {
			msg = hexWord.ReplaceAllStringFunc(msg, func(w string) string {
				if strings.ContainsAny(w, "0123456789") && strings.ContainsAny(w, "abcdefABCDEF") {
					return "<hex>"
				}
				return w
			})
		}
	}
	return msg
}
