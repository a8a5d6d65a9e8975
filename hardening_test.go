package errmon

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// Hostile input, the parts that need errmon's unexported capture path: the
// masker's fuzz findings and the allocation bound of one capture. The
// end-to-end tests (hostile panic values and requests on every database,
// secrets in every sink, the capture's budget and depth) are in
// internal/tests/hardening_test.go.

// hzSecret is the secret value planted in every hostile request.
const hzSecret = "S3CR3T-hz-kq7wz"

// Inputs the fuzzers found that the masker once leaked.
func TestHostileMaskerFuzzFindings(t *testing.T) {
	m := text.NewMasker([]string{"password", "secret"}, defaultMaskWith, true)
	for _, tc := range []struct{ in, secret string }{
		// An empty value lets the next key be taken for a bare value,
		// which stops at the quote of the real secret.
		{"password= password='" + hzSecret + "' tail", hzSecret},
		{"secret: password='" + hzSecret + "'", hzSecret},
	} {
		if out := m.Text(tc.in); strings.Contains(out, tc.secret) {
			t.Errorf("secret survived: %q -> %q", tc.in, out)
		}
	}
}

// ---- issue 10: the capture's budget, depth and masking ----

// hzJSONDepth returns how deeply containers nest in a JSON text.
func hzJSONDepth(s string) int {
	depth, deepest, inString := 0, 0, false
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
			deepest = max(deepest, depth)
		case ']', '}':
			depth--
		}
	}
	return deepest
}

// hzHeaders returns n header values of size bytes each under X-Filler-i,
// the first one text that carries the secret.
func hzHeaders(n, size int) map[string]string {
	h := map[string]string{}
	for i := 0; i < n; i++ {
		v := strings.Repeat("h", size)
		if i == 0 {
			v = "password=" + hzSecret + " " + v[:size-40]
		}
		h[fmt.Sprintf("X-Filler-%03d", i)] = v
	}
	return h
}

// hzAllocPerRun returns the bytes allocated, on average, by one call of
// run: the least of a few rounds, since other goroutines (monitors of
// earlier tests finishing) may allocate meanwhile but never take away.
func hzAllocPerRun(runs int, run func()) uint64 {
	run() // warm caches (the message cache, pools)
	best := uint64(math.MaxUint64)
	for round := 0; round < 3; round++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; i < runs; i++ {
			run()
		}
		runtime.ReadMemStats(&after)
		best = min(best, (after.TotalAlloc-before.TotalAlloc)/uint64(runs))
	}
	return best
}

// hzAllocPerCapture returns the bytes allocated by capturing a failure of
// req as the middleware does (context, path, message) and by the debug
// request dump.
func hzAllocPerCapture(m *Monitor, req *http.Request) uint64 {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = req
	return hzAllocPerRun(5, func() {
		_ = m.capture(c, "panic", "alloc case password="+hzSecret, nil, nil)
		_ = m.requestDump(c)
	})
}

// What capturing costs is bounded by the budget, not by the request: a
// request with 100 headers of 8 KiB (800 KiB, under net/http's 1 MiB
// limit) allocates about as much as one with 10 (which fills the headers'
// share already), within a small multiple of the budget; so does a body
// nested 9,000 levels deep. No timing is asserted.
func TestCaptureAllocationBound(t *testing.T) {
	m := hzFuzzMonitor()
	m.cfg.MaxBodyBytes = defaultMaxBodyBytes
	withGinMode(t, gin.DebugMode)
	newReq := func(n int) *http.Request {
		req := httptest.NewRequest(http.MethodGet, "/x?password="+hzSecret, nil)
		for k, v := range hzHeaders(n, 8<<10) {
			req.Header[k] = []string{v}
		}
		return req
	}
	ten := hzAllocPerCapture(m, newReq(10))
	hundred := hzAllocPerCapture(m, newReq(100))
	t.Logf("bytes allocated per capture: 10 headers of 8 KiB %d, 100 headers of 8 KiB %d", ten, hundred)
	// 12x the budget is well under the 800 KiB of headers (before the
	// budget, such a request allocated about 1.4 MB); race mode allocates
	// more than a plain build (sync.Pool drops items on purpose).
	if limit := uint64(12 * contextBudget); hundred > limit {
		t.Errorf("capturing 100 headers of 8 KiB allocates %d bytes, want at most %d (12x the budget)", hundred, limit)
	}
	if hundred > ten*3/2 {
		t.Errorf("100 headers allocate %d bytes, 10 headers %d: the cost grows with the request", hundred, ten)
	}

	// A 9,000-deep body (18 KB; encoding/json decodes up to 10,000 levels):
	// a fresh request each run, its body read once.
	const deepBody = 9000
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	perDeep := hzAllocPerRun(5, func() {
		req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(strings.Repeat("[", deepBody)+strings.Repeat("]", deepBody)))
		req.Header.Set("Content-Type", "application/json")
		c.Request = req
		body := captureBody(req, m.cfg.MaxBodyBytes)
		o := m.capture(c, "panic", "deep", nil, nil)
		if d := hzJSONDepth(o.RequestData); d > maxContextDepth {
			t.Fatalf("a 9,000-deep body is stored %d levels deep", d)
		}
		body.release(req)
	})
	t.Logf("bytes allocated per capture of a 9,000-deep body (18 KB): %d", perDeep)
	if limit := uint64(12 * contextBudget); perDeep > limit {
		t.Errorf("capturing a 9,000-deep body allocates %d bytes, want at most %d", perDeep, limit)
	}
}
