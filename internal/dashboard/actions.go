package dashboard

import (
	"context"
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
	"gorm.io/gorm"
)

// The dashboard's state changes: resolve, reopen and delete, one by one
// or in bulk. They answer POST only.

// validAction reports whether act is one of the dashboard's state changes.
func validAction(act string) bool {
	return act == "resolve" || act == "unresolve" || act == "delete"
}

// apply performs a valid action on the errors with these hashes and
// returns how many changed.
func (d *Dashboard) apply(ctx context.Context, act string, hashes []string) (int64, error) {
	switch act {
	case "resolve":
		return d.store.SetResolved(ctx, hashes, true, time.Now())
	case "unresolve":
		return d.store.SetResolved(ctx, hashes, false, time.Now())
	}
	return d.store.Delete(ctx, hashes)
}

func (d *Dashboard) action(c *gin.Context) {
	hash, act := c.Param("hash"), c.Param("action")
	if !validHash(hash) || !validAction(act) {
		d.notFound(c, false)
		return
	}
	ctx := c.Request.Context()
	if _, err := d.store.Get(ctx, hash); errors.Is(err, gorm.ErrRecordNotFound) {
		d.notFound(c, false)
		return
	} else if err != nil {
		d.serverError(c, err)
		return
	}
	if act == "delete" && !wantsJSON(c) && c.PostForm("confirm") != "yes" {
		// The error's page asks first (a form that posts confirm=yes).
		seeOther(c, http.StatusSeeOther, "../"+hash+"?confirm=delete")
		return
	}
	if _, err := d.apply(ctx, act, []string{hash}); err != nil {
		d.serverError(c, err)
		return
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
	switch act {
	case "delete":
		seeOther(c, http.StatusSeeOther, "../?notice=deleted")
	case "resolve":
		seeOther(c, http.StatusSeeOther, "../"+hash+"?notice=resolved")
	default:
		seeOther(c, http.StatusSeeOther, "../"+hash+"?notice=unresolved")
	}
}

func (d *Dashboard) bulk(c *gin.Context) {
	// "resolve" applies to the ticked errors (hash=...), "resolve-page" to
	// every error listed on the page (all=...): a select-all without script.
	act, field := c.PostForm("action"), "hash"
	if a, ok := strings.CutSuffix(act, "-page"); ok {
		act, field = a, "all"
	}
	if !validAction(act) {
		abortWith(c, http.StatusBadRequest, "action must be resolve, unresolve or delete (or one of them with -page)")
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
	n, err := d.apply(c.Request.Context(), act, hashes)
	if err != nil {
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
	case act == "delete":
		back.Set("notice", "deleted")
	default:
		back.Set("notice", act+"d")
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
