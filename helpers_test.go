package errmon

import (
	"bytes"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
)

// Helpers of the root package's own tests: the white-box tests that need
// no database. The tests that need one (a driver, an SMTP server, a
// browser, goleak) are black-box tests in internal/tests, with their own
// harness (internal/tests/monitor_test.go).

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// withGinMode sets gin's mode for the rest of the test.
func withGinMode(t testing.TB, mode string) {
	prev := gin.Mode()
	gin.SetMode(mode)
	t.Cleanup(func() { gin.SetMode(prev) })
}

//go:noinline
func panicIndex(i int) int {
	s := []int{1, 2, 3}
	return s[i]
}
