package tests

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"gorm.io/gorm"
)

// updateCounter counts the UPDATE statements run on app_errors through a
// GORM callback on the test's own *gorm.DB.
type updateCounter struct {
	mu sync.Mutex
	n  int
}

func countUpdates(t *testing.T, db *gorm.DB) *updateCounter {
	t.Helper()
	c := &updateCounter{}
	count := func(tx *gorm.DB) {
		if strings.HasPrefix(strings.TrimSpace(strings.ToUpper(tx.Statement.SQL.String())), "UPDATE") {
			c.mu.Lock()
			c.n++
			c.mu.Unlock()
		}
	}
	for _, err := range []error{
		db.Callback().Update().After("gorm:update").Register("test:count_updates", count),
		db.Callback().Raw().After("gorm:raw").Register("test:count_raw_updates", count),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *updateCounter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestNotifyEveryClaimsOnlyDueErrors: with NotifyEvery on, writes of open
// errors that were alerted on recently issue no claim UPDATE; an error
// whose interval has passed is claimed and alerted as ongoing once.
func TestNotifyEveryClaimsOnlyDueErrors(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		rec := &ntRecorder{}
		tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) {
			c.SendNotification = true
			c.Notifier = rec
			c.NotifyEvery = time.Hour
			c.NotifyThresholds = []int64{1 << 40}
			c.DigestThreshold = 1000
		})
		errs := make([]error, 50)
		for i := range errs {
			errs[i] = errors.New("ongoing error " + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		}
		for _, err := range errs {
			tm.Record(nil, err)
		}
		tm.flush(t)
		if got := len(rec.reasons()); got != 50 {
			t.Fatalf("%d alerts for 50 new errors", got)
		}
		updates := countUpdates(t, tdb.DB)
		for range 3 {
			for _, err := range errs {
				tm.Record(nil, err)
			}
			tm.flush(t)
		}
		if n := updates.get(); n != 0 {
			t.Errorf("%d UPDATE statements for 150 repeats of errors alerted on just now, want 0", n)
		}
		// One error's interval has passed: it is claimed and alerted once.
		old := time.Now().Add(-2 * time.Hour).UTC()
		if err := tdb.DB.Exec("UPDATE app_errors SET last_notified_at = ? WHERE message = ?", old, errs[7].Error()).Error; err != nil {
			t.Fatal(err)
		}
		before := updates.get()
		tm.Record(nil, errs[7])
		tm.Record(nil, errs[8])
		tm.flush(t)
		if n := updates.get() - before; n != 1 {
			t.Errorf("%d UPDATE statements for one error due a reminder, want 1 (its claim)", n)
		}
		reasons := rec.reasons()
		if got := reasons[len(reasons)-1]; len(reasons) != 51 || got != string(errmon.ReasonOngoing) {
			t.Errorf("alerts %d, last %q; want 51, the last ongoing", len(reasons), got)
		}
	})
}
