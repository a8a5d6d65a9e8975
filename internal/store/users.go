package store

import (
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// Users affected: each error counts its distinct users (see
// errmon.SetUser) in app_errors.users, exactly up to UsersExact, then
// estimated, in bounded space.
//
// A user is a 63-bit key (a hash of its id, made by the capture). An
// error keeps in table "app_error_users" the keys of its users that are
// below its threshold, KeySpace / users_scale, users_scale being a power
// of two (1 at first: every key). When it keeps more than UsersExact keys,
// its scale doubles and the keys past the new threshold are deleted, until
// it keeps at most UsersExact. Since the keys are uniform hashes, an error
// that keeps n keys at scale s has about n*s users (adaptive sampling: the
// relative error is about 1/sqrt(UsersExact), 3%); at scale 1 the count is
// exact. users = n * s, stored with the scale, so that the list sorts on
// it and a reader knows whether it is exact.

// ErrorUser is one sampled user of an error (table "app_error_users").
type ErrorUser struct {
	Hash string `gorm:"size:64;not null;primaryKey" json:"hash"`
	// Key is the user's 63-bit key (never its id), below the error's
	// threshold.
	Key int64 `gorm:"column:user_key;not null;primaryKey;autoIncrement:false" json:"-"`
}

// TableName implements GORM's Tabler.
func (ErrorUser) TableName() string { return "app_error_users" }

// UsersExact is how many distinct users an error counts exactly; past it,
// the count is an estimate from a sample of at most this many keys.
const UsersExact = 1000

// KeySpace bounds the users' keys: a key is in [0, KeySpace).
const KeySpace = uint64(1) << 63

// UserLimit is the threshold of a users_scale: the keys below it are kept
// (KeySpace for a scale of 1 or less: every key).
func UserLimit(scale int64) uint64 {
	if scale < 1 {
		scale = 1
	}
	return KeySpace / uint64(scale)
}

// KeepsUser reports whether a sample of users at scale keeps key.
func KeepsUser(key, scale int64) bool { return key >= 0 && uint64(key) < UserLimit(scale) }

// maxUsersPerStatement bounds the rows of one insert of app_error_users (2
// bind parameters each), within SQLite's 32766 parameters.
const maxUsersPerStatement = 10000

// userCount is one error's stored users after a write.
type userCount struct {
	n, scale int64
}

// writeUsers adds the users of a chunk's errors to app_error_users and sets
// their users and users_scale: at most three statements for the chunk (the
// insert, the count of the keys, the update; the insert alone when it
// added no user), plus, for an error whose
// sample outgrows UsersExact (rarely: once per doubling of its users), a
// read of its keys and a delete. The chunk's upsert holds its rows' locks,
// so that two writers of one error take turns. scales are the rows'
// users_scale, as the upsert returned them.
func writeUsers(tx *gorm.DB, ws []Write, scales map[string]int64) (map[string]userCount, error) {
	var (
		hashes []string
		keys   []any
		scale  = make(map[string]int64)
		thin   bool // an error's users come thinner than its stored sample
	)
	for i := range ws {
		w := &ws[i]
		if len(w.UserKeys) == 0 {
			continue
		}
		s := max(scales[w.Hash], w.UsersScale, 1)
		scale[w.Hash] = s
		thin = thin || s > scales[w.Hash]
		hashes = append(hashes, w.Hash)
		for _, k := range w.UserKeys {
			if KeepsUser(k, s) {
				keys = append(keys, w.Hash, k)
			}
		}
	}
	if len(hashes) == 0 {
		return nil, nil
	}
	ignore, tail := "INSERT INTO", " ON CONFLICT DO NOTHING"
	if isMySQL(tx) {
		ignore, tail = "INSERT IGNORE INTO", ""
	}
	var inserted int64
	for part := range slices.Chunk(keys, 2*maxUsersPerStatement) {
		var q strings.Builder
		q.Grow(48 + 8*len(part) + len(tail))
		q.WriteString(ignore + " app_error_users (hash, user_key) VALUES ")
		for i := 0; i < len(part); i += 2 {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?)")
		}
		q.WriteString(tail)
		r := tx.Exec(q.String(), part...)
		if r.Error != nil {
			return nil, fmt.Errorf("insert app_error_users: %w", r.Error)
		}
		inserted += r.RowsAffected
	}
	if inserted == 0 && !thin {
		// Every user was known (the common case of a hot error): the
		// counts stand, and the chunk costs one statement.
		return nil, nil
	}
	var counted []struct {
		Hash string
		N    int64
	}
	if err := tx.Raw("SELECT hash, COUNT(*) AS n FROM app_error_users WHERE hash IN ? GROUP BY hash", hashes).
		Scan(&counted).Error; err != nil {
		return nil, fmt.Errorf("count app_error_users: %w", err)
	}
	out := make(map[string]userCount, len(counted))
	for _, c := range counted {
		s := scale[c.Hash]
		n := c.N
		if n > UsersExact || s > scales[c.Hash] {
			var err error
			if n, s, err = thinUsers(tx, c.Hash, s); err != nil {
				return nil, err
			}
		}
		out[c.Hash] = userCount{n: n, scale: s}
	}
	if len(out) == 0 {
		return out, nil
	}
	var (
		q     strings.Builder
		args  = make([]any, 0, 4*len(out)+len(out))
		named = make([]string, 0, len(out))
	)
	q.WriteString("UPDATE app_errors SET users = CASE hash")
	for _, h := range hashes {
		if c, ok := out[h]; ok {
			q.WriteString(" WHEN ? THEN ?")
			args = append(args, h, c.n*c.scale)
			named = append(named, h)
		}
	}
	q.WriteString(" ELSE users END, users_scale = CASE hash")
	for _, h := range named {
		q.WriteString(" WHEN ? THEN ?")
		args = append(args, h, out[h].scale)
	}
	q.WriteString(" ELSE users_scale END WHERE hash IN ?")
	args = append(args, named)
	if err := tx.Exec(q.String(), args...).Error; err != nil {
		return nil, fmt.Errorf("count the users of app_errors: %w", err)
	}
	return out, nil
}

// thinUsers brings the sample of hash's users to at most UsersExact keys
// below the threshold of a scale of at least scale (doubling it as needed),
// deletes the keys past it, and returns how many it keeps and the scale.
func thinUsers(tx *gorm.DB, hash string, scale int64) (int64, int64, error) {
	var keys []int64
	if err := tx.Raw("SELECT user_key FROM app_error_users WHERE hash = ?", hash).Scan(&keys).Error; err != nil {
		return 0, 0, fmt.Errorf("read app_error_users: %w", err)
	}
	slices.Sort(keys)
	kept := func(s int64) int64 {
		n, _ := slices.BinarySearchFunc(keys, s, func(k, s int64) int {
			if KeepsUser(k, s) {
				return -1
			}
			return 1
		})
		return int64(n)
	}
	for kept(scale) > UsersExact && scale < 1<<62 {
		scale *= 2
	}
	n := kept(scale)
	if n < int64(len(keys)) {
		// scale > 1 here: its threshold fits a BIGINT.
		if err := tx.Exec("DELETE FROM app_error_users WHERE hash = ? AND user_key >= ?", hash, int64(UserLimit(scale))).Error; err != nil {
			return 0, 0, fmt.Errorf("thin app_error_users: %w", err)
		}
	}
	return n, scale, nil
}
