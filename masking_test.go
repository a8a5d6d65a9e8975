package errmon

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/errmon/errmon/internal/text"
	"gorm.io/gorm"
)

// The masking tests that store errors are in internal/tests/masking_test.go.
// dbText, jsonAt and decodeRequestData stay here only for the root tests
// that still use them (context_test.go, store_test.go, until those move);
// internal/tests/records_test.go has their twins.

// dbText returns every value of every row of errmon's tables as text.
func dbText(t testing.TB, db *gorm.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"app_errors", "app_error_occurrences", "app_error_hourly"} {
		var rows []map[string]any
		if err := db.Table(table).Find(&rows).Error; err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, row := range rows {
			for k, v := range row {
				if p, ok := v.([]byte); ok {
					v = string(p)
				}
				fmt.Fprintf(&b, "%s.%s=%v\n", table, k, v)
			}
		}
	}
	return b.String()
}

// jsonAt follows a path of map keys and array indexes in decoded JSON.
func jsonAt(v any, path ...any) (any, bool) {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil, false
			}
			v = a[k]
		}
	}
	return v, true
}

func decodeRequestData(t testing.TB, s string) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("RequestData is not JSON: %v\n%s", err, s)
	}
	return v
}

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
