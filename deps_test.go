package errmon

// Test-only dependencies, pinned here until the tests that use them land.
import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/emersion/go-smtp"
	_ "github.com/pkg/errors"
	_ "go.uber.org/goleak"
)
