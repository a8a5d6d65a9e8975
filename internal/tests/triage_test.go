package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestDeleteAsksFirst: an HTML delete (one error or in bulk) asks on a
// page of its own before anything goes; the confirmed form deletes; a JSON
// client deletes at once.
func TestDeleteAsksFirst(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		a, b, c := dashRecord("del-a", 1, time.Minute), dashRecord("del-b", 2, 2*time.Minute), dashRecord("del-c", 3, 3*time.Minute)
		d.seed(t, a, b, c)

		w := d.do("POST", dashPrefix+"/"+a.Hash+"/delete", url.Values{})
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "../"+a.Hash+"?confirm=delete" {
			t.Fatalf("unconfirmed delete: %d %q", w.Code, w.Header().Get("Location"))
		}
		if d.get(t, a.Hash) == nil {
			t.Fatal("an unconfirmed delete deleted")
		}
		page := d.do("GET", dashPrefix+"/"+a.Hash+"?confirm=delete", nil).Body.String()
		for _, want := range []string{"Delete this error?", `action="./` + a.Hash + `/delete"`, `name="confirm" value="yes"`, `href="./` + a.Hash + `">Cancel`} {
			if !strings.Contains(page, want) {
				t.Errorf("confirmation lacks %q", want)
			}
		}
		w = d.do("POST", dashPrefix+"/"+a.Hash+"/delete", url.Values{"confirm": {"yes"}})
		if w.Code != http.StatusSeeOther || d.get(t, a.Hash) != nil {
			t.Fatalf("confirmed delete: %d, still there: %v", w.Code, d.get(t, a.Hash) != nil)
		}

		form := url.Values{"action": {"delete"}, "hash": {b.Hash, c.Hash}, "status": {"open"}}
		w = d.do("POST", dashPrefix+"/bulk", form)
		if w.Code != http.StatusOK || d.get(t, b.Hash) == nil || d.get(t, c.Hash) == nil {
			t.Fatalf("unconfirmed bulk delete: %d", w.Code)
		}
		body := w.Body.String()
		for _, want := range []string{"Delete 2 errors?", "message of del-b", "message of del-c", `name="confirm" value="yes"`,
			`name="hash" value="` + b.Hash + `"`, `name="status" value="open"`, `href="./?status=open">Cancel`} {
			if !strings.Contains(body, want) {
				t.Errorf("bulk confirmation lacks %q", want)
			}
		}
		form.Set("confirm", "yes")
		w = d.do("POST", dashPrefix+"/bulk", form)
		if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || !strings.Contains(loc, "notice=deleted") || !strings.Contains(loc, "n=2") {
			t.Fatalf("confirmed bulk delete: %d %q", w.Code, loc)
		}
		if d.get(t, b.Hash) != nil || d.get(t, c.Hash) != nil {
			t.Error("confirmed bulk delete left errors")
		}

		e := dashRecord("del-json", 1, time.Minute)
		d.seed(t, e)
		if w := d.do("POST", dashPrefix+"/"+e.Hash+"/delete", nil, withHeader("Accept", "application/json")); w.Code != http.StatusOK || d.get(t, e.Hash) != nil {
			t.Errorf("JSON delete: %d, still there: %v", w.Code, d.get(t, e.Hash) != nil)
		}
	})
}

// TestBulkNoticesAndSelectAll: bulk actions say how many errors changed,
// "nothing selected" is an error notice, "…-page" applies to every error
// of the page, and each tab offers only the actions that apply.
func TestBulkNoticesAndSelectAll(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		d := newDash(t, tdb, nil)
		a, b, c := dashRecord("bulk-a", 1, time.Minute), dashRecord("bulk-b", 2, 2*time.Minute), dashRecord("bulk-c", 3, 3*time.Minute)
		d.seed(t, a, b, c)
		follow := func(form url.Values) string {
			t.Helper()
			w := d.do("POST", dashPrefix+"/bulk", form)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("bulk %v: %d %s", form, w.Code, w.Body)
			}
			return d.do("GET", dashPrefix+"/"+w.Header().Get("Location")[2:], nil).Body.String()
		}
		page := follow(url.Values{"action": {"resolve"}, "hash": {a.Hash, b.Hash}})
		if !strings.Contains(page, `class="notice" role="status">2 errors marked as resolved.`) {
			t.Errorf("resolve notice missing:\n%s", page)
		}
		page = follow(url.Values{"action": {"resolve"}, "hash": {a.Hash}})
		if !strings.Contains(page, `class="notice error" role="alert">No error changed`) {
			t.Error("resolving a resolved error is not an error notice")
		}
		page = follow(url.Values{"action": {"resolve"}})
		if !strings.Contains(page, `class="notice error" role="alert">Nothing selected`) {
			t.Error("nothing selected is not an error notice")
		}
		page = follow(url.Values{"action": {"unresolve-page"}, "all": {a.Hash, b.Hash, c.Hash}})
		if !strings.Contains(page, "2 errors reopened.") {
			t.Error("reopen all on the page: no count of 2")
		}
		list := d.do("GET", dashPrefix+"/?status=open", nil).Body.String()
		for _, h := range []string{a.Hash, b.Hash, c.Hash} {
			if !strings.Contains(list, `name="all" value="`+h+`"`) {
				t.Errorf("the open tab does not carry %s for the page actions", h)
			}
		}
		if strings.Contains(list, `value="unresolve"`) || !strings.Contains(list, `value="resolve-page"`) {
			t.Error("the open tab offers Reopen, or lacks Resolve all")
		}
		d.do("POST", dashPrefix+"/bulk", url.Values{"action": {"resolve-page"}, "all": {a.Hash}})
		resolved := d.do("GET", dashPrefix+"/?status=resolved", nil).Body.String()
		if strings.Contains(resolved, `value="resolve"`) || !strings.Contains(resolved, `value="unresolve"`) {
			t.Error("the resolved tab offers Resolve, or lacks Reopen")
		}
	})
}
