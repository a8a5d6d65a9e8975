package tests

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// wfEnv is a monitor of one release, its alerts kept by an ntRecorder,
// with its dashboard mounted.
type wfEnv struct {
	*dashEnv
	tm *testMonitor
}

// wfMonitor starts a monitor on db that records release and alerts
// through rec (thresholds at 3), with its dashboard; tweak may change its
// Config.
func wfMonitor(t *testing.T, db *gorm.DB, rec *ntRecorder, release string, tweak func(*errmon.Config)) *wfEnv {
	t.Helper()
	tm := newTestMonitor(t, db, func(c *errmon.Config) {
		c.SendNotification, c.Notifier = true, rec
		c.Release = release
		c.NotifyThresholds = []int64{3}
		if tweak != nil {
			tweak(c)
		}
	})
	dashQuietGin(t)
	e := gin.New()
	tm.RegisterRoutes(e)
	return &wfEnv{dashEnv: &dashEnv{m: tm.Monitor, db: db, h: e}, tm: tm}
}

// hit records n occurrences of the error with message msg and stores
// them (with their alerts) in one write.
func (w *wfEnv) hit(t *testing.T, msg string, n int) {
	t.Helper()
	for range n {
		w.tm.Record(nil, errors.New(msg))
	}
	w.tm.flush(t)
}

// post posts an action of the error with hash and wants a redirect.
func (w *wfEnv) post(t *testing.T, hash, action string, form url.Values) {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	r := w.do("POST", dashPrefix+"/"+hash+"/"+action, form)
	if r.Code != http.StatusSeeOther {
		t.Fatalf("POST %s: %d %s", action, r.Code, r.Body)
	}
}

// wfOnly is the one stored error.
func wfOnly(t *testing.T, db *gorm.DB) errmon.ErrorRecord {
	t.Helper()
	return ntOnlyRecord(t, db)
}

// wfEvents is the history of hash (store.History), oldest first, as
// "kind release actor".
func wfEvents(t *testing.T, db *gorm.DB, hash string) []string {
	t.Helper()
	var rec store.ErrorRecord
	if err := db.Where("hash = ?", hash).Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	evs, err := store.New(db).History(context.Background(), &rec, store.EventHistory)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[len(evs)-1-i] = strings.Join(strings.Fields(e.Kind+" "+e.Release+" "+e.Actor), " ")
	}
	return out
}

// TestWorkflowMuteSuppressesAlerts: a muted error is counted but sends no
// alert of any reason (threshold, ongoing, regression); unmuted, it
// alerts again. The history records created, muted, unmuted.
func TestWorkflowMuteSuppressesAlerts(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		rec := &ntRecorder{}
		w := wfMonitor(t, tdb.DB, rec, "v1", func(c *errmon.Config) { c.NotifyEvery = time.Millisecond })
		w.hit(t, "muted boom", 1)
		e := wfOnly(t, tdb.DB)
		w.post(t, e.Hash, "mute", nil)
		if got := w.get(t, e.Hash); !got.Muted {
			t.Fatal("mute did not mute")
		}
		time.Sleep(5 * time.Millisecond) // NotifyEvery has passed
		w.hit(t, "muted boom", 3)        // passes threshold 3, due a reminder
		ntResolve(t, tdb.DB, e.Hash)     // and then a regression
		w.hit(t, "muted boom", 1)        //
		if got := rec.reasons(); !slices.Equal(got, []string{"new"}) {
			t.Errorf("alerts while muted: %v, want only [new]", got)
		}
		got := w.get(t, e.Hash)
		if got.Count != 5 || got.Regressions != 1 || got.Resolved {
			t.Errorf("muted error: count %d regressions %d resolved %v, want 5, 1, false", got.Count, got.Regressions, got.Resolved)
		}
		w.post(t, e.Hash, "unmute", nil)
		time.Sleep(5 * time.Millisecond)
		w.hit(t, "muted boom", 1)
		if got := rec.reasons(); !slices.Equal(got, []string{"new", "ongoing"}) {
			t.Errorf("alerts after unmute: %v, want [new ongoing]", got)
		}
		want := []string{"created v1", "muted dashboard", "regressed v1", "unmuted dashboard"}
		if got := wfEvents(t, tdb.DB, e.Hash); !slices.Equal(got, want) {
			t.Errorf("history %q, want %q", got, want)
		}
	})
}

// TestWorkflowSnoozeForAWhile: snoozed for 1 hour, an error passing a
// threshold sends nothing; once the time has passed, its next occurrence
// sends one ongoing alert and the snooze ends (once, whoever asks).
func TestWorkflowSnoozeForAWhile(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		rec := &ntRecorder{}
		w := wfMonitor(t, tdb.DB, rec, "v1", nil)
		w.hit(t, "snoozed boom", 1)
		e := wfOnly(t, tdb.DB)
		before := time.Now()
		w.post(t, e.Hash, "snooze", url.Values{"for": {"1h"}})
		got := w.get(t, e.Hash)
		if got.SnoozedUntil == nil || got.SnoozedUntil.Before(before.Add(59*time.Minute)) || got.SnoozedUntil.After(time.Now().Add(time.Hour)) {
			t.Fatalf("snoozed until %v, want an hour from now", got.SnoozedUntil)
		}
		w.hit(t, "snoozed boom", 3) // passes threshold 3
		if got := rec.reasons(); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("alerts while snoozed: %v, want [new]", got)
		}
		past := store.DBTime(time.Now().Add(-time.Minute))
		if err := tdb.DB.Model(&errmon.ErrorRecord{}).Where("hash = ?", e.Hash).Update("snoozed_until", past).Error; err != nil {
			t.Fatal(err)
		}
		w.hit(t, "snoozed boom", 1)
		w.hit(t, "snoozed boom", 1)
		if got := rec.reasons(); !slices.Equal(got, []string{"new", "ongoing"}) {
			t.Errorf("alerts after the snooze: %v, want [new ongoing]", got)
		}
		if got := w.get(t, e.Hash); got.SnoozedUntil != nil || got.SnoozeUntilCount != 0 {
			t.Errorf("snooze still set after it ran out: %v %d", got.SnoozedUntil, got.SnoozeUntilCount)
		}
		want := []string{"created v1", "snoozed dashboard", "unsnoozed"}
		if got := wfEvents(t, tdb.DB, e.Hash); !slices.Equal(got, want) {
			t.Errorf("history %q, want %q", got, want)
		}

		// The end of a snooze is claimed once, however many processes ask.
		if err := tdb.DB.Model(&errmon.ErrorRecord{}).Where("hash = ?", e.Hash).Update("snoozed_until", past).Error; err != nil {
			t.Fatal(err)
		}
		st := store.New(tdb.DB)
		first, err1 := st.ClaimSnoozeEnd(context.Background(), e.Hash, time.Now())
		second, err2 := st.ClaimSnoozeEnd(context.Background(), e.Hash, time.Now())
		if err1 != nil || err2 != nil || !first || second {
			t.Errorf("two claims of one snooze's end: %v %v (%v %v), want true false", first, second, err1, err2)
		}
	})
}

// TestWorkflowSnoozeUntilMore: snoozed until 3 more occurrences, an error
// sends nothing for the first two, then one ongoing alert.
func TestWorkflowSnoozeUntilMore(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		rec := &ntRecorder{}
		w := wfMonitor(t, tdb.DB, rec, "v1", nil)
		w.hit(t, "counted boom", 1)
		e := wfOnly(t, tdb.DB)
		w.post(t, e.Hash, "snooze", url.Values{"more": {"3"}})
		if got := w.get(t, e.Hash); got.SnoozeUntilCount != 4 || got.SnoozedUntil != nil {
			t.Fatalf("snooze until count %d (until %v), want 4", got.SnoozeUntilCount, got.SnoozedUntil)
		}
		w.hit(t, "counted boom", 2) // count 3: threshold 3 passed, still snoozed
		if got := rec.reasons(); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("alerts while snoozed: %v, want [new]", got)
		}
		w.hit(t, "counted boom", 1) // count 4: the snooze ran out
		w.hit(t, "counted boom", 1)
		if got := rec.reasons(); !slices.Equal(got, []string{"new", "ongoing"}) {
			t.Errorf("alerts: %v, want [new ongoing]", got)
		}
		if got := w.get(t, e.Hash); got.SnoozeUntilCount != 0 {
			t.Errorf("snooze until count %d after it ran out, want 0", got.SnoozeUntilCount)
		}
		for _, bad := range []url.Values{{"more": {"9223372036854775807"}}, {"more": {"0"}}, {"more": {"x"}}, {"for": {"99y"}}, {}} {
			if r := w.do("POST", dashPrefix+"/"+e.Hash+"/snooze", bad); r.Code != http.StatusBadRequest {
				t.Errorf("snooze %v: %d, want 400", bad, r.Code)
			}
		}
	})
}

// TestWorkflowResolveInNextRelease: an error resolved in the next release
// stays resolved, unalerted and counted while it recurs in the release it
// was resolved in (an old instance), and reopens as a regression, alerted,
// on its first occurrence in another release; the history shows both
// with their releases. A plain resolve reopens in the same release.
func TestWorkflowResolveInNextRelease(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		rec := &ntRecorder{}
		v1 := wfMonitor(t, tdb.DB, rec, "v1", nil)
		v1.hit(t, "deploy boom", 1)
		e := wfOnly(t, tdb.DB)
		v1.post(t, e.Hash, "resolve-next-release", nil)
		if got := v1.get(t, e.Hash); !got.Resolved || got.ResolvedInRelease != "v1" || got.ResolvedAt == nil {
			t.Fatalf("resolve in next release: resolved %v in %q at %v", got.Resolved, got.ResolvedInRelease, got.ResolvedAt)
		}
		v1.hit(t, "deploy boom", 4) // an old instance; it would pass threshold 3
		got := v1.get(t, e.Hash)
		if !got.Resolved || got.Regressions != 0 || got.Count != 5 || got.ResolvedAt == nil || got.ResolvedInRelease != "v1" {
			t.Errorf("recurring in v1: resolved %v regressions %d count %d at %v in %q, want resolved, 0, 5",
				got.Resolved, got.Regressions, got.Count, got.ResolvedAt, got.ResolvedInRelease)
		}
		if r := rec.reasons(); !slices.Equal(r, []string{"new"}) {
			t.Errorf("alerts for v1's occurrences: %v, want [new]", r)
		}

		v2 := wfMonitor(t, tdb.DB, rec, "v2", nil)
		v2.hit(t, "deploy boom", 1)
		got = v2.get(t, e.Hash)
		if got.Resolved || got.Regressions != 1 || got.ResolvedInRelease != "" || got.LastRelease != "v2" {
			t.Errorf("occurring in v2: resolved %v regressions %d in %q last %q, want reopened once", got.Resolved, got.Regressions, got.ResolvedInRelease, got.LastRelease)
		}
		if r := rec.reasons(); !slices.Equal(r, []string{"new", "regression"}) {
			t.Errorf("alerts: %v, want [new regression]", r)
		}
		want := []string{"created v1", "resolved v1 dashboard", "regressed v2"}
		if h := wfEvents(t, tdb.DB, e.Hash); !slices.Equal(h, want) {
			t.Errorf("history %q, want %q", h, want)
		}
		page := v2.do("GET", dashPrefix+"/"+e.Hash, nil).Body.String()
		for _, want := range []string{`id="history"`, "<strong>Regressed</strong> in release <code>v2</code>",
			"<strong>Resolved</strong> in the next release: stays resolved in <code>v1</code>", "<strong>Created</strong> in release <code>v1</code>",
			`<time datetime="`} {
			if !strings.Contains(page, want) {
				t.Errorf("detail page lacks %q", want)
			}
		}

		// A plain resolve reopens on any release, the one it was seen in too.
		v2.post(t, e.Hash, "resolve", nil)
		v2.hit(t, "deploy boom", 1)
		if got := v2.get(t, e.Hash); got.Resolved || got.Regressions != 2 {
			t.Errorf("after a plain resolve: resolved %v regressions %d, want reopened", got.Resolved, got.Regressions)
		}
		if r := rec.reasons(); !slices.Equal(r, []string{"new", "regression", "regression"}) {
			t.Errorf("alerts: %v", r)
		}
	})
}
