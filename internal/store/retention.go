package store

import (
	"context"
	"fmt"
	"time"
)

// Retention of errors themselves (Config.RetentionDays, Config.MaxErrors):
// the writer prunes at start and then hourly, with the hourly counts and
// the receipts (see Monitor.prune).

// pruneBatch is how many errors one pruning statement deletes.
const pruneBatch = 500

// PruneErrors deletes the errors that retention no longer keeps, with their
// samples, hourly counts and history (and the history of errors deleted
// without it), and returns how many it deleted: resolved
// errors not seen for days (when days > 0), then, while more than
// maxErrors are stored (when maxErrors > 0), the oldest resolved and then
// the least recently seen.
func (s *Store) PruneErrors(ctx context.Context, now time.Time, days, maxErrors int) (int64, error) {
	var deleted int64
	if days > 0 {
		cutoff := DBTime(now.AddDate(0, 0, -days))
		for {
			var hashes []string
			err := s.db.WithContext(ctx).Model(&ErrorRecord{}).
				Where("resolved = ? AND last_seen < ?", true, cutoff).
				Order("last_seen").Limit(pruneBatch).Pluck("hash", &hashes).Error
			if err != nil {
				return deleted, fmt.Errorf("errmon: find errors past retention: %w", err)
			}
			n, err := s.Delete(ctx, hashes) // with their samples and hourly counts
			deleted += n
			if err != nil {
				return deleted, err
			}
			if len(hashes) < pruneBatch {
				break
			}
		}
	}
	// The history of errors deleted without it (by an earlier version,
	// or by another process while an action added to it).
	if err := s.pruneOrphanEvents(ctx); err != nil {
		return deleted, err
	}
	if maxErrors <= 0 {
		return deleted, nil
	}
	var n int64
	if err := s.db.WithContext(ctx).Model(&ErrorRecord{}).Count(&n).Error; err != nil {
		return deleted, fmt.Errorf("errmon: count errors: %w", err)
	}
	// The oldest resolved go first, then the least recently seen of all.
	for _, resolved := range []bool{true, false} {
		for excess := n - int64(maxErrors); excess > 0; excess = n - int64(maxErrors) {
			var hashes []string
			err := s.db.WithContext(ctx).Model(&ErrorRecord{}).Where("resolved = ?", resolved).
				Order("last_seen").Limit(int(min(excess, pruneBatch))).Pluck("hash", &hashes).Error
			if err != nil {
				return deleted, fmt.Errorf("errmon: find the oldest errors: %w", err)
			}
			if len(hashes) == 0 {
				break
			}
			gone, err := s.Delete(ctx, hashes)
			deleted += gone
			if err != nil {
				return deleted, err
			}
			n -= int64(len(hashes))
		}
	}
	return deleted, nil
}
