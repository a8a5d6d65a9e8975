package errmon

import (
	"strings"
	"testing"

	"github.com/errmon/errmon/internal/text"
)

// The masking tests that store errors are in internal/tests/masking_test.go.
// dbText, jsonAt and decodeRequestData stay here only for the root tests
// that still use them (context_test.go, store_test.go, until those move);
// internal/tests/records_test.go has their twins.

// TestNormalizeMessageBounded: NormalizeMessage reads at most text.MaxNormalized
// bytes (a longer message normalizes as its first text.MaxNormalized bytes do),
// so its cost is bounded whatever the length, and what it writes is at
// most 3 times what it reads, on runs of digits, hex and separators too.
func TestNormalizeMessageBounded(t *testing.T) {
	for _, unit := range []string{"1", "deadbeef", "0x", "-", "1-", "4f1c2a9e-8b7d-", "2026-11-25T", "a1 "} {
		s := strings.Repeat(unit, (1<<20)/len(unit))
		out := NormalizeMessage(s)
		if out != NormalizeMessage(s[:text.MaxNormalized]) {
			t.Errorf("%q: the result depends on bytes past %d", unit, text.MaxNormalized)
		}
		if len(out) > 3*text.MaxNormalized {
			t.Errorf("%q: %d bytes out", unit, len(out))
		}
	}
}
