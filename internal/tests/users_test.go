package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/dashboard"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// usersEngine serves /fail/:name through m's middleware: it names the user
// of ?u= (SetUser, when set) and fails with the error called name.
func usersEngine(m *errmon.Monitor) *gin.Engine {
	r := gin.New()
	r.Use(m.Middleware())
	r.GET("/fail/:name", func(c *gin.Context) {
		if u, ok := c.GetQuery("u"); ok {
			errmon.SetUser(c, u)
		}
		_ = c.Error(errors.New("users boom " + c.Param("name")))
		c.Status(http.StatusInternalServerError)
	})
	return r
}

// hitAs fails /fail/name once as each of users.
func hitAs(t testing.TB, h http.Handler, name string, users ...string) {
	t.Helper()
	for _, u := range users {
		target := "/fail/" + name
		if u != "-" {
			target += "?u=" + url.QueryEscape(u)
		}
		if w := serve(h, "GET", target, nil, nil); w.Code != http.StatusInternalServerError {
			t.Fatalf("GET %s: %d", target, w.Code)
		}
	}
}

// recordNamed is the stored error whose message ends with name.
func recordNamed(t testing.TB, db *gorm.DB, name string) errmon.ErrorRecord {
	t.Helper()
	for _, r := range allRecords(t, db) {
		if strings.HasSuffix(r.Message, "users boom "+name) {
			return r
		}
	}
	t.Fatalf("no error %q stored", name)
	return errmon.ErrorRecord{}
}

func storedUserKeys(t testing.TB, db *gorm.DB, hash string) int64 {
	t.Helper()
	var n int64
	if err := db.Model(&store.ErrorUser{}).Where("hash = ?", hash).Count(&n).Error; err != nil {
		t.Fatalf("count app_error_users: %v", err)
	}
	return n
}

func users(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// TestUsersAffectedExact: each error counts its distinct users exactly,
// however the occurrences fall into writes, and a request without a user
// counts none.
func TestUsersAffectedExact(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		tm := newTestMonitor(t, tdb.DB, nil)
		h := usersEngine(tm.Monitor)
		hitAs(t, h, "a", "alice", "bob", "alice", "-", "carol")
		tm.flush(t)
		hitAs(t, h, "a", "bob", "dave", "-")
		hitAs(t, h, "b", "alice")
		hitAs(t, h, "none", "-", "-")
		tm.flush(t)
		a, b, none := recordNamed(t, tdb.DB, "a"), recordNamed(t, tdb.DB, "b"), recordNamed(t, tdb.DB, "none")
		if a.Users != 4 || a.UsersEstimated() || a.Count != 8 {
			t.Errorf("a: users %d (estimated %v), count %d; want 4 exact users of 8 occurrences", a.Users, a.UsersEstimated(), a.Count)
		}
		if b.Users != 1 || none.Users != 0 {
			t.Errorf("users of b %d, of none %d; want 1 and 0", b.Users, none.Users)
		}
		if n := storedUserKeys(t, tdb.DB, none.Hash); n != 0 {
			t.Errorf("an error without users keeps %d user keys", n)
		}
		// The sample shows who it hit.
		var samples []store.ErrorOccurrence
		tdb.DB.Where("hash = ?", a.Hash).Order("id").Find(&samples)
		found := false
		for _, s := range samples {
			found = found || s.User == "carol" // the newest sample of its write
		}
		if !found {
			t.Errorf("no sample of a names its user: %+v", samples)
		}
	})
}

// TestUsersAffectedEstimated: past store.UsersExact users, an error keeps a
// sample of at most that many keys, and its count is an estimate close to
// the truth, whether the users come in one write or over many.
func TestUsersAffectedEstimated(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		tm := newTestMonitor(t, tdb.DB, nil)
		h := usersEngine(tm.Monitor)
		const total = 6000
		// "one": every user in one write (the writer's own sample thins);
		// "many": 500 new users per write, each write also repeating old ones.
		hitAs(t, h, "one", users("u", 0, total)...)
		tm.flush(t)
		for from := 0; from < total; from += 500 {
			hitAs(t, h, "many", users("u", from, from+500)...)
			hitAs(t, h, "many", users("u", 0, 20)...)
			tm.flush(t)
		}
		for _, name := range []string{"one", "many"} {
			rec := recordNamed(t, tdb.DB, name)
			if !rec.UsersEstimated() {
				t.Errorf("%s: %d users not marked estimated", name, rec.Users)
			}
			t.Logf("%s: %d users estimated of %d, %d keys kept", name, rec.Users, total, storedUserKeys(t, tdb.DB, rec.Hash))
			if rel := math.Abs(float64(rec.Users-total)) / total; rel > 0.15 {
				t.Errorf("%s: estimated %d users of %d (%.0f%% off)", name, rec.Users, total, 100*rel)
			}
			if n := storedUserKeys(t, tdb.DB, rec.Hash); n > store.UsersExact || n < store.UsersExact/4 {
				t.Errorf("%s: %d user keys stored, want at most %d (and a sample worth the name)", name, n, store.UsersExact)
			}
		}
		// Exactly the cap is still exact.
		hitAs(t, h, "cap", users("c", 0, store.UsersExact)...)
		tm.flush(t)
		if rec := recordNamed(t, tdb.DB, "cap"); rec.Users != store.UsersExact || rec.UsersEstimated() {
			t.Errorf("cap: %d users (estimated %v), want %d exact", rec.Users, rec.UsersEstimated(), store.UsersExact)
		}
	})
}

// TestUsersAffectedAcrossProcesses: two monitors on one database that see
// the same users count each once.
func TestUsersAffectedAcrossProcesses(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		one, two := newTestMonitor(t, tdb.DB, nil), newTestMonitor(t, tdb.DB, nil)
		h1, h2 := usersEngine(one.Monitor), usersEngine(two.Monitor)
		hitAs(t, h1, "shared", users("p", 0, 60)...)
		hitAs(t, h2, "shared", users("p", 30, 90)...)
		done := make(chan struct{})
		go func() { defer close(done); one.flush(t) }()
		two.flush(t)
		<-done
		if rec := recordNamed(t, tdb.DB, "shared"); rec.Users != 90 {
			t.Errorf("users %d, want 90", rec.Users)
		}
	})
}

// TestUsersConfigUser: Config.User names the user when SetUser did not;
// SetUser wins; an id shaped like a secret is masked where it is shown
// but still counted; a Config.User that panics names nobody and the error
// is recorded.
func TestUsersConfigUser(t *testing.T) {
	tdb := openSQLite(t)
	tm := newTestMonitor(t, tdb.DB, func(c *errmon.Config) {
		c.User = func(c *gin.Context) string {
			if c.Query("panic") != "" {
				panic("user hook down")
			}
			return c.GetHeader("X-User")
		}
	})
	h := usersEngine(tm.Monitor)
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	for _, hdr := range []string{"hdr-1", "hdr-2", "hdr-1", jwt} {
		serve(h, "GET", "/fail/cfg", nil, map[string]string{"X-User": hdr})
	}
	serve(h, "GET", "/fail/cfg?u=set-1", nil, map[string]string{"X-User": "hdr-1"}) // SetUser wins
	serve(h, "GET", "/fail/cfg?panic=1", nil, nil)
	tm.flush(t)
	rec := recordNamed(t, tdb.DB, "cfg")
	if rec.Users != 4 || rec.Count != 6 {
		t.Errorf("users %d of %d occurrences, want 4 (hdr-1, hdr-2, the token, set-1) of 6", rec.Users, rec.Count)
	}
	if strings.Contains(dbText(t, tdb.DB), "dozjgNryP4J3jVmNHl0w5N") {
		t.Error("a token-shaped user id reached the database unmasked")
	}
	if !strings.Contains(tm.logs.String(), "Config.User panicked") {
		t.Errorf("the hook's panic was not logged: %s", tm.logs)
	}
}

// TestUsersSortAndShow: the list sorts by users affected (keyset pages
// included), says how many users an error hit, and the API carries it.
func TestUsersSortAndShow(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, func(c *errmon.Config) { c.ListSize = 1 })
		r := usersEngine(d.m)
		hitAs(t, r, "two", "x", "y", "x")
		hitAs(t, r, "three", "x", "y", "z")
		hitAs(t, r, "zero", "-", "-", "-", "-", "-")
		hitAs(t, r, "one", "x")
		dashFlush(t, d.m)
		var order []string
		var usersSeen []int64
		q := url.Values{"sort": {"users"}}
		for range 5 {
			list := d.apiList(t, q)
			for _, e := range list.Errors {
				order = append(order, strings.TrimPrefix(e.Message, "users boom "))
				usersSeen = append(usersSeen, e.Users)
			}
			if list.Next == "" {
				break
			}
			q.Set("after", list.Next)
		}
		if got := strings.Join(order, ","); got != "three,two,one,zero" {
			t.Errorf("sort=users pages: %s (users %v), want three,two,one,zero", got, usersSeen)
		}
		w := d.do("GET", dashPrefix+"/?sort=users", nil)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "3 users") {
			t.Errorf("list page %d does not say 3 users:\n%s", w.Code, w.Body)
		}
		var three string
		for _, r := range allRecords(t, d.db) {
			if strings.HasSuffix(r.Message, "boom three") {
				three = r.Hash
			}
		}
		page := d.do("GET", dashPrefix+"/"+three, nil).Body.String()
		if !strings.Contains(page, "Users affected") || !strings.Contains(page, "user <code>z</code>") {
			t.Errorf("the detail page does not show the users affected and the sample's user:\n%s", page)
		}
		var detail dashboard.APIErrorDetail
		if err := json.Unmarshal(d.do("GET", dashPrefix+"/api/errors/"+three, nil).Body.Bytes(), &detail); err != nil {
			t.Fatal(err)
		}
		if detail.Users != 3 || detail.UsersEstimated || len(detail.Occurrences) == 0 || detail.Occurrences[0].User != "z" {
			t.Errorf("API detail: users %d (estimated %v), samples %+v", detail.Users, detail.UsersEstimated, detail.Occurrences)
		}
		if md := d.do("GET", dashPrefix+"/"+three+"/markdown", nil).Body.String(); !strings.Contains(md, "**Users affected:** 3") {
			t.Errorf("the Markdown export does not say 3 users:\n%s", md)
		}
	})
}

// TestUsersInAlerts: an alert says how many users the error hit.
func TestUsersInAlerts(t *testing.T) {
	n := &ntRecorder{}
	tm, _ := ntMonitor(t, openSQLite(t).DB, n, nil)
	hitAs(t, usersEngine(tm.Monitor), "alert", "ann", "ben", "ann")
	tm.flush(t)
	if len(n.notes) != 1 {
		t.Fatalf("%d alerts, want 1", len(n.notes))
	}
	note := n.last()
	if !strings.Contains(note.Text, "Users:      2") || !strings.Contains(note.HTML, ">Users</td><td>2<") {
		t.Errorf("the alert does not say 2 users:\n%s", note.Text)
	}
}

// TestUsersStatementsPerChunk: counting users costs statements per chunk of
// errors (the insert of the keys, their count, the update), not per error
// or per user; and only the insert when every user was known.
func TestUsersStatementsPerChunk(t *testing.T) {
	const (
		errs   = 300
		chunks = (errs + writeBatchSize - 1) / writeBatchSize
	)
	eachDB(t, func(t *testing.T, tdb testDB) {
		log := &wpLogger{Interface: logger.Discard}
		m := coalesceMonitor(t, tdb.DB.Session(&gorm.Session{Logger: log}), func(c *errmon.Config) { c.FlushInterval = time.Hour })
		record := func(withUsers bool) {
			for i := range errs {
				for u := range 3 {
					c, _ := gin.CreateTestContext(httptest.NewRecorder())
					c.Request = httptest.NewRequest("GET", "/users", nil)
					if withUsers {
						errmon.SetUser(c, fmt.Sprintf("user-%d-%d", i, u))
					}
					m.Record(c, errors.New("users chunk "+letters(i)))
				}
			}
			flush(t, m)
		}
		record(false)
		log.take()
		record(false)
		without := len(log.take())
		record(true)
		with := log.take()
		t.Logf("a pass over %d errors (%d chunks): %d statements with 3 users each, %d without users", errs, chunks, len(with), without)
		if len(with) > without+3*chunks {
			t.Errorf("a pass over %d errors with users ran %d statements, %d without: want at most %d more",
				errs, len(with), without, 3*chunks)
		}
		record(true) // the same users again: nothing to count
		again := 0
		for _, st := range log.take() {
			if st = strings.TrimSpace(st); strings.HasPrefix(st, "INSERT INTO app_error_users") || strings.HasPrefix(st, "INSERT IGNORE INTO app_error_users") ||
				strings.HasPrefix(st, "UPDATE app_errors SET users") || strings.HasPrefix(st, "SELECT hash, COUNT(*) AS n FROM app_error_users") {
				again++
			}
		}
		t.Logf("the same users again: %d statements about users", again)
		if again > chunks {
			t.Errorf("a pass over %d errors whose users are known ran %d statements about users, want at most %d (the inserts)",
				errs, again, chunks)
		}
		for _, r := range rowsByHash(t, tdb.DB) {
			if r.Users != 3 {
				t.Fatalf("%s: %d users, want 3", r.Message, r.Users)
			}
		}
	})
}
