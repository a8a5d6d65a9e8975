package text

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// maskShape is a text to mask, made to a size: a prefix, then unit
// repeated.
type maskShape struct {
	name, prefix, unit string
}

// make returns the shape at n bytes (at least one unit).
func (sh maskShape) make(n int) string {
	k := max(1, (n-len(sh.prefix))/len(sh.unit))
	return sh.prefix + strings.Repeat(sh.unit, k)
}

// benignShape is what messages and header values usually look like: words,
// numbers, a path, a few non-secret pairs.
var benignShape = maskShape{"benign", "", `GET /api/v2/orders/18342 failed after 312ms: upstream "payments" returned 502 ` +
	`(retry 2/3) user=alice@example.com amount=12.50 EUR at 2026-11-25T14:39:05Z; `}

// adversarialShapes are the texts that cost the regular-expression masker
// time quadratic in their length, and the shapes the built-in rules look
// for, repeated.
var adversarialShapes = []maskShape{
	{"password=password=", "", "password="},
	{"password=[", "", "password=["},
	{"password=[[[", "password=", "["},
	{"key:{{{", "key: ", "{"},
	{`"password":"\"\"`, `"password":"`, `\"`},
	{"password=_spaced", "", "password= "},
	{"pwd=1&", "", "pwd=1&"},
	{"=====", "", "="},
	{"::::", "", ":"},
	{"@@@@", "", "@"},
	{"scheme-seps", "", "://"},
	{"u:p@tcp(", "", "u:p@tcp("},
	{"digits", "", "1234567890"},
	{"card_groups", "", "4111 1111 1111 1111, "},
	{"eyJeyJ", "", "eyJ"},
	{"jwts", "", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln "},
	{"Bearer_Bearer", "", "Bearer "},
	{"Basic_dXNlcjpw", "", "Basic dXNlcjpwYXNz "},
	{"aaaa", "", "a"},
}

// BenchmarkMaskText is masker.text (messages, text bodies, header values)
// on benign text and on each adversarial shape at 1, 8 and 32 KiB; MB/s
// shows the cost per byte.
func BenchmarkMaskText(b *testing.B) {
	m := NewMasker(testKeys, testMask, true)
	for _, sh := range append([]maskShape{benignShape}, adversarialShapes...) {
		for _, kib := range []int{1, 8, 32} {
			s := sh.make(kib << 10)
			b.Run(fmt.Sprintf("%s/%dKiB", sh.name, kib), func(b *testing.B) {
				b.SetBytes(int64(len(s)))
				b.ReportAllocs()
				for b.Loop() {
					m.Text(s)
				}
			})
		}
	}
}

// BenchmarkMaskHeaders masks 100 headers of 8 KiB each as errmon stores
// them: maskTree over the http.Header with every name and value masked as
// text.
func BenchmarkMaskHeaders(b *testing.B) {
	m := NewMasker(testKeys, testMask, true)
	for _, sh := range append([]maskShape{benignShape}, adversarialShapes...) {
		h := http.Header{}
		v := sh.make(8 << 10)
		for i := range 100 {
			h[fmt.Sprintf("X-Custom-%02d", i)] = []string{v}
		}
		b.Run(sh.name+"/100x8KiB", func(b *testing.B) {
			b.SetBytes(int64(100 * len(v)))
			b.ReportAllocs()
			for b.Loop() {
				Tree(h, m.Key, m.With, m.Text)
			}
		})
	}
}

// BenchmarkNormalizeMessage is the fingerprint's normalizer on benign text
// and on runs of digits, hex and separators (it reads 1 KiB at most).
func BenchmarkNormalizeMessage(b *testing.B) {
	for _, sh := range []maskShape{
		benignShape, {"digits", "", "1234567890"}, {"hex", "", "deadbeef"}, {"0x", "", "0x"},
		{"dashes", "", "-"}, {"uuid-ish", "", "4f1c2a9e-8b7d-"}, {"date-ish", "", "2026-11-25T"},
	} {
		s := sh.make(1 << 10)
		b.Run(sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			b.ReportAllocs()
			for b.Loop() {
				Normalize(s)
			}
		})
	}
}
