package errmon

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
)

// userKeyName holds, in a request's gin.Context, the user SetUser named.
const userKeyName = "github.com/errmon/errmon.user"

// maxUserBytes caps a stored user id.
const maxUserBytes = 255

// SetUser names the user of the request c, so that an error it records
// counts that user among the users it affected (ErrorRecord.Users), and
// its sample shows the id (masked like any captured value when it looks
// like a secret, and cut to 255 bytes). Call it once the request is
// authenticated, in a middleware or the handler; it costs one c.Set and
// takes precedence over Config.User. An empty id names no user.
//
// Users are counted by a 63-bit hash of the id (the id as given, so that
// two ids that mask alike still count as two), exactly up to 1,000 per
// error and estimated beyond (within a few percent), in bounded space.
func SetUser(c *gin.Context, id string) {
	if c != nil {
		c.Set(userKeyName, id)
	}
}

// captureUser sets o's user from the request: SetUser's, else
// Config.User's. A Config.User that panics names no user.
func (m *Monitor) captureUser(c *gin.Context, o *Occurrence) {
	id := c.GetString(userKeyName)
	if id == "" && m.cfg.User != nil {
		id = m.userOf(c)
	}
	if id == "" {
		return
	}
	o.userKey = userKey(id)
	o.User = m.hideRequestSecrets(c, m.maskCap(strings.TrimSpace(id), maxUserBytes))
	if o.User == "" {
		o.User = "?" // a user of blank id still counts
	}
}

// userOf runs Config.User; a panic in it is logged, and names no user.
func (m *Monitor) userOf(c *gin.Context) (id string) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("errmon: Config.User panicked; the error is recorded without its user",
				"panic", m.maskCap(messageOf(r), 1024))
			id = ""
		}
	}()
	return m.cfg.User(c)
}

// userKey is id's key among an error's users: 63 bits of its SHA-256,
// uniform, as the count's sampling needs (internal/store/users.go).
func userKey(id string) int64 {
	sum := sha256.Sum256([]byte(id))
	return int64(binary.BigEndian.Uint64(sum[:8]) >> 1)
}

// maxPendingUsers bounds the users an error holds in memory between two
// writes: past it, the error keeps a sample of them as the store does.
const maxPendingUsers = store.UsersExact

// addUser counts o's user among p's (a sample of them, see store's
// users.go: when more than maxPendingUsers are held, the scale doubles and
// the keys past its threshold go).
func (p *pending) addUser(key int64) {
	if p.usersScale == 0 {
		p.usersScale = 1
	}
	if !store.KeepsUser(key, p.usersScale) {
		return
	}
	if p.users == nil {
		p.users = make(map[int64]struct{}, 1)
	}
	p.users[key] = struct{}{}
	for len(p.users) > maxPendingUsers {
		p.usersScale *= 2
		p.thinUsers()
	}
}

// thinUsers drops the keys its scale does not keep.
func (p *pending) thinUsers() {
	for k := range p.users {
		if !store.KeepsUser(k, p.usersScale) {
			delete(p.users, k)
		}
	}
}

// mergeUsers adds q's users to p's.
func (p *pending) mergeUsers(q *pending) {
	if q.usersScale > p.usersScale {
		// Thin p's first, to q's scale.
		p.usersScale = q.usersScale
		p.thinUsers()
	}
	for k := range q.users {
		p.addUser(k)
	}
}

// userKeys are p's users' keys, for the store.
func (p *pending) userKeys() []int64 {
	if len(p.users) == 0 {
		return nil
	}
	out := make([]int64, 0, len(p.users))
	for k := range p.users {
		out = append(out, k)
	}
	return out
}
