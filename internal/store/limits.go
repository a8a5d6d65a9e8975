package store

import "time"

// The widths of the stored columns: errmon cuts what it captures to them,
// and the dashboard reads no more than them of any row (another writer's
// included).
const (
	MaxMessageBytes     = 8 << 10  // app_errors.message, a sample's message
	MaxTracebackBytes   = 32 << 10 // app_errors.traceback
	MaxRequestDataBytes = 64 << 10 // app_errors.request_data, a sample's request_data (JSON)
	MaxPathBytes        = 2 << 10  // path and route
	MaxHostBytes        = 255      // host
	MaxMethodBytes      = 16       // method
	MaxNameBytes        = 512      // exception_name
	MaxCulpritBytes     = 512      // culprit

	// MaxReadContext is how many characters of a stored context the
	// dashboard reads, as much as errmon itself stores at most. A longer
	// one (another writer's) is shown as cut text.
	MaxReadContext = MaxRequestDataBytes
)

// DBTime is how times are stored: UTC, to the microsecond (PostgreSQL's
// precision), so that SQLite's text comparison orders them correctly.
func DBTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
