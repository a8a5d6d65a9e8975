package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/errmon/errmon/internal/text"
	"gorm.io/gorm"
)

// The dashboard's reads and writes. Every value that comes from a request
// reaches SQL as a bound parameter; search terms are LIKE patterns with
// their wildcards escaped.

// Sort orders of the error list.
const (
	SortLastSeen  = "last_seen"  // newest LastSeen first (the default)
	SortCount     = "count"      // most frequent first
	SortFirstSeen = "first_seen" // newest CreatedOn first
	SortUsers     = "users"      // most users affected first
)

// Status filters of the error list.
const (
	StatusAll      = ""
	StatusOpen     = "open"
	StatusResolved = "resolved"
	// StatusMuted lists the muted errors (resolved or not); StatusOpen
	// leaves them out.
	StatusMuted = "muted"
)

// MaxSearchLen caps a search term (bytes); longer input is cut.
const MaxSearchLen = 200

// ListQuery is what the list page and GET api/errors ask for.
type ListQuery struct {
	Q      string // searched in exception name, message and path
	Status string // StatusAll, StatusOpen, StatusResolved or StatusMuted
	Sort   string // SortLastSeen, SortCount, SortFirstSeen or SortUsers
	Page   int    // 1-based; clamped to the pages counted (see countCap)
	Size   int    // page size (Config.ListSize)
	// After and Before are keyset cursors (see cursor): the page of the
	// errors that follow (precede) the one named, in the list's order.
	// Either one, when it parses, takes the place of Page.
	After, Before string
	// Environment keeps the errors whose latest occurrence came from this
	// Config.Environment ("" keeps all).
	Environment string
}

// ListResult is one page of errors.
type ListResult struct {
	Errors []ErrorRecord // without Traceback and RequestData
	// Total is the number of matching errors, counted up to countCapFor
	// (searchCountCapFor for a search): when there are more, it is the
	// cap, and Capped and TotalIsLowerBound are set.
	// A search bounded to the newest errors (Window > 0) counts the
	// matches among them, and sets TotalIsLowerBound too.
	Total             int64
	TotalIsLowerBound bool
	Capped            bool // the count stopped at its cap
	Page              int  // the page served, after clamping; 0 for a page reached by a cursor
	Pages             int  // the pages counted, at least 1
	Clamped           bool
	// Next and Prev are the cursors of the following and preceding
	// pages, "" where there is none.
	Next, Prev string
	// Window, when not 0, is how many of the newest errors (by last
	// seen) the search looked at: the older ones were not searched.
	Window int
}

// CountCap is how far the list counts matching errors: a count costs at
// most this many index entries, whatever the table holds.
const CountCap = 1000

// SearchWindow is how many of the newest errors a search looks at where no
// index serves it (SQLite, MySQL, PostgreSQL without pg_trgm, or a term
// without three letters or digits in a row, see hasTrigram). A variable
// for tests only.
var SearchWindow = 10_000

// searchCountCapFor is how far a search counts its matches: ten pages, at
// least 100.
func searchCountCapFor(size int) int { return max(100, 10*size) }

// countCapFor is countCap, or ten pages when the page size makes that more.
func countCapFor(size int) int { return max(CountCap, 10*size) }

// SortColumn is the column a list order sorts on (then on id), newest or
// largest first.
func SortColumn(sort string) string {
	switch sort {
	case SortCount:
		return "count"
	case SortFirstSeen:
		return "created_on"
	case SortUsers:
		return "users"
	}
	return "last_seen"
}

// Cursor is a position in a list order: the sort key and id of one row.
// It reads "id_key", the key being a count or an RFC 3339 time (UTC, to
// the nanosecond).
type Cursor struct {
	id   uint64
	key  int64     // sort=count, sort=users
	time time.Time // the time orders
}

// CursorOf is the position of rec in the list order of sort.
func CursorOf(rec *ErrorRecord, sort string) string {
	id := strconv.FormatUint(uint64(rec.ID), 10)
	switch SortColumn(sort) {
	case "count":
		return id + "_" + strconv.FormatInt(rec.Count, 10)
	case "users":
		return id + "_" + strconv.FormatInt(rec.Users, 10)
	case "created_on":
		return id + "_" + rec.CreatedOn.UTC().Format(time.RFC3339Nano)
	}
	return id + "_" + rec.LastSeen.UTC().Format(time.RFC3339Nano)
}

// parseCursor reads a cursor of the list order of sort.
func parseCursor(s, sort string) (Cursor, bool) {
	ids, key, ok := strings.Cut(s, "_")
	if !ok || len(s) > 100 {
		return Cursor{}, false
	}
	var c Cursor
	var err error
	if c.id, err = strconv.ParseUint(ids, 10, 63); err != nil {
		return Cursor{}, false
	}
	if col := SortColumn(sort); col == "count" || col == "users" {
		c.key, err = strconv.ParseInt(key, 10, 64)
	} else {
		c.time, err = time.Parse(time.RFC3339Nano, key)
		c.time = c.time.UTC()
	}
	return c, err == nil
}

// keyArg is the cursor's sort key as a bound parameter.
func (c Cursor) keyArg() any {
	if c.time.IsZero() {
		return c.key
	}
	return c.time
}

// keyset restricts db to the rows after (or, with before, the rows
// before) c in the order col DESC, id DESC.
func (s *Store) keyset(db *gorm.DB, col string, c Cursor, before bool) *gorm.DB {
	op := "<"
	if before {
		op = ">"
	}
	return s.rowCompare(db, col, op, c.keyArg(), c.id)
}

// rowCompare restricts db to the rows whose (col, id) compares with op
// ("<" or ">") to (key, id). SQLite and PostgreSQL compare row values,
// which their planners turn into one index range; MySQL's optimizer
// ranges on the first column only, so it gets that bound too.
func (s *Store) rowCompare(db *gorm.DB, col, op string, key any, id uint64) *gorm.DB {
	if isMySQL(s.db) {
		return db.Where(fmt.Sprintf("%s %s= ? AND (%s %s ? OR id %s ?)", col, op, col, op, op), key, key, id)
	}
	return db.Where(fmt.Sprintf("(%s, id) %s (?, ?)", col, op), key, id)
}

// boundedCount counts the rows of db up to limit: "SELECT count(*) FROM
// (SELECT 1 ... LIMIT limit) t", which reads at most limit index entries.
func (s *Store) boundedCount(ctx context.Context, db *gorm.DB, limit int) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw("SELECT count(*) FROM (?) AS counted", db.Select("1").Limit(limit)).Scan(&n).Error
	return n, err
}

// listedColumns are the columns the list needs (and a search tests): not
// the large traceback and request context.
var listedColumns = []string{
	"id", "hash", "host", "path", "method", "route", "exception_name", "message",
	"count", "created_on", "last_seen", "resolved", "resolved_at", "regressions", "first_release", "last_release", "environment", "culprit",
	"muted", "snoozed_until", "snooze_until_count", "resolved_in_release", "users", "users_scale",
}

// listColumns is the SELECT list of listedColumns, the message and path
// cut in SQL to their caps (plus one character, see cappedColumns)
// whatever a row holds.
var listColumns = func() string {
	cols := slices.Clone(listedColumns)
	for i, c := range cols {
		switch c {
		case "path":
			cols[i] = fmt.Sprintf("substr(path, 1, %d) AS path", MaxPathBytes+1)
		case "message":
			cols[i] = fmt.Sprintf("substr(message, 1, %d) AS message", MaxMessageBytes+1)
		}
	}
	return strings.Join(cols, ", ")
}()

// capListed cuts the texts of listed errors to their caps.
func capListed(recs []ErrorRecord) {
	for i := range recs {
		capColumn(&recs[i].Path, MaxPathBytes)
		capColumn(&recs[i].Message, MaxMessageBytes)
		capColumn(&recs[i].Culprit, MaxCulpritBytes)
	}
}

// EscapeLike escapes the LIKE wildcards of s with '!' (see likeEscape).
func EscapeLike(s string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(s)
}

// searchOf is q's search, parsed (see ParseSearch).
func searchOf(q ListQuery) Search { return ParseSearch(strings.TrimSpace(q.Q)) }

// likeAny is the condition that one of cols contains pat (a LIKE pattern
// with '!' escapes), once for each col.
func likeAny(pg bool, cols ...string) string {
	conds := make([]string, len(cols))
	for i, c := range cols {
		if pg {
			// lower() LIKE lower() is ILIKE's meaning, at half its cost,
			// and that of the trigram index (searchedText).
			conds[i] = "lower(" + c + ") LIKE lower(@pat) ESCAPE '!'"
		} else {
			// SQLite's LIKE ignores ASCII case, MySQL's follows the
			// collation (utf8mb4's default ignores case).
			conds[i] = c + " LIKE @pat ESCAPE '!'"
		}
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// containsAny is likeAny for a term that the trigram index cannot narrow,
// on PostgreSQL: strpos is not an indexable operator, so the planner
// filters the rows it reads with it instead of reading the trigram index
// whole (see hasTrigram). Its meaning is the LIKE's.
func containsAny(cols ...string) string {
	conds := make([]string, len(cols))
	for i, c := range cols {
		conds[i] = "strpos(lower(" + c + "), lower(@term)) > 0"
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// contains restricts db to the rows where one of cols contains term.
func (s *Store) contains(db *gorm.DB, term string, cols ...string) *gorm.DB {
	pg := s.db.Dialector.Name() == "postgres"
	args := map[string]any{"term": term, "pat": "%" + EscapeLike(term) + "%"}
	if pg && slices.Equal(cols, trigramColumns) {
		// One test of searchedText, which the trigram index serves; a
		// term with a space may span two columns there, and is tested on
		// each column too.
		cond := "strpos(" + searchedText + ", lower(@term)) > 0"
		each := containsAny(cols...)
		if hasTrigram(term) {
			cond = searchedText + " LIKE lower(@pat) ESCAPE '!'"
			each = likeAny(pg, cols...)
		}
		if strings.Contains(term, " ") {
			cond += " AND " + each
		}
		return db.Where(cond, args)
	}
	if pg && !hasTrigram(term) {
		return db.Where(containsAny(cols...), args)
	}
	return db.Where(likeAny(pg, cols...), args)
}

// matching applies a search (each term, each filter) to db, whose columns
// may be app_errors' or a window's of them. Its status is applied by
// WithStatus (see List).
func (s *Store) matching(db *gorm.DB, srch Search) *gorm.DB {
	for _, term := range srch.Terms {
		db = s.contains(db, term, trigramColumns...)
	}
	if srch.Route != "" {
		if s.db.Dialector.Name() == "postgres" {
			// ILIKE on the column itself: the planner estimates it from
			// the column's statistics (few routes, each common), where
			// lower(route) has none and looks rare.
			db = db.Where("route ILIKE ? ESCAPE '!'", "%"+EscapeLike(srch.Route)+"%")
		} else {
			db = s.contains(db, srch.Route, "route")
		}
	}
	if srch.Method != "" {
		db = db.Where("method = ?", srch.Method)
	}
	if srch.Env != "" {
		db = db.Where("environment = ?", srch.Env)
	}
	if srch.Release != "" {
		db = db.Where("(first_release = ? OR last_release = ?)", srch.Release, srch.Release)
	}
	if srch.Hash != "" {
		db = db.Where("hash >= ?", srch.Hash)
		if next := nextHexPrefix(srch.Hash); next != "" {
			db = db.Where("hash < ?", next)
		}
	}
	return db
}

// WithStatus applies the filters of q: its status and environment.
func WithStatus(db *gorm.DB, q ListQuery) *gorm.DB {
	if q.Environment != "" {
		db = db.Where("environment = ?", q.Environment)
	}
	switch q.Status {
	case StatusOpen:
		return db.Where("resolved = ? AND muted = ?", false, false)
	case StatusResolved:
		return db.Where("resolved = ?", true)
	case StatusMuted:
		return db.Where("muted = ?", true)
	}
	return db
}

// hashCandidates is how many errors a hash: prefix may name for the
// search to read them by the hash index (one range, then these rows):
// a shorter prefix that names more searches the window with it.
const hashCandidates = 256

// indexed reports whether an index narrows srch to its matches over the
// whole table, without the window: PostgreSQL's trigram index, for a
// term with a trigram.
func (s *Store) indexed(srch Search) bool {
	if !s.search.trigram {
		return false
	}
	for _, t := range srch.Terms {
		if hasTrigram(t) {
			return true
		}
	}
	return false
}

// SearchWalk is how many of the newest errors, in the list's order, a
// search that PostgreSQL's trigram index serves may read first (see
// walkedSearch), for each match it counts: 2,000 for pages of 20, so that
// a term in one error in ten is found there. A variable for tests only.
var SearchWalk = 10

// walkedSearch is the search that PostgreSQL's trigram index serves. It
// first walks the newest errors in the list's order (one range of the
// order's index, whatever the term): a tenth of SearchWalk*limit of them,
// then, if the term is common there (a twentieth of a count cap or more),
// all of them. A common term finds its first limit+1 matches in the walk,
// and a numbered page with its capped count is served from them in one
// statement (served). Otherwise, unless the walk read every error, the
// trigram index gives the ids of the matches, at most limit+1
// (probeMatches): fewer, and they are the search's; more, and the term is
// common enough for the order's index, walked further, to find them soon.
// It returns where the page is read from and the matches counted, up to
// limit+1.
//
// The walk comes first because the cost of a trigram index scan grows
// with the posting lists of the term's trigrams (every error that holds
// one), whatever the page, and the planner cannot tell a common term from
// a rare one (see probeMatches); it starts short because a rare term pays
// for it as well.
func (s *Store) walkedSearch(ctx context.Context, q ListQuery, srch Search, col string, limit int, res *ListResult) (rows func() *gorm.DB, total int64, served bool, err error) {
	desc := col + " DESC, id DESC"
	newest := func() *gorm.DB { return WithStatus(s.listTable(ctx, q.Status, col), q).Order(desc) }
	table := func() *gorm.DB { return s.matching(WithStatus(s.listTable(ctx, q.Status, col), q), srch) }
	cursor := q.After != "" || q.Before != ""
	// walk reads the n newest errors, and counts their matches up to
	// limit+1 (with a numbered page of them, in res).
	walk := func(n int) (func() *gorm.DB, int64, bool, error) {
		walked := func() *gorm.DB {
			// The LIMIT in a subquery: the planner cannot trade the
			// walk for a trigram index scan, whose cost it cannot
			// estimate. Its rows are the list's columns only: the wide
			// ones cost their copy.
			rows := newest().Select(strings.Join(listedColumns, ", ")).Limit(n)
			return s.matching(s.db.WithContext(ctx).Table("(?) AS app_errors", rows), srch)
		}
		*res = ListResult{}
		total, served := int64(-1), false
		if !cursor {
			var err error
			if served, total, err = s.searchPage(ctx, q, walked, col, limit, res); err != nil {
				return nil, 0, false, err
			}
		}
		if total < 0 {
			var err error
			if total, err = s.boundedCount(ctx, walked(), limit+1); err != nil {
				return nil, 0, false, fmt.Errorf("errmon: count errors: %w", err)
			}
		}
		return walked, total, served, nil
	}
	full := SearchWalk * limit
	n := max(full/10, 1)
	rows, total, served, err = walk(n)
	if err == nil && total*20 > int64(limit) && total <= int64(limit) && n < full {
		n = full // common among the newest: the whole walk may find limit+1
		rows, total, served, err = walk(n)
	}
	if err != nil {
		return nil, 0, false, err
	}
	if total > int64(limit) {
		// The first limit+1 matches are the walk's: so are the counted
		// pages. A cursor's page may lie beyond them.
		if cursor {
			return table, total, false, nil
		}
		return rows, total, served, nil
	}
	var edge []uint // the first error the walk did not read
	if err := newest().Offset(n).Limit(1).Pluck("id", &edge).Error; err != nil {
		return nil, 0, false, fmt.Errorf("errmon: bound the search: %w", err)
	}
	if len(edge) == 0 { // the walk read every error: its matches are all
		return rows, total, served, nil
	}
	*res = ListResult{} // the walk's page may miss older matches
	ids, ok, err := s.probeMatches(ctx, q, srch, limit)
	if err != nil {
		return nil, 0, false, err
	}
	if !ok {
		return table, int64(limit) + 1, false, nil
	}
	return func() *gorm.DB { return s.db.WithContext(ctx).Model(&ErrorRecord{}).Where("id IN ?", ids) }, int64(len(ids)), false, nil
}

// probeMatches is the second pass of a search that PostgreSQL's trigram
// index serves (see walkedSearch): the ids of its matches, read through
// that index only (no walk of an order's index, no sequential scan)
// and at most limit+1 of them. The planner's estimate of a LIKE is poor:
// it may take a term that matches nothing for a common one, and walk the
// whole table newest first looking for a page of matches. When the
// matches are limit or fewer, they are the search's (ok).
func (s *Store) probeMatches(ctx context.Context, q ListQuery, srch Search, limit int) (ids []uint, ok bool, err error) {
	// The settings hold until the rollback to the savepoint (List runs
	// a PostgreSQL search in a transaction), which restores them.
	db := s.db.WithContext(ctx)
	if err := db.SavePoint("errmon_probe").Error; err != nil {
		return nil, false, fmt.Errorf("errmon: plan the search: %w", err)
	}
	// work_mem: the bitmap of a common term stays exact (one bit per
	// row, not per page) up to a few million errors; a lossy bitmap
	// rechecks every row of its pages.
	err = db.Exec("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; " +
		"SET LOCAL work_mem = '32MB'").Error
	if err == nil {
		err = s.matching(WithStatus(db.Model(&ErrorRecord{}), q), srch).Limit(limit+1).Pluck("id", &ids).Error
	}
	if e := db.RollbackTo("errmon_probe").Error; e != nil && err == nil {
		err = e
	}
	if err != nil {
		return nil, false, fmt.Errorf("errmon: search errors: %w", err)
	}
	return ids, len(ids) <= limit, nil
}

// listSource is where the list of q reads from, with its filters: the
// table; for a hash: prefix that names few errors, those errors (found
// in one range of the hash index); for a search that no index serves,
// the searchWindow newest errors of the status asked for (by last seen:
// one range of an index, whose lower end one more range finds); nil for
// a search that PostgreSQL's trigram index serves (see walkedSearch). It
// reports the window's size, or 0 when every error is searched.
func (s *Store) listSource(ctx context.Context, q ListQuery, srch Search) (func() *gorm.DB, int, error) {
	col := SortColumn(q.Sort)
	table := func() *gorm.DB { return s.matching(WithStatus(s.listTable(ctx, q.Status, col), q), srch) }
	if srch.Empty() {
		return table, 0, nil
	}
	if srch.Hash != "" {
		hashes, err := s.hashesWithPrefix(ctx, srch.Hash, hashCandidates+1)
		if err != nil {
			return nil, 0, fmt.Errorf("errmon: search by fingerprint: %w", err)
		}
		if len(hashes) <= hashCandidates {
			return func() *gorm.DB {
				db := s.db.WithContext(ctx).Model(&ErrorRecord{})
				if isMySQL(s.db) {
					db = db.Table("app_errors FORCE INDEX (idx_app_errors_hash)")
				}
				return s.matching(WithStatus(db, q).Where("hash IN ?", hashes), srch)
			}, 0, nil
		}
	}
	if s.indexed(srch) {
		return nil, 0, nil // walkedSearch
	}
	col = "last_seen" // the window is a range of last_seen
	base := func() *gorm.DB {
		db := s.listTable(ctx, q.Status, col)
		if s.db.Dialector.Name() == "sqlite" {
			// SQLite would rather walk the whole index of another order
			// (sort=count) than sort the window's matches.
			db = db.Table("app_errors INDEXED BY " + listIndex(q.Status, col))
		}
		return WithStatus(db, q)
	}
	// The first error outside the window, if the table is longer.
	var edge []ErrorRecord
	err := base().Select("id, last_seen").Order("last_seen DESC, id DESC").Offset(SearchWindow).Limit(1).Find(&edge).Error
	if err != nil {
		return nil, 0, fmt.Errorf("errmon: bound the search: %w", err)
	}
	if len(edge) == 0 {
		return func() *gorm.DB { return s.matching(base(), srch) }, 0, nil
	}
	return func() *gorm.DB {
		return s.matching(s.rowCompare(base(), "last_seen", ">", edge[0].LastSeen, uint64(edge[0].ID)), srch)
	}, SearchWindow, nil
}

// hasTrigram reports whether a trigram index can narrow a search for
// term: pg_trgm takes trigrams from words (runs of letters and digits),
// and a term without a word of three characters may have none, which
// would read the whole index. Such terms are tested on the rows read
// (containsAny), and a search of such terms only searches the window.
func hasTrigram(term string) bool {
	run := 0
	for _, r := range term {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if run++; run >= 3 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// listTable is app_errors for a list of status sorted on col. On MySQL
// it names the index that serves it (FORCE INDEX): MariaDB's optimizer
// otherwise reads a keyset page through the status filter's equality
// alone (from the start of the status, not from the cursor), and takes
// an OFFSET page of a small table by a full scan and a sort.
func (s *Store) listTable(ctx context.Context, status, col string) *gorm.DB {
	db := s.db.WithContext(ctx).Model(&ErrorRecord{})
	if !isMySQL(s.db) {
		return db
	}
	return db.Table("app_errors FORCE INDEX (" + listIndex(status, col) + ")")
}

// listIndex is the index (of ListIndexes) that serves a list of status
// sorted on col.
func listIndex(status, col string) string {
	switch status {
	case StatusAll:
	case StatusMuted:
		return "idx_app_errors_muted_id" // few rows, sorted
	default:
		return "idx_app_errors_resolved_" + col + "_id"
	}
	return "idx_app_errors_" + col + "_id"
}

// List returns one page of errors matching q: the page after or
// before a cursor, or page q.Page (clamped: the first page below, the last
// page counted above). Its cost does not grow with the table: the count
// stops at countCapFor(q.Size), a page is one index range (plus an OFFSET
// within the counted pages), and a search without an index looks at the
// searchWindow newest errors only.
func (s *Store) List(ctx context.Context, q ListQuery) (ListResult, error) {
	srch := searchOf(q)
	if srch.Status != "" {
		q.Status = srch.Status // is: takes the place of the status filter
	}
	if !srch.Empty() && s.db.Dialector.Name() == "postgres" {
		// A prepared statement's generic plan cannot tell a rare term from
		// a common one: it may walk the whole order index for a term that
		// matches nothing. The search is planned for its own term.
		var res ListResult
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SET LOCAL plan_cache_mode = force_custom_plan").Error; err != nil {
				return fmt.Errorf("errmon: plan the search: %w", err)
			}
			ts := &Store{db: tx}
			ts.search.trigram = s.search.trigram
			var err error
			res, err = ts.listPage(ctx, q, srch)
			return err
		})
		return res, err
	}
	return s.listPage(ctx, q, srch)
}

// listPage is List on s's connection.
func (s *Store) listPage(ctx context.Context, q ListQuery, srch Search) (ListResult, error) {
	var res ListResult
	if q.Size < 1 {
		q.Size = DefaultListSize
	}
	col := SortColumn(q.Sort)
	source, window, err := s.listSource(ctx, q, srch)
	if err != nil {
		return res, err
	}
	res.Window = window
	limit := countCapFor(q.Size)
	total := int64(-1) // not counted yet
	if !srch.Empty() {
		// Counting a match costs its test, not an index entry: a search
		// counts ten pages, and serves a numbered page with its count in
		// one statement.
		limit = searchCountCapFor(q.Size)
		if source == nil {
			var served bool
			if source, total, served, err = s.walkedSearch(ctx, q, srch, col, limit, &res); served || err != nil {
				return res, err
			}
		} else if q.After == "" && q.Before == "" {
			if ok, _, err := s.searchPage(ctx, q, source, col, limit, &res); ok || err != nil {
				return res, err
			}
		}
	}
	if total < 0 {
		if total, err = s.boundedCount(ctx, source(), limit+1); err != nil {
			return res, fmt.Errorf("errmon: count errors: %w", err)
		}
	}
	if total > int64(limit) {
		total, res.TotalIsLowerBound, res.Capped = int64(limit), true, true
	}
	if window > 0 {
		res.TotalIsLowerBound = true // older errors were not searched
	}
	res.Total = total
	res.Pages = max(int((total+int64(q.Size)-1)/int64(q.Size)), 1)

	desc, asc := col+" DESC, id DESC", col+" ASC, id ASC"
	fetch := func(db *gorm.DB, order string, offset int) ([]ErrorRecord, error) {
		var recs []ErrorRecord
		err := db.Select(listColumns).Order(order).Limit(q.Size + 1).Offset(offset).Find(&recs).Error
		if err != nil {
			return nil, fmt.Errorf("errmon: list errors: %w", err)
		}
		return recs, nil
	}
	var recs []ErrorRecord
	var more bool // a row beyond the page, in the direction read
	if c, ok := parseCursor(q.After, q.Sort); ok && q.After != "" {
		if recs, err = fetch(s.keyset(source(), col, c, false), desc, 0); err != nil {
			return res, err
		}
		more = len(recs) > q.Size
		recs = recs[:min(len(recs), q.Size)]
		if len(recs) > 0 {
			res.Prev = CursorOf(&recs[0], q.Sort)
		}
		if more {
			res.Next = CursorOf(&recs[len(recs)-1], q.Sort)
		}
		res.Errors = recs
		capListed(res.Errors)
		return res, nil
	}
	if c, ok := parseCursor(q.Before, q.Sort); ok && q.Before != "" {
		if recs, err = fetch(s.keyset(source(), col, c, true), asc, 0); err != nil {
			return res, err
		}
		if len(recs) > q.Size { // a full page with more before it
			recs = recs[:q.Size]
			slices.Reverse(recs)
			res.Prev = CursorOf(&recs[0], q.Sort)
			res.Next = CursorOf(&recs[len(recs)-1], q.Sort)
			res.Errors = recs
			capListed(res.Errors)
			return res, nil
		}
		q.Page = 1 // back at the start: the first page, full
	}
	if total == 0 {
		res.Page = 1
		return res, nil
	}
	res.Page = min(max(q.Page, 1), res.Pages)
	res.Clamped = q.Page > res.Pages && res.TotalIsLowerBound
	if recs, err = fetch(source(), desc, (res.Page-1)*q.Size); err != nil {
		return res, err
	}
	more = len(recs) > q.Size
	recs = recs[:min(len(recs), q.Size)]
	if len(recs) > 0 && res.Page > 1 {
		res.Prev = CursorOf(&recs[0], q.Sort)
	}
	if more && len(recs) > 0 {
		res.Next = CursorOf(&recs[len(recs)-1], q.Sort)
	}
	res.Errors = recs
	capListed(res.Errors)
	return res, nil
}

// searchRow is a search result with the number of matches counted.
type searchRow struct {
	ErrorRecord `gorm:"embedded"`
	TotalRows   int64
}

// searchPage serves a numbered page of a search in one statement: the first limit+1 matches in the
// list's order, counted, and the page taken from them. A rare term's
// matches are found in the index once, not twice (count, then page); a
// common term's by walking the order's index until limit+1 match. It
// reports false when the page is beyond the matches, for List to
// count and clamp, and the matches counted (up to limit+1), or -1 when
// the page is beyond them all.
func (s *Store) searchPage(ctx context.Context, q ListQuery, source func() *gorm.DB, col string, limit int, res *ListResult) (served bool, counted int64, err error) {
	desc := col + " DESC, id DESC"
	page := max(q.Page, 1)
	matched := source().Select(listColumns).Order(desc).Limit(limit + 1)
	var rows []searchRow
	err = s.db.WithContext(ctx).Table("(?) AS matched", matched).Select("*, count(*) OVER () AS total_rows").
		Order(desc).Limit(q.Size + 1).Offset((page - 1) * q.Size).Find(&rows).Error
	if err != nil {
		return false, 0, fmt.Errorf("errmon: search errors: %w", err)
	}
	if len(rows) == 0 {
		if page == 1 {
			res.Page, res.Pages = 1, 1
			return true, 0, nil
		}
		return false, -1, nil
	}
	total := rows[0].TotalRows
	counted = total
	if total > int64(limit) {
		total, res.TotalIsLowerBound, res.Capped = int64(limit), true, true
	}
	if res.Window > 0 {
		res.TotalIsLowerBound = true // older errors were not searched
	}
	res.Total = total
	res.Pages = max(int((total+int64(q.Size)-1)/int64(q.Size)), 1)
	if page > res.Pages {
		res.TotalIsLowerBound, res.Capped = false, false
		return false, counted, nil
	}
	res.Page = page
	more := len(rows) > q.Size
	rows = rows[:min(len(rows), q.Size)]
	res.Errors = make([]ErrorRecord, len(rows))
	for i := range rows {
		res.Errors[i] = rows[i].ErrorRecord
	}
	if page > 1 {
		res.Prev = CursorOf(&res.Errors[0], q.Sort)
	}
	if more {
		res.Next = CursorOf(&res.Errors[len(res.Errors)-1], q.Sort)
	}
	capListed(res.Errors)
	return true, counted, nil
}

// Read caps, in characters, of the texts the dashboard reads from a row.
// errmon never stores more; a row written by another process may hold
// anything, and is cut in SQL (substr) so that a read costs what these
// caps allow.
var (
	errorTextCaps = map[string]int{
		"host": MaxHostBytes, "path": MaxPathBytes, "route": MaxPathBytes, "exception_name": MaxNameBytes,
		"message": MaxMessageBytes, "traceback": MaxTracebackBytes, "request_data": MaxReadContext,
	}
	occurrenceTextCaps = map[string]int{
		"host": MaxHostBytes, "path": MaxPathBytes, "message": MaxMessageBytes, "request_data": MaxReadContext,
		"server": MaxHostBytes,
	}
)

// cappedColumns is the SELECT list of model's columns, each text of caps
// read as substr(col, 1, cap+1): one character more than the cap tells a
// text that was cut from one that fits.
func (s *Store) cappedColumns(model any, caps map[string]int) (string, error) {
	stmt := &gorm.Statement{DB: s.db}
	if err := stmt.Parse(model); err != nil {
		return "", fmt.Errorf("errmon: columns of %T: %w", model, err)
	}
	cols := make([]string, 0, len(stmt.Schema.DBNames))
	for _, name := range stmt.Schema.DBNames {
		if n, ok := caps[name]; ok {
			cols = append(cols, fmt.Sprintf("substr(%s, 1, %d) AS %s", name, n+1, name))
		} else {
			cols = append(cols, name)
		}
	}
	return strings.Join(cols, ", "), nil
}

// capColumn cuts a text read by cappedColumns to its cap, marking the cut,
// and reports whether it cut.
func capColumn(s *string, limit int) bool {
	t, cut := text.CutRunes(*s, limit)
	if cut {
		*s = t + "… [cut]"
	}
	return cut
}

// ShownError is an error as the dashboard reads it: its texts capped.
type ShownError struct {
	ErrorRecord
	ContextCut bool // RequestData was longer than MaxReadContext: it holds the start only
}

// shownOccurrence is a sample as the dashboard reads it.
type shownOccurrence struct {
	ErrorOccurrence
	ContextCut bool
}

// Get returns the error with the given hash, its texts capped, or
// gorm.ErrRecordNotFound.
func (s *Store) Get(ctx context.Context, hash string) (*ShownError, error) {
	cols, err := s.cappedColumns(&ErrorRecord{}, errorTextCaps)
	if err != nil {
		return nil, err
	}
	var rec ShownError
	if err := s.db.WithContext(ctx).Model(&ErrorRecord{}).Select(cols).Where("hash = ?", hash).Take(&rec.ErrorRecord).Error; err != nil {
		return nil, fmt.Errorf("errmon: get error %s: %w", hash, err)
	}
	r := &rec.ErrorRecord
	for _, t := range []struct {
		s     *string
		limit int
	}{{&r.Host, MaxHostBytes}, {&r.Path, MaxPathBytes}, {&r.Route, MaxPathBytes}, {&r.ExceptionName, MaxNameBytes},
		{&r.Message, MaxMessageBytes}, {&r.Traceback, MaxTracebackBytes}} {
		capColumn(t.s, t.limit)
	}
	r.RequestData, rec.ContextCut = text.CutRunes(r.RequestData, MaxReadContext)
	return &rec, nil
}

// LastOccurrences returns the newest samples of an error, newest first,
// their texts capped.
func (s *Store) LastOccurrences(ctx context.Context, hash string, limit int) ([]shownOccurrence, error) {
	cols, err := s.cappedColumns(&ErrorOccurrence{}, occurrenceTextCaps)
	if err != nil {
		return nil, err
	}
	var rows []ErrorOccurrence
	err = s.db.WithContext(ctx).Model(&ErrorOccurrence{}).Select(cols).Where("hash = ?", hash).Order("id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("errmon: occurrences of %s: %w", hash, err)
	}
	out := make([]shownOccurrence, len(rows))
	for i := range rows {
		o := &rows[i]
		capColumn(&o.Host, MaxHostBytes)
		capColumn(&o.Path, MaxPathBytes)
		capColumn(&o.Message, MaxMessageBytes)
		out[i].ErrorOccurrence = *o
		out[i].RequestData, out[i].ContextCut = text.CutRunes(o.RequestData, MaxReadContext)
	}
	return out, nil
}

// HourStart is the start of t's hour, in UTC.
func HourStart(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// HourlyCounts returns, for each hash, its occurrences per hour over the n
// hours that end with now's hour: index 0 is the oldest hour, n-1 the
// current one. Hashes without occurrences in the window are absent.
func (s *Store) HourlyCounts(ctx context.Context, hashes []string, now time.Time, n int) (map[string][]int64, error) {
	out := make(map[string][]int64, len(hashes))
	if len(hashes) == 0 || n < 1 {
		return out, nil
	}
	end := HourStart(now)
	start := end.Add(-time.Duration(n-1) * time.Hour)
	var rows []ErrorHourly
	err := s.db.WithContext(ctx).Where("hash IN ? AND hour >= ?", hashes, start).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("errmon: hourly counts: %w", err)
	}
	for _, r := range rows {
		i := int(HourStart(r.Hour).Sub(start) / time.Hour)
		if i < 0 || i >= n {
			continue
		}
		if out[r.Hash] == nil {
			out[r.Hash] = make([]int64, n)
		}
		out[r.Hash][i] += r.Count
	}
	return out, nil
}

// SetResolved resolves (or reopens) the errors with the given hashes and
// returns how many rows changed state.
func (s *Store) SetResolved(ctx context.Context, hashes []string, resolved bool, now time.Time) (int64, error) {
	if len(hashes) == 0 {
		return 0, nil
	}
	var at *time.Time
	if resolved {
		t := DBTime(now)
		at = &t
	}
	r := s.db.WithContext(ctx).Model(&ErrorRecord{}).
		Where("hash IN ? AND resolved = ?", hashes, !resolved).
		Updates(map[string]any{"resolved": resolved, "resolved_at": at})
	if r.Error != nil {
		return 0, fmt.Errorf("errmon: set resolved=%v: %w", resolved, r.Error)
	}
	return r.RowsAffected, nil
}

// Delete removes the errors with the given hashes with their
// occurrence samples, hourly counts and history, in one transaction, and returns how
// many errors were deleted.
func (s *Store) Delete(ctx context.Context, hashes []string) (int64, error) {
	if len(hashes) == 0 {
		return 0, nil
	}
	var n int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("hash IN ?", hashes).Delete(&ErrorOccurrence{}).Error; err != nil {
			return fmt.Errorf("delete app_error_occurrences: %w", err)
		}
		if err := tx.Where("hash IN ?", hashes).Delete(&ErrorHourly{}).Error; err != nil {
			return fmt.Errorf("delete app_error_hourly: %w", err)
		}
		if err := tx.Where("hash IN ?", hashes).Delete(&ErrorEvent{}).Error; err != nil {
			return fmt.Errorf("delete app_error_events: %w", err)
		}
		if err := tx.Where("hash IN ?", hashes).Delete(&ErrorUser{}).Error; err != nil {
			return fmt.Errorf("delete app_error_users: %w", err)
		}
		r := tx.Where("hash IN ?", hashes).Delete(&ErrorRecord{})
		if r.Error != nil {
			return fmt.Errorf("delete app_errors: %w", r.Error)
		}
		n = r.RowsAffected
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("errmon: delete errors: %w", err)
	}
	return n, nil
}

// DefaultListSize is the page size of a ListQuery that sets none.
const DefaultListSize = 20

// Records reads the errors with these ids.
func (s *Store) Records(ctx context.Context, ids []uint) ([]ErrorRecord, error) {
	var recs []ErrorRecord
	err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&recs).Error
	return recs, err
}

// HashesWithPrefix returns up to two fingerprints that start with prefix,
// in one range of the hash index.
func (s *Store) HashesWithPrefix(ctx context.Context, prefix string) ([]string, error) {
	return s.hashesWithPrefix(ctx, prefix, 2)
}

// hashesWithPrefix returns up to limit fingerprints that start with
// prefix, in one range of the hash index.
func (s *Store) hashesWithPrefix(ctx context.Context, prefix string, limit int) ([]string, error) {
	q := s.db.WithContext(ctx).Model(&ErrorRecord{}).Where("hash >= ?", prefix)
	if next := nextHexPrefix(prefix); next != "" {
		q = q.Where("hash < ?", next)
	}
	var hashes []string
	err := q.Order("hash").Limit(limit).Pluck("hash", &hashes).Error
	return hashes, err
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

// Listed reads the errors with these hashes as the list shows them (no
// traceback or context; texts capped), newest first.
func (s *Store) Listed(ctx context.Context, hashes []string) ([]ErrorRecord, error) {
	var recs []ErrorRecord
	err := s.db.WithContext(ctx).Model(&ErrorRecord{}).Select(listColumns).
		Where("hash IN ?", hashes).Order("last_seen DESC, id DESC").Find(&recs).Error
	capListed(recs)
	return recs, err
}
