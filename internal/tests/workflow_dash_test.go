package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/dashboard"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// TestWorkflowNotes: a note is stored in the error's history with
// Config.Actor's name, both masked and cut (a note to 4 KiB, a name to 64
// bytes); a form of 10 MB is refused before it is read, an empty note too;
// the page shows the newest 100 events; only POSTs from the dashboard's
// own origin count; deleting the error deletes its history, and
// retention deletes the history of errors deleted without it.
func TestWorkflowNotes(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		const nameSecret, noteSecret = "hunter2-name", "hunter2-note"
		d := newDash(t, tdb, func(c *errmon.Config) {
			c.Actor = func(c *gin.Context) string {
				return c.GetHeader("X-User") + " password=" + nameSecret + strings.Repeat(" x", 500)
			}
		})
		e := dashRecord("noted", 3, time.Minute)
		d.seed(t, e)
		target := dashPrefix + "/" + e.Hash + "/note"
		w := d.do("POST", target, url.Values{"note": {"rolled back; password=" + noteSecret + " " + strings.Repeat("é", 5000)}},
			withHeader("X-User", "alice"))
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "../"+e.Hash+"?notice=noted#history" {
			t.Fatalf("note: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
		}
		var evs []store.ErrorEvent
		if err := tdb.DB.Where("hash = ?", e.Hash).Find(&evs).Error; err != nil || len(evs) != 1 {
			t.Fatalf("%d events (%v), want 1", len(evs), err)
		}
		ev := evs[0]
		if ev.Kind != store.EventNoted || !strings.HasPrefix(ev.Actor, "alice password=") || len(ev.Actor) > store.MaxActorBytes ||
			strings.Contains(ev.Actor, nameSecret) || strings.Contains(ev.Note, noteSecret) ||
			!strings.HasPrefix(ev.Note, "rolled back; password=") || len(ev.Note) > store.MaxNoteBytes {
			t.Errorf("note event: kind %q actor %q (%d bytes), note %.60q (%d bytes)", ev.Kind, ev.Actor, len(ev.Actor), ev.Note, len(ev.Note))
		}

		huge := url.Values{"note": {strings.Repeat("n", 10<<20)}}
		if w := d.do("POST", target, huge); w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("a 10 MB note: %d, want 413", w.Code)
		}
		if w := d.do("POST", target, url.Values{"note": {"  "}}); w.Code != http.StatusBadRequest {
			t.Errorf("an empty note: %d, want 400", w.Code)
		}
		if w := d.do("GET", target, nil); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET note: %d, want 405", w.Code)
		}
		if w := d.do("POST", target, url.Values{"note": {"from elsewhere"}}, withHeader("Sec-Fetch-Site", "cross-site")); w.Code != http.StatusForbidden {
			t.Errorf("cross-site note: %d, want 403", w.Code)
		}
		var n int64
		tdb.DB.Model(&store.ErrorEvent{}).Where("hash = ?", e.Hash).Count(&n)
		if n != 1 {
			t.Errorf("%d events after refused notes, want 1", n)
		}

		// The history keeps the newest 100; the page shows them, newest first.
		for i := range store.EventHistory + 5 {
			if w := d.do("POST", target, url.Values{"note": {"note number " + strconv.Itoa(i)}}); w.Code != http.StatusSeeOther {
				t.Fatalf("note %d: %d", i, w.Code)
			}
		}
		tdb.DB.Model(&store.ErrorEvent{}).Where("hash = ?", e.Hash).Count(&n)
		if n != store.EventHistory {
			t.Errorf("%d events kept, want %d", n, store.EventHistory)
		}
		page := d.do("GET", dashPrefix+"/"+e.Hash, nil).Body.String()
		last, first := strings.Index(page, "note number 104<"), strings.Index(page, "note number 5<")
		if last < 0 || first < 0 || last > first || strings.Contains(page, "note number 4<") {
			t.Errorf("history on the page: newest at %d, oldest kept at %d; oldest dropped shown: %v",
				last, first, strings.Contains(page, "note number 4<"))
		}
		if strings.Contains(page, nameSecret) || strings.Contains(page, noteSecret) {
			t.Error("the page shows a secret of the history")
		}

		// Deleting an error deletes its history; retention deletes the
		// history of errors deleted without it.
		if w := d.do("POST", dashPrefix+"/"+e.Hash+"/delete", url.Values{"confirm": {"yes"}}); w.Code != http.StatusSeeOther {
			t.Fatalf("delete: %d", w.Code)
		}
		tdb.DB.Model(&store.ErrorEvent{}).Where("hash = ?", e.Hash).Count(&n)
		if n != 0 {
			t.Errorf("%d events left after delete", n)
		}
		kept := dashRecord("kept", 1, time.Minute)
		d.seed(t, kept)
		orphan := store.ErrorEvent{Hash: dashHash("gone"), Kind: store.EventNoted, At: time.Now()}
		keptEv := store.ErrorEvent{Hash: kept.Hash, Kind: store.EventNoted, At: time.Now()}
		if err := tdb.DB.Create(&orphan).Error; err != nil {
			t.Fatal(err)
		}
		if err := tdb.DB.Create(&keptEv).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := store.New(tdb.DB).PruneErrors(context.Background(), time.Now(), 0, 0); err != nil {
			t.Fatal(err)
		}
		var left []store.ErrorEvent
		tdb.DB.Find(&left)
		if len(left) != 1 || left[0].Hash != kept.Hash {
			t.Errorf("after retention: %d events left, want the kept error's one", len(left))
		}
	})
}

// TestWorkflowBulkAndTabs: mute, unmute, snooze and unsnooze in bulk
// (ticked or the whole page) with counted notices; the Muted tab lists the
// muted errors, which Open leaves out; rows carry muted / snoozed tags;
// the detail page offers only the actions that apply; JSON clients get
// JSON.
func TestWorkflowBulkAndTabs(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		a, b, c := dashRecord("wf-a", 1, time.Minute), dashRecord("wf-b", 2, 2*time.Minute), dashRecord("wf-c", 3, 3*time.Minute)
		a.LastRelease, a.FirstRelease = "v7", "v7"
		d.seed(t, a, b, c)
		bulk := func(form url.Values) string {
			t.Helper()
			w := d.do("POST", dashPrefix+"/bulk", form)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("bulk %v: %d %s", form, w.Code, w.Body)
			}
			return w.Header().Get("Location")
		}
		if loc := bulk(url.Values{"action": {"mute"}, "hash": {a.Hash, b.Hash}}); !strings.Contains(loc, "notice=muted") || !strings.Contains(loc, "n=2") {
			t.Errorf("bulk mute: %q", loc)
		}
		if loc := bulk(url.Values{"action": {"mute"}, "hash": {a.Hash}}); !strings.Contains(loc, "n=0") {
			t.Errorf("muting a muted error again: %q, want n=0", loc)
		}
		muted := hashesOf(d.apiList(t, url.Values{"status": {"muted"}}))
		open := hashesOf(d.apiList(t, url.Values{"status": {"open"}}))
		if len(muted) != 2 || len(open) != 1 || open[0] != c.Hash {
			t.Errorf("muted tab %d errors, open tab %v; want 2 and only wf-c", len(muted), len(open))
		}
		list := d.do("GET", dashPrefix+"/?status=muted", nil).Body.String()
		for _, want := range []string{`aria-current="page">Muted</a>`, `<span class="tag muted">muted</span>`, `value="unmute"`} {
			if !strings.Contains(list, want) {
				t.Errorf("muted tab lacks %q", want)
			}
		}
		if strings.Contains(list, `value="mute"`) || strings.Contains(list, `value="snooze"`) {
			t.Error("the muted tab offers mute or snooze")
		}
		if loc := bulk(url.Values{"action": {"unmute-page"}, "all": {a.Hash, b.Hash, c.Hash}}); !strings.Contains(loc, "notice=unmuted") || !strings.Contains(loc, "n=2") {
			t.Errorf("bulk unmute of the page: %q", loc)
		}
		if loc := bulk(url.Values{"action": {"snooze"}, "for": {"24h"}, "hash": {b.Hash, c.Hash}}); !strings.Contains(loc, "notice=snoozed") || !strings.Contains(loc, "n=2") {
			t.Errorf("bulk snooze: %q", loc)
		}
		if got := d.get(t, c.Hash); got.SnoozedUntil == nil || got.SnoozedUntil.Before(time.Now().Add(23*time.Hour)) {
			t.Errorf("bulk snooze for 24h: until %v", got.SnoozedUntil)
		}
		if w := d.do("POST", dashPrefix+"/bulk", url.Values{"action": {"snooze"}, "for": {"forever"}, "hash": {a.Hash}}); w.Code != http.StatusBadRequest {
			t.Errorf("bulk snooze forever: %d, want 400", w.Code)
		}
		if w := d.do("POST", dashPrefix+"/bulk", url.Values{"action": {"note"}, "hash": {a.Hash}}); w.Code != http.StatusBadRequest {
			t.Errorf("bulk note: %d, want 400", w.Code)
		}
		list = d.do("GET", dashPrefix+"/", nil).Body.String()
		if !strings.Contains(list, `<span class="tag muted">snoozed until `) || !strings.Contains(list, `value="snooze"`) {
			t.Error("the list shows no snoozed tag, or no bulk snooze")
		}
		if loc := bulk(url.Values{"action": {"unsnooze"}, "hash": {b.Hash, c.Hash}}); !strings.Contains(loc, "n=2") {
			t.Errorf("bulk unsnooze: %q", loc)
		}

		// The detail page offers what applies.
		page := d.do("GET", dashPrefix+"/"+a.Hash, nil).Body.String()
		for _, want := range []string{"/resolve-next-release", "/mute\"", "/snooze\"", `name="more"`, `name="note"`} {
			if !strings.Contains(page, want) {
				t.Errorf("open error with a release: page lacks %q", want)
			}
		}
		page = d.do("GET", dashPrefix+"/"+b.Hash, nil).Body.String()
		if strings.Contains(page, "/resolve-next-release") || strings.Contains(page, "/unmute\"") || strings.Contains(page, "/unsnooze\"") {
			t.Error("an error without a release offers resolve in next release, unmute or end snooze")
		}
		w := d.do("POST", dashPrefix+"/"+b.Hash+"/resolve-next-release", url.Values{})
		if loc := w.Header().Get("Location"); !strings.Contains(loc, "notice=unchanged") || d.get(t, b.Hash).Resolved {
			t.Errorf("resolve in next release without a release: %q", loc)
		}
		w = d.do("POST", dashPrefix+"/"+a.Hash+"/mute", url.Values{}, withHeader("Accept", "application/json"))
		var got dashboard.APIError
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK || !got.Muted {
			t.Errorf("JSON mute: %d %s", w.Code, w.Body)
		}
		page = d.do("GET", dashPrefix+"/"+a.Hash+"?notice=muted", nil).Body.String()
		for _, want := range []string{"/unmute\"", `<span class="tag muted">muted</span>`, "Muted: it is still counted"} {
			if !strings.Contains(page, want) {
				t.Errorf("muted error: page lacks %q", want)
			}
		}
		if strings.Contains(page, "/snooze\"") {
			t.Error("a muted error offers snooze")
		}
		if w := d.do("POST", dashPrefix+"/"+a.Hash+"/resolve-next-release", url.Values{}); w.Code != http.StatusSeeOther {
			t.Fatalf("resolve in next release: %d", w.Code)
		}
		page = d.do("GET", dashPrefix+"/"+a.Hash, nil).Body.String()
		if !strings.Contains(page, "/unresolve\"") || strings.Contains(page, "/resolve-next-release") || strings.Contains(page, "/snooze\"") ||
			!strings.Contains(page, "in the next release after <code>v7</code>") {
			t.Error("a resolved error's page: no reopen, or resolve/snooze offered, or no next-release tag")
		}
	})
}
