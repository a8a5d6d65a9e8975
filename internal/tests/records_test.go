package tests

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gorm.io/gorm"
)

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
