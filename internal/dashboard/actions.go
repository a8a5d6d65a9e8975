package dashboard

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

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
	act := c.PostForm("action")
	if !validAction(act) {
		abortWith(c, http.StatusBadRequest, "action must be resolve, unresolve or delete")
		return
	}
	var hashes []string
	for _, h := range c.PostFormArray("hash") {
		if validHash(h) && len(hashes) < maxBulk {
			hashes = append(hashes, h)
		}
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
	back := listValues(d.parseListQuery(c.PostForm), 0)
	if p, err := strconv.Atoi(c.PostForm("page")); err == nil && p > 1 {
		back.Set("page", strconv.Itoa(p))
	}
	// Back to the page the form was on: its cursor, when it had one.
	for _, key := range []string{"after", "before"} {
		if cur := text.Cut(c.PostForm(key), 100); cur != "" {
			back.Del("page")
			back.Set(key, cur)
			break
		}
	}
	switch {
	case len(hashes) == 0:
		back.Set("notice", "none")
	case act == "delete":
		back.Set("notice", "deleted")
	default:
		back.Set("notice", act+"d")
	}
	seeOther(c, http.StatusSeeOther, listHref(back))
}
