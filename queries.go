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
// request context.
var listColumns = []string{
	"id", "hash", "host", "path", "method", "route", "exception_name", "message",
	"count", "created_on", "last_seen", "resolved", "resolved_at", "regressions",
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
var searchColumns = strings.Join(listColumns, ", ") + ", COUNT(*) OVER () AS total_rows"

// getError returns the error with the given hash, or gorm.ErrRecordNotFound.
func (s *store) getError(ctx context.Context, hash string) (*ErrorRecord, error) {
	var rec ErrorRecord
	err := s.db.WithContext(ctx).Where("hash = ?", hash).Take(&rec).Error
	if err != nil {
		return nil, fmt.Errorf("errmon: get error %s: %w", hash, err)
	}
	return &rec, nil
}

// lastOccurrences returns the newest samples of an error, newest first.
func (s *store) lastOccurrences(ctx context.Context, hash string, limit int) ([]ErrorOccurrence, error) {
	var out []ErrorOccurrence
	err := s.db.WithContext(ctx).Where("hash = ?", hash).Order("id DESC").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("errmon: occurrences of %s: %w", hash, err)
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
