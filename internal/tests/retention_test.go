package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// TestRetentionOfErrors: at start, resolved errors not seen for
// RetentionDays go with their samples and hourly counts; then, beyond
// MaxErrors, the oldest resolved go first and then the least recently
// seen; open recent errors stay. Stats and the dashboard's footer count
// what was pruned.
func TestRetentionOfErrors(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		first := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) { c.RetentionDays, c.MaxErrors = -1, -1 })
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		seed := func(name string, resolved bool, age time.Duration) {
			rec := dashRecord(name, 3, age)
			rec.Resolved = resolved
			if err := tdb.DB.Create(&rec).Error; err != nil {
				t.Fatal(err)
			}
			occ := store.ErrorOccurrence{Hash: rec.Hash, SeenAt: rec.LastSeen, Message: rec.Message}
			hour := store.ErrorHourly{Hash: rec.Hash, Hour: store.HourStart(now), Count: 3}
			if err := tdb.DB.Create(&occ).Error; err != nil {
				t.Fatal(err)
			}
			if err := tdb.DB.Create(&hour).Error; err != nil {
				t.Fatal(err)
			}
		}
		day := 24 * time.Hour
		seed("resolved long ago", true, 40*day)       // past RetentionDays 30
		seed("open long ago", false, 40*day)          // open: kept by RetentionDays
		seed("resolved lately", true, 2*day)          // the oldest resolved left: first beyond MaxErrors
		seed("open, oldest seen", false, 20*day)      // then the least recently seen
		seed("open, recent", false, time.Hour)        // kept
		seed("open, most recent", false, time.Minute) // kept
		// 6 errors; RetentionDays takes 1; MaxErrors 3 then takes
		// "resolved lately" and then "open long ago" (seen 40 days ago).
		m := coalesceMonitor(t, tdb.DB, func(c *errmon.Config) { c.RetentionDays, c.MaxErrors = 30, 3 })
		flush(t, m) // the writer prunes before it serves this
		var names []string
		for _, r := range allRecords(t, tdb.DB) {
			names = append(names, strings.TrimPrefix(r.Message, "message of "))
		}
		want := map[string]bool{"open, oldest seen": true, "open, recent": true, "open, most recent": true}
		if len(names) != len(want) {
			t.Fatalf("kept %q, want %v", names, want)
		}
		for _, n := range names {
			if !want[n] {
				t.Errorf("kept %q, want %v", names, want)
			}
		}
		var samples, hours int64
		tdb.DB.Model(&store.ErrorOccurrence{}).Count(&samples)
		tdb.DB.Model(&store.ErrorHourly{}).Count(&hours)
		if samples != 3 || hours != 3 {
			t.Errorf("%d samples and %d hourly counts left, want those of the 3 errors kept", samples, hours)
		}
		if got := m.Stats().Pruned; got != 3 {
			t.Errorf("Stats.Pruned = %d, want 3", got)
		}
		dashQuietGin(t)
		e := gin.New()
		m.RegisterRoutes(e)
		d := &dashEnv{m: m, db: tdb.DB, h: e}
		if body := d.do("GET", "/dev/error/", nil).Body.String(); !strings.Contains(body, fmt.Sprintf("%d pruned", 3)) {
			t.Errorf("the footer does not say what was pruned")
		}
	})
}
