package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
	"github.com/gin-gonic/gin"
)

// The dashboard's state changes: resolve, resolve in the next release,
// reopen, mute, unmute, snooze, unsnooze and delete, one by one or in
// bulk, and notes, one error at a time. They answer POST only. Each but
// delete is recorded in the error's history, with Options.Actor's name.

// validAction reports whether act is one of the dashboard's state changes.
func validAction(act string) bool {
	switch act {
	case "resolve", "resolve-next-release", "unresolve", "delete", "mute", "unmute", "snooze", "unsnooze", "note":
		return true
	}
	return false
}

// errBadSnooze is the answer to a snooze that says neither for how long
// nor until how many more occurrences.
var errBadSnooze = errors.New("snooze needs for=1h, 24h or 7d, or more=N (1 to " +
	strconv.Itoa(store.MaxSnoozeCount) + " more occurrences)")

// snoozeFor are the durations a snooze may last (form value "for").
var snoozeFor = map[string]struct {
	d    time.Duration
	what string
}{
	"1h":  {time.Hour, "for 1 hour"},
	"24h": {24 * time.Hour, "for 24 hours"},
	"7d":  {7 * 24 * time.Hour, "for 7 days"},
}

// snoozeOf reads what a snooze form asks for: more=N (until N more
// occurrences) or for=1h|24h|7d.
func snoozeOf(c *gin.Context, now time.Time) (until *time.Time, more int64, what string, err error) {
	if v := strings.TrimSpace(text.Cut(c.PostForm("more"), 32)); v != "" {
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 1 || n > store.MaxSnoozeCount {
			return nil, 0, "", errBadSnooze
		}
		return nil, n, "until " + pluralize(n, "more occurrence", "more occurrences"), nil
	}
	f, ok := snoozeFor[c.PostForm("for")]
	if !ok {
		return nil, 0, "", errBadSnooze
	}
	t := now.Add(f.d)
	return &t, 0, f.what, nil
}

// actor is who performs an action of c, for the history.
func (d *Dashboard) actor(c *gin.Context) string {
	if d.actorOf != nil {
		if name := d.actorOf(c); name != "" {
			return name
		}
	}
	return "dashboard"
}

// apply performs a valid action (not a note) on the errors with these
// hashes and returns how many changed.
func (d *Dashboard) apply(c *gin.Context, act string, hashes []string) (int64, error) {
	ctx, now := c.Request.Context(), time.Now()
	switch act {
	case "resolve", "resolve-next-release":
		return d.store.Resolve(ctx, hashes, act == "resolve-next-release", d.actor(c), now)
	case "unresolve":
		return d.store.Reopen(ctx, hashes, d.actor(c), now)
	case "mute", "unmute":
		return d.store.SetMuted(ctx, hashes, act == "mute", d.actor(c), now)
	case "snooze":
		until, more, what, err := snoozeOf(c, now)
		if err != nil {
			return 0, err
		}
		return d.store.Snooze(ctx, hashes, until, more, what, d.actor(c), now)
	case "unsnooze":
		return d.store.Unsnooze(ctx, hashes, d.actor(c), now)
	}
	return d.store.Delete(ctx, hashes)
}

// maxActionBody bounds the form of an action on one error (a note of
// store.MaxNoteBytes, encoded, fits many times).
const maxActionBody = 64 << 10

// note adds a note to the history of the error with hash.
func (d *Dashboard) note(c *gin.Context, hash string) bool {
	note := strings.TrimSpace(c.PostForm("note"))
	if note == "" {
		abortWith(c, http.StatusBadRequest, "the note is empty")
		return false
	}
	if d.mask != nil {
		note = d.mask(note, store.MaxNoteBytes)
	}
	note = text.Cut(note, store.MaxNoteBytes)
	if _, err := d.store.AddNote(c.Request.Context(), hash, d.actor(c), note, time.Now()); err != nil {
		d.serverError(c, err)
		return false
	}
	return true
}

func (d *Dashboard) action(c *gin.Context) {
	hash, act := c.Param("hash"), c.Param("action")
	if !validHash(hash) || !validAction(act) {
		d.notFound(c, false)
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxActionBody)
	if err := c.Request.ParseForm(); err != nil {
		abortWith(c, http.StatusRequestEntityTooLarge, "the form is too large (at most 64 KiB)")
		return
	}
	ctx := c.Request.Context()
	if _, ok := d.record(c, hash, false); !ok {
		return
	}
	if act == "delete" && !wantsJSON(c) && c.PostForm("confirm") != "yes" {
		// The error's page asks first (a form that posts confirm=yes).
		seeOther(c, http.StatusSeeOther, "../"+hash+"?confirm=delete")
		return
	}
	var changed int64 = 1
	if act == "note" {
		if !d.note(c, hash) {
			return
		}
	} else {
		var err error
		if changed, err = d.apply(c, act, []string{hash}); errors.Is(err, errBadSnooze) {
			abortWith(c, http.StatusBadRequest, err.Error())
			return
		} else if err != nil {
			d.serverError(c, err)
			return
		}
	}
	if wantsJSON(c) {
		if act == "delete" {
			respondJSON(c, http.StatusOK, gin.H{"hash": hash, "deleted": true})
			return
		}
		rec, err := d.store.Get(ctx, hash)
		if err != nil {
			d.serverError(c, err)
			return
		}
		respondJSON(c, http.StatusOK, toAPI(&rec.ErrorRecord))
		return
	}
	switch {
	case act == "delete":
		seeOther(c, http.StatusSeeOther, "../?notice=deleted")
	case act == "note":
		seeOther(c, http.StatusSeeOther, "../"+hash+"?notice=noted#history")
	case changed == 0:
		seeOther(c, http.StatusSeeOther, "../"+hash+"?notice=unchanged")
	default:
		seeOther(c, http.StatusSeeOther, "../"+hash+"?notice="+noticeKey(act))
	}
}

// noticeKey is the notice that says what act did.
func noticeKey(act string) string {
	switch act {
	case "delete":
		return "deleted"
	case "resolve-next-release":
		return "resolved-next"
	}
	return act + "d"
}

func (d *Dashboard) bulk(c *gin.Context) {
	// "resolve" applies to the ticked errors (hash=...), "resolve-page" to
	// every error listed on the page (all=...): a select-all without script.
	act, field := c.PostForm("action"), "hash"
	if a, ok := strings.CutSuffix(act, "-page"); ok {
		act, field = a, "all"
	}
	if !validAction(act) || act == "note" {
		abortWith(c, http.StatusBadRequest, "action must be resolve, resolve-next-release, unresolve, mute, unmute, "+
			"snooze, unsnooze or delete (or one of them with -page)")
		return
	}
	var hashes []string
	for _, h := range c.PostFormArray(field) {
		if validHash(h) && len(hashes) < maxBulk && !slices.Contains(hashes, h) {
			hashes = append(hashes, h)
		}
	}
	back := d.listBack(c)
	if act == "delete" && len(hashes) > 0 && !wantsJSON(c) && c.PostForm("confirm") != "yes" {
		recs, err := d.store.Listed(c.Request.Context(), hashes)
		if err != nil {
			d.serverError(c, err)
			return
		}
		d.confirmDelete(c, recs, back, listHref(back))
		return
	}
	n, err := d.apply(c, act, hashes)
	if errors.Is(err, errBadSnooze) {
		abortWith(c, http.StatusBadRequest, err.Error())
		return
	} else if err != nil {
		d.serverError(c, err)
		return
	}
	if wantsJSON(c) {
		respondJSON(c, http.StatusOK, gin.H{"action": act, "selected": len(hashes), "changed": n})
		return
	}
	switch {
	case len(hashes) == 0:
		back.Set("notice", "none")
	default:
		back.Set("notice", noticeKey(act))
	}
	if len(hashes) > 0 {
		back.Set("n", strconv.FormatInt(n, 10))
	}
	seeOther(c, http.StatusSeeOther, listHref(back))
}

// listBack is the list a bulk form was posted from: its query, and its
// page or cursor.
func (d *Dashboard) listBack(c *gin.Context) url.Values {
	back := listValues(d.parseListQuery(c.PostForm), 0)
	if p, err := strconv.Atoi(c.PostForm("page")); err == nil && p > 1 {
		back.Set("page", strconv.Itoa(p))
	}
	for _, key := range []string{"after", "before"} {
		if cur := text.Cut(c.PostForm(key), 100); cur != "" {
			back.Del("page")
			back.Set(key, cur)
			break
		}
	}
	return back
}

// confirmView is the page that asks before a bulk delete.
type confirmView struct {
	pageCommon
	Errors []store.ErrorRecord
	More   int        // errors to delete beyond those listed
	Hashes []string   // what it deletes
	Back   url.Values // the list state of the bulk form, posted again
	Cancel string     // the list it came from
}

// maxConfirmListed caps the errors the confirmation lists by name.
const maxConfirmListed = 20

// confirmDelete answers a bulk delete that was not confirmed with a page
// that says what would go and asks again (no script: a form that posts
// confirm=yes).
func (d *Dashboard) confirmDelete(c *gin.Context, recs []store.ErrorRecord, back url.Values, cancel string) {
	v := confirmView{pageCommon: d.frame("Delete?"), Back: back, Cancel: cancel}
	for _, r := range recs {
		v.Hashes = append(v.Hashes, r.Hash)
	}
	v.Errors = recs
	if len(recs) > maxConfirmListed {
		v.Errors, v.More = recs[:maxConfirmListed], len(recs)-maxConfirmListed
	}
	for i := range v.Errors {
		v.Errors[i].Message = text.Cut(v.Errors[i].Message, 300)
	}
	d.html(c, http.StatusOK, "confirm", v)
}
