package errmon

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
)

// The dashboard's reads and writes. Every value that comes from a request
// reaches SQL as a bound parameter; search terms are LIKE patterns with
// their wildcards escaped.

// Sort orders of the error list.
const (
	sortLastSeen  = "last_seen"  // newest LastSeen first (the default)
	sortCount     = "count"      // most frequent first
	sortFirstSeen = "first_seen" // newest CreatedOn first
)

// Status filters of the error list.
const (
	statusAll      = ""
	statusOpen     = "open"
	statusResolved = "resolved"
)

// maxSearchLen caps a search term (bytes); longer input is cut.
const maxSearchLen = 200

// listQuery is what the list page and GET api/errors ask for.
type listQuery struct {
	Q      string // searched in exception name, message and path
	Status string // statusAll, statusOpen or statusResolved
	Sort   string // sortLastSeen, sortCount or sortFirstSeen
	Page   int    // 1-based; clamped to the pages counted (see countCap)
	Size   int    // page size (Config.ListSize)
	// After and Before are keyset cursors (see cursor): the page of the
	// errors that follow (precede) the one named, in the list's order.
	// Either one, when it parses, takes the place of Page.
	After, Before string
}

// listResult is one page of errors.
type listResult struct {
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

// countCap is how far the list counts matching errors: a count costs at
// most this many index entries, whatever the table holds.
const countCap = 1000

// searchWindow is how many of the newest errors a search looks at where no
// index serves it (SQLite, MySQL, PostgreSQL without pg_trgm, or a term
// without three letters or digits in a row, see hasTrigram). A variable
// for tests only.
var searchWindow = 10_000

// searchCountCapFor is how far a search counts its matches: ten pages, at
// least 100.
func searchCountCapFor(size int) int { return max(100, 10*size) }

// countCapFor is countCap, or ten pages when the page size makes that more.
func countCapFor(size int) int { return max(countCap, 10*size) }

// sortColumn is the column a list order sorts on (then on id), newest or
// largest first.
func sortColumn(sort string) string {
	switch sort {
	case sortCount:
		return "count"
	case sortFirstSeen:
		return "created_on"
	}
	return "last_seen"
}

// cursor is a position in a list order: the sort key and id of one row.
// It reads "id_key", the key being a count or an RFC 3339 time (UTC, to
// the nanosecond).
type cursor struct {
	id   uint64
	key  int64     // sort=count
	time time.Time // the time orders
}

// cursorOf is the position of rec in the list order of sort.
func cursorOf(rec *ErrorRecord, sort string) string {
	id := strconv.FormatUint(uint64(rec.ID), 10)
	switch sortColumn(sort) {
	case "count":
		return id + "_" + strconv.FormatInt(rec.Count, 10)
	case "created_on":
		return id + "_" + rec.CreatedOn.UTC().Format(time.RFC3339Nano)
	}
	return id + "_" + rec.LastSeen.UTC().Format(time.RFC3339Nano)
}

// parseCursor reads a cursor of the list order of sort.
func parseCursor(s, sort string) (cursor, bool) {
	ids, key, ok := strings.Cut(s, "_")
	if !ok || len(s) > 100 {
		return cursor{}, false
	}
	var c cursor
	var err error
	if c.id, err = strconv.ParseUint(ids, 10, 63); err != nil {
		return cursor{}, false
	}
	if sortColumn(sort) == "count" {
		c.key, err = strconv.ParseInt(key, 10, 64)
	} else {
		c.time, err = time.Parse(time.RFC3339Nano, key)
		c.time = c.time.UTC()
	}
	return c, err == nil
}

// keyArg is the cursor's sort key as a bound parameter.
func (c cursor) keyArg() any {
	if c.time.IsZero() {
		return c.key
	}
	return c.time
}

// keyset restricts db to the rows after (or, with before, the rows
// before) c in the order col DESC, id DESC.
func (s *store) keyset(db *gorm.DB, col string, c cursor, before bool) *gorm.DB {
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
func (s *store) rowCompare(db *gorm.DB, col, op string, key any, id uint64) *gorm.DB {
	if isMySQL(s.db) {
		return db.Where(fmt.Sprintf("%s %s= ? AND (%s %s ? OR id %s ?)", col, op, col, op, op), key, key, id)
	}
	return db.Where(fmt.Sprintf("(%s, id) %s (?, ?)", col, op), key, id)
}

// boundedCount counts the rows of db up to limit: "SELECT count(*) FROM
// (SELECT 1 ... LIMIT limit) t", which reads at most limit index entries.
func (s *store) boundedCount(ctx context.Context, db *gorm.DB, limit int) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw("SELECT count(*) FROM (?) AS counted", db.Select("1").Limit(limit)).Scan(&n).Error
	return n, err
}

// listColumns are the columns the list needs: not the large traceback and
// request context, and the message and path cut in SQL to their caps (plus
// one character, see cappedColumns) whatever a row holds.
var listColumns = strings.Join([]string{
	"id", "hash", "host", fmt.Sprintf("substr(path, 1, %d) AS path", maxPathBytes+1), "method", "route", "exception_name",
	fmt.Sprintf("substr(message, 1, %d) AS message", maxMessageBytes+1),
	"count", "created_on", "last_seen", "resolved", "resolved_at", "regressions",
}, ", ")

// capListed cuts the texts of listed errors to their caps.
func capListed(recs []ErrorRecord) {
	for i := range recs {
		capColumn(&recs[i].Path, maxPathBytes)
		capColumn(&recs[i].Message, maxMessageBytes)
	}
}

// escapeLike escapes the LIKE wildcards of s with '!' (see likeEscape).
func escapeLike(s string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(s)
}

// cutString cuts s to at most n bytes at a character boundary.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// searchTerm is q's search term, trimmed and cut, or "".
func searchTerm(q listQuery) string {
	return cutString(strings.TrimSpace(q.Q), maxSearchLen)
}

// matching applies the search term (when not "") to db, whose columns may
// be app_errors' or a window's of them.
func (s *store) matching(db *gorm.DB, term string) *gorm.DB {
	if term == "" {
		return db
	}
	pat := "%" + escapeLike(term) + "%"
	if s.db.Dialector.Name() == "postgres" {
		// lower() LIKE lower() is ILIKE's meaning, at half its cost; the
		// trigram indexes (searchindex.go) are on these lower() values.
		return db.Where("(lower(exception_name) LIKE lower(?) ESCAPE '!' OR lower(message) LIKE lower(?) ESCAPE '!'"+
			" OR lower(path) LIKE lower(?) ESCAPE '!')", pat, pat, pat)
	}
	// SQLite's LIKE ignores ASCII case, MySQL's follows the collation
	// (utf8mb4's default ignores case).
	return db.Where("(exception_name LIKE ? ESCAPE '!' OR message LIKE ? ESCAPE '!' OR path LIKE ? ESCAPE '!')",
		pat, pat, pat)
}

// withStatus applies the status filter of q.
func withStatus(db *gorm.DB, q listQuery) *gorm.DB {
	switch q.Status {
	case statusOpen:
		return db.Where("resolved = ?", false)
	case statusResolved:
		return db.Where("resolved = ?", true)
	}
	return db
}

// listSource is where the list of q reads from, with its filters: the
// table, or for a search that no index serves, the searchWindow newest
// errors of the status asked for (by last seen: one range of an index,
// whose lower end one more range finds). It reports the window's size,
// or 0 when every error is searched.
func (s *store) listSource(ctx context.Context, q listQuery) (func() *gorm.DB, int, error) {
	term := searchTerm(q)
	indexed := term == "" || s.search.trigram && hasTrigram(term)
	col := sortColumn(q.Sort)
	if !indexed {
		col = "last_seen" // the window is a range of last_seen
	}
	base := func() *gorm.DB { return withStatus(s.listTable(ctx, q.Status, col), q) }
	if indexed {
		return func() *gorm.DB { return s.matching(base(), term) }, 0, nil
	}
	// The first error outside the window, if the table is longer.
	var edge []ErrorRecord
	err := base().Select("id, last_seen").Order("last_seen DESC, id DESC").Offset(searchWindow).Limit(1).Find(&edge).Error
	if err != nil {
		return nil, 0, fmt.Errorf("errmon: bound the search: %w", err)
	}
	if len(edge) == 0 {
		return func() *gorm.DB { return s.matching(base(), term) }, 0, nil
	}
	return func() *gorm.DB {
		return s.matching(s.rowCompare(base(), "last_seen", ">", edge[0].LastSeen, uint64(edge[0].ID)), term)
	}, searchWindow, nil
}

// hasTrigram reports whether a trigram index can narrow a search for
// term: pg_trgm takes trigrams from words (runs of letters and digits),
// and a term without a word of three characters may have none, which
// would read the whole index. Such terms search the window instead.
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
func (s *store) listTable(ctx context.Context, status, col string) *gorm.DB {
	db := s.db.WithContext(ctx).Model(&ErrorRecord{})
	if !isMySQL(s.db) {
		return db
	}
	idx := "idx_app_errors_" + col + "_id"
	if status != statusAll {
		idx = "idx_app_errors_resolved_" + col + "_id"
	}
	return db.Table("app_errors FORCE INDEX (" + idx + ")")
}

// listErrors returns one page of errors matching q: the page after or
// before a cursor, or page q.Page (clamped: the first page below, the last
// page counted above). Its cost does not grow with the table: the count
// stops at countCapFor(q.Size), a page is one index range (plus an OFFSET
// within the counted pages), and a search without an index looks at the
// searchWindow newest errors only.
func (s *store) listErrors(ctx context.Context, q listQuery) (listResult, error) {
	if searchTerm(q) != "" && s.db.Dialector.Name() == "postgres" {
		// A prepared statement's generic plan cannot tell a rare term from
		// a common one: it may walk the whole order index for a term that
		// matches nothing. The search is planned for its own term.
		var res listResult
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SET LOCAL plan_cache_mode = force_custom_plan").Error; err != nil {
				return fmt.Errorf("errmon: plan the search: %w", err)
			}
			ts := &store{db: tx}
			ts.search.trigram = s.search.trigram
			var err error
			res, err = ts.listPage(ctx, q)
			return err
		})
		return res, err
	}
	return s.listPage(ctx, q)
}

// listPage is listErrors on s's connection.
func (s *store) listPage(ctx context.Context, q listQuery) (listResult, error) {
	var res listResult
	if q.Size < 1 {
		q.Size = defaultListSize
	}
	col := sortColumn(q.Sort)
	source, window, err := s.listSource(ctx, q)
	if err != nil {
		return res, err
	}
	res.Window = window
	limit := countCapFor(q.Size)
	if searchTerm(q) != "" {
		// Counting a match costs its test, not an index entry: a search
		// counts ten pages, and serves a numbered page with its count in
		// one statement.
		limit = searchCountCapFor(q.Size)
		if q.After == "" && q.Before == "" {
			if ok, err := s.searchPage(ctx, q, source, col, limit, &res); ok || err != nil {
				return res, err
			}
		}
	}
	total, err := s.boundedCount(ctx, source(), limit+1)
	if err != nil {
		return res, fmt.Errorf("errmon: count errors: %w", err)
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
			res.Prev = cursorOf(&recs[0], q.Sort)
		}
		if more {
			res.Next = cursorOf(&recs[len(recs)-1], q.Sort)
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
			res.Prev = cursorOf(&recs[0], q.Sort)
			res.Next = cursorOf(&recs[len(recs)-1], q.Sort)
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
		res.Prev = cursorOf(&recs[0], q.Sort)
	}
	if more && len(recs) > 0 {
		res.Next = cursorOf(&recs[len(recs)-1], q.Sort)
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
// reports false when the page is beyond the matches, for listErrors to
// count and clamp.
func (s *store) searchPage(ctx context.Context, q listQuery, source func() *gorm.DB, col string, limit int, res *listResult) (bool, error) {
	desc := col + " DESC, id DESC"
	page := max(q.Page, 1)
	matched := source().Select(listColumns).Order(desc).Limit(limit + 1)
	var rows []searchRow
	err := s.db.WithContext(ctx).Table("(?) AS matched", matched).Select("*, count(*) OVER () AS total_rows").
		Order(desc).Limit(q.Size + 1).Offset((page - 1) * q.Size).Find(&rows).Error
	if err != nil {
		return false, fmt.Errorf("errmon: search errors: %w", err)
	}
	if len(rows) == 0 {
		if page == 1 {
			res.Page, res.Pages = 1, 1
			return true, nil
		}
		return false, nil
	}
	total := rows[0].TotalRows
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
		return false, nil
	}
	res.Page = page
	more := len(rows) > q.Size
	rows = rows[:min(len(rows), q.Size)]
	res.Errors = make([]ErrorRecord, len(rows))
	for i := range rows {
		res.Errors[i] = rows[i].ErrorRecord
	}
	if page > 1 {
		res.Prev = cursorOf(&res.Errors[0], q.Sort)
	}
	if more {
		res.Next = cursorOf(&res.Errors[len(res.Errors)-1], q.Sort)
	}
	capListed(res.Errors)
	return true, nil
}

// Read caps, in characters, of the texts the dashboard reads from a row.
// errmon never stores more; a row written by another process may hold
// anything, and is cut in SQL (substr) so that a read costs what these
// caps allow.
var (
	errorTextCaps = map[string]int{
		"host": maxHostBytes, "path": maxPathBytes, "route": maxPathBytes, "exception_name": maxNameBytes,
		"message": maxMessageBytes, "traceback": maxTracebackBytes, "request_data": maxReadContext,
	}
	occurrenceTextCaps = map[string]int{
		"host": maxHostBytes, "path": maxPathBytes, "message": maxMessageBytes, "request_data": maxReadContext,
	}
)

// cappedColumns is the SELECT list of model's columns, each text of caps
// read as substr(col, 1, cap+1): one character more than the cap tells a
// text that was cut from one that fits.
func (s *store) cappedColumns(model any, caps map[string]int) (string, error) {
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
	t, cut := readCut(*s, limit)
	if cut {
		*s = t + "… [cut]"
	}
	return cut
}

// shownError is an error as the dashboard reads it: its texts capped.
type shownError struct {
	ErrorRecord
	contextCut bool // RequestData was longer than maxReadContext: it holds the start only
}

// shownOccurrence is a sample as the dashboard reads it.
type shownOccurrence struct {
	errorOccurrence
	contextCut bool
}

// getError returns the error with the given hash, its texts capped, or
// gorm.ErrRecordNotFound.
func (s *store) getError(ctx context.Context, hash string) (*shownError, error) {
	cols, err := s.cappedColumns(&ErrorRecord{}, errorTextCaps)
	if err != nil {
		return nil, err
	}
	var rec shownError
	if err := s.db.WithContext(ctx).Model(&ErrorRecord{}).Select(cols).Where("hash = ?", hash).Take(&rec.ErrorRecord).Error; err != nil {
		return nil, fmt.Errorf("errmon: get error %s: %w", hash, err)
	}
	r := &rec.ErrorRecord
	for _, t := range []struct {
		s     *string
		limit int
	}{{&r.Host, maxHostBytes}, {&r.Path, maxPathBytes}, {&r.Route, maxPathBytes}, {&r.ExceptionName, maxNameBytes},
		{&r.Message, maxMessageBytes}, {&r.Traceback, maxTracebackBytes}} {
		capColumn(t.s, t.limit)
	}
	r.RequestData, rec.contextCut = readCut(r.RequestData, maxReadContext)
	return &rec, nil
}

// lastOccurrences returns the newest samples of an error, newest first,
// their texts capped.
func (s *store) lastOccurrences(ctx context.Context, hash string, limit int) ([]shownOccurrence, error) {
	cols, err := s.cappedColumns(&errorOccurrence{}, occurrenceTextCaps)
	if err != nil {
		return nil, err
	}
	var rows []errorOccurrence
	err = s.db.WithContext(ctx).Model(&errorOccurrence{}).Select(cols).Where("hash = ?", hash).Order("id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("errmon: occurrences of %s: %w", hash, err)
	}
	out := make([]shownOccurrence, len(rows))
	for i := range rows {
		o := &rows[i]
		capColumn(&o.Host, maxHostBytes)
		capColumn(&o.Path, maxPathBytes)
		capColumn(&o.Message, maxMessageBytes)
		out[i].errorOccurrence = *o
		out[i].RequestData, out[i].contextCut = readCut(o.RequestData, maxReadContext)
	}
	return out, nil
}

// hourStart is the start of t's hour, in UTC.
func hourStart(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// hourlyCounts returns, for each hash, its occurrences per hour over the n
// hours that end with now's hour: index 0 is the oldest hour, n-1 the
// current one. Hashes without occurrences in the window are absent.
func (s *store) hourlyCounts(ctx context.Context, hashes []string, now time.Time, n int) (map[string][]int64, error) {
	out := make(map[string][]int64, len(hashes))
	if len(hashes) == 0 || n < 1 {
		return out, nil
	}
	end := hourStart(now)
	start := end.Add(-time.Duration(n-1) * time.Hour)
	var rows []errorHourly
	err := s.db.WithContext(ctx).Where("hash IN ? AND hour >= ?", hashes, start).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("errmon: hourly counts: %w", err)
	}
	for _, r := range rows {
		i := int(hourStart(r.Hour).Sub(start) / time.Hour)
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

// setResolved resolves (or reopens) the errors with the given hashes and
// returns how many rows changed state.
func (s *store) setResolved(ctx context.Context, hashes []string, resolved bool, now time.Time) (int64, error) {
	if len(hashes) == 0 {
		return 0, nil
	}
	var at *time.Time
	if resolved {
		t := dbTime(now)
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

// deleteErrors removes the errors with the given hashes with their
// occurrence samples and hourly counts, in one transaction, and returns how
// many errors were deleted.
func (s *store) deleteErrors(ctx context.Context, hashes []string) (int64, error) {
	if len(hashes) == 0 {
		return 0, nil
	}
	var n int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("hash IN ?", hashes).Delete(&errorOccurrence{}).Error; err != nil {
			return fmt.Errorf("delete app_error_occurrences: %w", err)
		}
		if err := tx.Where("hash IN ?", hashes).Delete(&errorHourly{}).Error; err != nil {
			return fmt.Errorf("delete app_error_hourly: %w", err)
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
