package dashboard

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// A short id (ErrorID, the X-Errmon-Id header) is a prefix of an error's
// fingerprint: the dashboard's /{id} address takes one and redirects to
// the error it names.

// minShortID is the shortest prefix the dashboard looks up.
const minShortID = 8

// isShortID reports whether s is a fingerprint prefix the dashboard looks
// up: at least minShortID lower-case hex digits, fewer than a whole hash.
func isShortID(s string) bool {
	if len(s) < minShortID || len(s) >= 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// shortID redirects a short id to the error it names, and reports whether
// it answered (an id that names no error, or two, is a 404).
func (d *Dashboard) shortID(c *gin.Context, api bool) bool {
	id := c.Param("hash")
	if !isShortID(id) {
		return false
	}
	hashes, err := d.store.HashesWithPrefix(c.Request.Context(), id)
	switch {
	case err != nil:
		d.serverError(c, err)
	case len(hashes) != 1:
		d.notFound(c, api)
	default:
		seeOther(c, http.StatusSeeOther, hashes[0])
	}
	return true
}
