package errmon

import (
	"strings"
	"testing"
)

// TestScrubSQL: literals become ?, comments go, identifiers and
// placeholders stay.
func TestScrubSQL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		mysql    bool
	}{
		{in: `SELECT * FROM "users" WHERE "users"."id" = $1 AND name = 'bob' LIMIT 10`, want: `SELECT * FROM "users" WHERE "users"."id" = $1 AND name = ? LIMIT ?`},
		{in: "SELECT * FROM `users` WHERE email = \"a@b.c\" AND pw = 'it\\'s' AND t1.x IN (1, 2.5, -3e-4, 0xFF)", mysql: true,
			want: "SELECT * FROM `users` WHERE email = ? AND pw = ? AND t1.x IN (?, ?, -?, ?)"},
		{in: `UPDATE t SET a = E'x\'y', b = N'z', c = X'0F' WHERE d = 'o''k' -- by 'admin'` + "\nAND e = ?", want: "UPDATE t SET a = ?, b = ?, c = ? WHERE d = ?  \nAND e = ?"},
		{in: `SELECT /* secret 42 */ $$body 'x'$$, $tag$x$tag$, col2, :name, @p1 FROM t2`, want: `SELECT   ?, ?, col2, :name, @p1 FROM t2`},
		{in: `SELECT 'unterminated secret`, want: `SELECT ?`},
		{in: `INSERT INTO "orders" ("total","note") VALUES (?,?),(?,?) RETURNING "id"`, want: `INSERT INTO "orders" ("total","note") VALUES (?,?),(?,?) RETURNING "id"`},
		{in: `SELECT "a\" = 'hunter2'`, want: `SELECT "a\" = ?`},
	} {
		if got := scrubSQL(tc.in, tc.mysql); got != tc.want {
			t.Errorf("scrubSQL(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	if got := scrubQuoted("Error 1062 (23000): Duplicate entry 'bob@example.com' for key 'users.email'"); got != "Error 1062 (23000): Duplicate entry ? for key ?" {
		t.Errorf("scrubQuoted: %q", got)
	}
	long := "SELECT * FROM t WHERE a IN (" + strings.Repeat("'secret-value', ", 1000) + "'x')"
	got := cutSQL(long, false)
	if len(got) > crumbSQLBytes || strings.Contains(got, "secret") || !strings.Contains(got, "bytes cut]") {
		t.Errorf("cutSQL of a long statement: %d bytes, %q…", len(got), got[:min(len(got), 200)])
	}
}
