package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon/internal/store"
)

func dashHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestAPIContextObject: a context that is not a JSON object is still an
// object in the API.
func TestAPIContextObject(t *testing.T) {
	for in, want := range map[string]string{"": "{}", "not json": `{"raw":"not json"}`, `[1]`: `{"raw":"[1]"}`, `{"a":1}`: `{"a":1}`} {
		if got := string(apiContext(in, false)); got != want {
			t.Errorf("apiContext(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDashboardHelpers(t *testing.T) {
	if got := store.EscapeLike(`50%_off!`); got != `50!%!_off!!` {
		t.Errorf("escapeLike = %q", got)
	}
	for s, want := range map[string]bool{
		dashHash("x"): true, strings.ToUpper(dashHash("x")): false, dashHash("x")[:63]: false,
		dashHash("x")[:63] + "g": false, "": false, "../../etc/passwd": false,
	} {
		if validHash(s) != want {
			t.Errorf("validHash(%q) = %v", s, !want)
		}
	}
	groups, n := parseTraceback("main.a\n\t/app/a.go:1\nruntime.x\n\t/go/x.go:2\nnet/http.y\n\t/go/y.go:3\nmain.b\n\t/app/b.go:4\n",
		func(function, _ string) bool { return strings.HasPrefix(function, "main.") })
	if n != 2 || len(groups) != 3 || !groups[0].InApp || groups[1].InApp || len(groups[1].Frames) != 2 || groups[2].Frames[0].Line != "4" {
		t.Errorf("parseTraceback: %d %+v", n, groups)
	}
	pl := pageLinks(50, 100, func(p int) string { return fmt.Sprint(p) })
	var nums []string
	for _, p := range pl {
		if p.Gap {
			nums = append(nums, "…")
		} else {
			nums = append(nums, fmt.Sprint(p.Num))
		}
	}
	if got := strings.Join(nums, " "); got != "1 … 48 49 50 51 52 … 100" {
		t.Errorf("pageLinks = %s", got)
	}
	entries, raw := requestContext(`{"body":{"user":{"id":1}},"method":"POST","headers":{"Accept":["a","b"]},"zeta":[1,2]}`, false, pageContextBudget, true)
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key)
	}
	if strings.Join(keys, ",") != "method,headers,body,zeta" {
		t.Errorf("context order: %v", keys)
	}
	if entries[0].Text != "POST" || len(entries[1].Table) != 1 || entries[1].Table[0] != [2]string{"Accept", "a, b"} ||
		!strings.Contains(entries[2].JSON, `"id": 1`) || !strings.Contains(raw, "\n  ") {
		t.Errorf("context entries: %+v", entries)
	}
	if entries, _ := requestContext("not json", false, pageContextBudget, true); len(entries) != 1 || entries[0].Text != "not json" {
		t.Errorf("non-JSON context: %+v", entries)
	}
	if got := formatCount(1234567); got != "1,234,567" {
		t.Errorf("formatCount = %s", got)
	}
	svg := string(sparkline([]int64{0, 1, 4}, time.Now()))
	if strings.Count(svg, "<rect") != 2 || !strings.Contains(svg, "5 occurrences in the last 24 hours") {
		t.Errorf("sparkline: %s", svg)
	}
}
