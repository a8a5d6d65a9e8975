package errmon

import (
	"context"
	"fmt"
	"strings"
	"time"
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
	Page   int    // 1-based; clamped to the pages that exist
	Size   int    // page size (Config.ListSize)
}

// listResult is one page of errors.
type listResult struct {
	Errors []ErrorRecord // without Traceback and RequestData
	Total  int64
	Page   int // the page served, after clamping
	Pages  int // at least 1
}

// listColumns are the columns the list needs: not the large traceback and
// request context, and the message and path cut in SQL to their caps (plus
// one character, see cappedColumns) whatever a row holds.
var listColumns = strings.Join([]string{
	"id", "hash", "host", fmt.Sprintf("substr(path, 1, %d) AS path", MaxPathBytes+1), "method", "route", "exception_name",
	fmt.Sprintf("substr(message, 1, %d) AS message", MaxMessageBytes+1),
	"count", "created_on", "last_seen", "resolved", "resolved_at", "regressions",
}, ", ")

// capListed cuts the texts of listed errors to their caps.
func capListed(recs []ErrorRecord) {
	for i := range recs {
		capColumn(&recs[i].Path, MaxPathBytes)
		capColumn(&recs[i].Message, MaxMessageBytes)
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

// filtered applies the search and status filter of q.
func (s *store) filtered(ctx context.Context, q listQuery) *gorm.DB {
	db := s.db.WithContext(ctx).Model(&ErrorRecord{})
	if term := strings.TrimSpace(q.Q); term != "" {
		term = cutString(term, maxSearchLen)
		pat := "%" + escapeLike(term) + "%"
		if s.db.Dialector.Name() == "postgres" {
			// lower() LIKE lower() is ILIKE's meaning, at half its cost.
			db = db.Where("(lower(exception_name) LIKE lower(?) ESCAPE '!' OR lower(message) LIKE lower(?) ESCAPE '!'"+
				" OR lower(path) LIKE lower(?) ESCAPE '!')", pat, pat, pat)
		} else { // SQLite's LIKE ignores ASCII case
			db = db.Where("(exception_name LIKE ? ESCAPE '!' OR message LIKE ? ESCAPE '!' OR path LIKE ? ESCAPE '!')",
				pat, pat, pat)
		}
	}
	switch q.Status {
	case statusOpen:
		db = db.Where("resolved = ?", false)
	case statusResolved:
		db = db.Where("resolved = ?", true)
	}
	return db
}

// listErrors returns one page of errors matching q. Page numbers out of
// range are clamped: the first page below, the last page above.
func (s *store) listErrors(ctx context.Context, q listQuery) (listResult, error) {
	var res listResult
	if q.Size < 1 {
		q.Size = DefaultListSize
	}
	var order string
	switch q.Sort {
	case sortCount:
		order = "count DESC, id DESC"
	case sortFirstSeen:
		order = "created_on DESC, id DESC"
	default:
		order = "last_seen DESC, id DESC"
	}
	paginate := func(total int64) {
		res.Total = total
		res.Pages = max(int((total+int64(q.Size)-1)/int64(q.Size)), 1)
		res.Page = min(max(q.Page, 1), res.Pages)
	}
	if strings.TrimSpace(q.Q) != "" && q.Page <= maxSearchPage {
		// A search scans the table whatever the indexes: count the matches
		// and take the page in that one scan.
		page := max(q.Page, 1)
		var rows []searchRow
		err := s.filtered(ctx, q).Select(searchColumns).Order(order).
			Limit(q.Size).Offset((page - 1) * q.Size).Find(&rows).Error
		if err != nil {
			return res, fmt.Errorf("errmon: search errors: %w", err)
		}
		if len(rows) == 0 && page == 1 {
			paginate(0) // nothing matches
			return res, nil
		}
		if len(rows) > 0 {
			paginate(rows[0].TotalRows)
			res.Errors = make([]ErrorRecord, len(rows))
			for i := range rows {
				res.Errors[i] = rows[i].ErrorRecord
			}
			capListed(res.Errors)
			return res, nil
		}
		// A page past the end: count, and clamp below.
	}
	var total int64
	if err := s.filtered(ctx, q).Count(&total).Error; err != nil {
		return res, fmt.Errorf("errmon: count errors: %w", err)
	}
	paginate(total)
	if res.Total == 0 {
		return res, nil
	}
	err := s.filtered(ctx, q).Select(listColumns).Order(order).
		Limit(q.Size).Offset((res.Page - 1) * q.Size).Find(&res.Errors).Error
	if err != nil {
		return res, fmt.Errorf("errmon: list errors: %w", err)
	}
	capListed(res.Errors)
	return res, nil
}

// maxSearchPage bounds the page a search asks for in its single pass;
// later pages are clamped after a count.
const maxSearchPage = 1 << 20

// searchRow is a search result with the number of all matches.
type searchRow struct {
	ErrorRecord `gorm:"embedded"`
	TotalRows   int64
}

// searchColumns selects the list's columns and the number of matches.
var searchColumns = listColumns + ", COUNT(*) OVER () AS total_rows"

// Read caps, in characters, of the texts the dashboard reads from a row.
// errmon never stores more; a row written by another process may hold
// anything, and is cut in SQL (substr) so that a read costs what these
// caps allow.
var (
	errorTextCaps = map[string]int{
		"host": MaxHostBytes, "path": MaxPathBytes, "route": MaxPathBytes, "exception_name": MaxNameBytes,
		"message": MaxMessageBytes, "traceback": MaxTracebackBytes, "request_data": maxReadContext,
	}
	occurrenceTextCaps = map[string]int{
		"host": MaxHostBytes, "path": MaxPathBytes, "message": MaxMessageBytes, "request_data": maxReadContext,
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
	ErrorOccurrence
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
	}{{&r.Host, MaxHostBytes}, {&r.Path, MaxPathBytes}, {&r.Route, MaxPathBytes}, {&r.ExceptionName, MaxNameBytes},
		{&r.Message, MaxMessageBytes}, {&r.Traceback, MaxTracebackBytes}} {
		capColumn(t.s, t.limit)
	}
	r.RequestData, rec.contextCut = readCut(r.RequestData, maxReadContext)
	return &rec, nil
}

// lastOccurrences returns the newest samples of an error, newest first,
// their texts capped.
func (s *store) lastOccurrences(ctx context.Context, hash string, limit int) ([]shownOccurrence, error) {
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
	var rows []ErrorHourly
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
		if err := tx.Where("hash IN ?", hashes).Delete(&ErrorOccurrence{}).Error; err != nil {
			return fmt.Errorf("delete app_error_occurrences: %w", err)
		}
		if err := tx.Where("hash IN ?", hashes).Delete(&ErrorHourly{}).Error; err != nil {
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
