package errmon

import (
	"context"
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

// nextHexPrefix returns the smallest hex string of p's length greater than
// every string that starts with p, or "" when there is none (p is all f).
func nextHexPrefix(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		switch b[i] {
		case 'f':
			b[i] = '0'
			continue
		case '9':
			b[i] = 'a'
		default:
			b[i]++
		}
		return string(b)
	}
	return ""
}

// hashesWithPrefix returns up to two fingerprints that start with prefix,
// in one range of the hash index.
func (s *store) hashesWithPrefix(ctx context.Context, prefix string) ([]string, error) {
	q := s.db.WithContext(ctx).Model(&ErrorRecord{}).Where("hash >= ?", prefix)
	if next := nextHexPrefix(prefix); next != "" {
		q = q.Where("hash < ?", next)
	}
	var hashes []string
	err := q.Order("hash").Limit(2).Pluck("hash", &hashes).Error
	return hashes, err
}

// shortID redirects a short id to the error it names, and reports whether
// it answered (an id that names no error, or two, is a 404).
func (d *dashboard) shortID(c *gin.Context, api bool) bool {
	id := c.Param("hash")
	if !isShortID(id) {
		return false
	}
	hashes, err := d.m.store.hashesWithPrefix(c.Request.Context(), id)
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
