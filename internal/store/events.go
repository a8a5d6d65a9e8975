package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/errmon/errmon/internal/text"
	"gorm.io/gorm"
)

// The triage workflow: what the dashboard's actions do to errors (resolve,
// resolve in the next release, reopen, mute, unmute, snooze, unsnooze,
// note), and the history of each error (table "app_error_events"), which
// those actions and the writer (created, regressed) add to.

// ErrorEvent is one entry of an error's history (table
// "app_error_events"). Only the newest EventHistory of each error are
// kept; an error's events go when it is deleted.
type ErrorEvent struct {
	ID   uint   `gorm:"primaryKey;index:idx_app_error_events_hash_id,priority:2" json:"-"`
	Hash string `gorm:"size:64;not null;index:idx_app_error_events_hash_id,priority:1" json:"hash"`
	Kind string `gorm:"size:32;not null" json:"kind"` // one of the Event* kinds
	// Actor is who did it, from Config.Actor (masked, at most MaxActorBytes);
	// "" for what errmon itself did (created, regressed, a snooze ending).
	Actor string `gorm:"size:255;not null;default:''" json:"actor"`
	// Release is the release it happened in: a creation's or regression's
	// occurrence, or the release an error was resolved in the next release of.
	Release string `gorm:"column:release_name;size:64;not null;default:''" json:"release"` // RELEASE is reserved in MySQL
	// Note is a note's text (masked, at most MaxNoteBytes), or what a
	// snooze waits for.
	Note string    `gorm:"not null;default:''" json:"note"`
	At   time.Time `gorm:"not null" json:"at"`
}

// TableName implements GORM's Tabler.
func (ErrorEvent) TableName() string { return "app_error_events" }

// Kinds of ErrorEvent.
const (
	EventCreated   = "created"   // its first occurrence was stored (made by History from the row)
	EventResolved  = "resolved"  // resolved; with Release, in the next release of that release
	EventReopened  = "reopened"  // reopened from the dashboard
	EventRegressed = "regressed" // a resolved error occurred again (Release: where)
	EventMuted     = "muted"
	EventUnmuted   = "unmuted"
	EventSnoozed   = "snoozed"   // Note says until when
	EventUnsnoozed = "unsnoozed" // ended from the dashboard, or by errmon when it ran out (no Actor)
	EventNoted     = "noted"     // Note is the note
)

const (
	// MaxNoteBytes caps a note (and any event's Note).
	MaxNoteBytes = 4 << 10
	// MaxActorBytes caps an event's actor.
	MaxActorBytes = 64
	// EventHistory is how many events are kept per error (the newest).
	EventHistory = 100
	// maxEventsPerStatement bounds the rows of one insert of events (6
	// bind parameters each).
	maxEventsPerStatement = 500
)

// regressionEvent is the history entry of a write that reopened o's
// error. (A write that creates an error adds none: History makes the
// created entry from the row, so that a storm of new errors writes no
// history, and the entry never leaves the newest EventHistory.)
func regressionEvent(o *Write) ErrorEvent {
	return ErrorEvent{Hash: o.Hash, Kind: EventRegressed, Release: o.Release, At: DBTime(o.Last)}
}

// insertEvents inserts events, in statements of at most
// maxEventsPerStatement rows (one for a chunk of the writer).
func insertEvents(tx *gorm.DB, events []ErrorEvent) error {
	for part := range slices.Chunk(events, maxEventsPerStatement) {
		var q strings.Builder
		q.WriteString("INSERT INTO app_error_events (hash, kind, actor, release_name, note, at) VALUES ")
		args := make([]any, 0, 6*len(part))
		for i, e := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?)")
			args = append(args, e.Hash, e.Kind, text.Cut(e.Actor, MaxActorBytes), text.Cut(e.Release, 64),
				text.Cut(e.Note, MaxNoteBytes), DBTime(e.At))
		}
		if err := tx.Exec(q.String(), args...).Error; err != nil {
			return fmt.Errorf("insert app_error_events: %w", err)
		}
	}
	return nil
}

// pruneEventsSQL deletes, in one statement for the errors listed, the
// events beyond the newest EventHistory of each (a derived table, as in
// pruneOccurrencesSQL, for MySQL).
const pruneEventsSQL = `DELETE FROM app_error_events WHERE id IN
 (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY hash ORDER BY id DESC) AS newer
   FROM app_error_events WHERE hash IN ?) ranked WHERE newer > ?)`

// addEvents inserts the events of an action and keeps the newest
// EventHistory of each error they are about.
func addEvents(tx *gorm.DB, events []ErrorEvent) error {
	if len(events) == 0 {
		return nil
	}
	if err := insertEvents(tx, events); err != nil {
		return err
	}
	hashes := make([]string, 0, len(events))
	for _, e := range events {
		hashes = append(hashes, e.Hash)
	}
	slices.Sort(hashes)
	hashes = slices.Compact(hashes)
	if err := tx.Exec(pruneEventsSQL, hashes, EventHistory).Error; err != nil {
		return fmt.Errorf("prune app_error_events: %w", err)
	}
	return nil
}

// Events returns the newest events of an error, newest first, at most
// limit (and EventHistory), their notes read no longer than MaxNoteBytes.
func (s *Store) Events(ctx context.Context, hash string, limit int) ([]ErrorEvent, error) {
	limit = min(max(limit, 1), EventHistory)
	var evs []ErrorEvent
	err := s.db.WithContext(ctx).Model(&ErrorEvent{}).
		Select(fmt.Sprintf("id, hash, substr(kind, 1, 32) AS kind, substr(actor, 1, %d) AS actor, substr(release_name, 1, 64) AS release_name, substr(note, 1, %d) AS note, at",
			MaxActorBytes, MaxNoteBytes)).
		Where("hash = ?", hash).Order("id DESC").Limit(limit).Find(&evs).Error
	if err != nil {
		return nil, fmt.Errorf("errmon: history of %s: %w", hash, err)
	}
	for i := range evs {
		evs[i].Actor = text.Cut(evs[i].Actor, MaxActorBytes)
		evs[i].Note = text.Cut(evs[i].Note, MaxNoteBytes)
	}
	return evs, nil
}

// History is rec's history, newest first: its newest stored events (at
// most limit, see Events), then its creation, made from rec (CreatedOn,
// FirstRelease) unless an earlier version stored it among them.
func (s *Store) History(ctx context.Context, rec *ErrorRecord, limit int) ([]ErrorEvent, error) {
	evs, err := s.Events(ctx, rec.Hash, limit)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		if e.Kind == EventCreated {
			return evs, nil
		}
	}
	return append(evs, ErrorEvent{Hash: rec.Hash, Kind: EventCreated, Release: rec.FirstRelease, At: rec.CreatedOn}), nil
}

// change is one action on the errors of hashes that where selects: in one
// transaction it finds them, updates them with set and records an event
// for each (ev, given the error's hash and, when readBack is set, that
// column's value after the update). It returns how many errors changed.
func (s *Store) change(ctx context.Context, hashes []string, where string, whereArgs []any, set map[string]any,
	readBack string, ev func(hash, value string) ErrorEvent) (int64, error) {
	if len(hashes) == 0 {
		return 0, nil
	}
	var n int64
	err := s.inWriteTx(ctx, func(tx *gorm.DB) error {
		n = 0
		var found []string
		if err := tx.Model(&ErrorRecord{}).Where("hash IN ?", hashes).Where(where, whereArgs...).
			Order("hash").Pluck("hash", &found).Error; err != nil {
			return fmt.Errorf("find errors: %w", err)
		}
		if len(found) == 0 {
			return nil
		}
		r := tx.Model(&ErrorRecord{}).Where("hash IN ?", found).Where(where, whereArgs...).Updates(set)
		if r.Error != nil {
			return fmt.Errorf("update app_errors: %w", r.Error)
		}
		n = r.RowsAffected
		values := map[string]string{}
		if readBack != "" {
			// The rows updated are this transaction's until it ends:
			// what it reads of them is what its update left.
			var rows []struct{ Hash, Value string }
			if err := tx.Model(&ErrorRecord{}).Select("hash, "+readBack+" AS value").
				Where("hash IN ?", found).Find(&rows).Error; err != nil {
				return fmt.Errorf("read back app_errors: %w", err)
			}
			for _, r := range rows {
				values[r.Hash] = r.Value
			}
		}
		events := make([]ErrorEvent, 0, len(found))
		for _, h := range found {
			events = append(events, ev(h, values[h]))
		}
		return addEvents(tx, events)
	})
	if err != nil {
		return 0, fmt.Errorf("errmon: %w", err)
	}
	return n, nil
}

// busyRetries is how many times inWriteTx runs a transaction that SQLite
// refused as busy.
const busyRetries = 5

// inWriteTx is InTx for a transaction that reads before it writes (an
// action of the dashboard). On SQLite in WAL mode, such a transaction
// cannot take the write lock once another connection has committed since
// it began reading: SQLite refuses at once ("database is locked",
// whatever the busy timeout). So on SQLite the transaction starts with a
// write that matches nothing, which takes the lock first (waiting within
// the busy timeout); a transaction still refused as busy (a DSN without a
// busy timeout) is started over a few times. Other databases wait for the
// lock instead.
func (s *Store) inWriteTx(ctx context.Context, fc func(tx *gorm.DB) error) error {
	sqlite := s.db.Dialector.Name() == "sqlite"
	run := fc
	if sqlite {
		run = func(tx *gorm.DB) error {
			// A write first: it takes the write lock, waiting as long
			// as the busy timeout lets it, before the reads.
			if err := tx.Exec("UPDATE app_error_writes SET token = token WHERE 1 = 0").Error; err != nil {
				return fmt.Errorf("take the write lock: %w", err)
			}
			return fc(tx)
		}
	}
	for attempt := 0; ; attempt++ {
		err := s.InTx(ctx, run)
		var commit *CommitError
		if err == nil || !sqlite || attempt == busyRetries || !SQLiteBusy(err) || errors.As(err, &commit) {
			return err // (a failed commit is not retried: it may have been stored)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
}

// SQLiteBusy reports whether err is SQLite's refusal of a lock
// (SQLITE_BUSY, SQLITE_LOCKED and their extended codes), as the drivers
// word it: the statement was not run.
func SQLiteBusy(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "database table is locked") ||
		strings.Contains(msg, "busy")
}

// Resolve resolves the open errors of hashes and returns how many changed.
// With nextRelease, only errors that have a release are resolved, and each
// in the next release of its LastRelease (see
// ErrorRecord.ResolvedInRelease). Resolving ends a snooze.
func (s *Store) Resolve(ctx context.Context, hashes []string, nextRelease bool, actor string, now time.Time) (int64, error) {
	at := DBTime(now)
	where, args := "resolved = ?", []any{false}
	set := map[string]any{"resolved": true, "resolved_at": at, "resolved_in_release": "",
		"snoozed_until": nil, "snooze_until_count": 0}
	readBack := ""
	if nextRelease {
		where, args = "resolved = ? AND last_release <> ?", []any{false, ""}
		set["resolved_in_release"] = gorm.Expr("last_release")
		readBack = "resolved_in_release"
	}
	return s.change(ctx, hashes, where, args, set, readBack, func(hash, release string) ErrorEvent {
		return ErrorEvent{Hash: hash, Kind: EventResolved, Actor: actor, Release: release, At: at}
	})
}

// Reopen reopens the resolved errors of hashes and returns how many
// changed.
func (s *Store) Reopen(ctx context.Context, hashes []string, actor string, now time.Time) (int64, error) {
	at := DBTime(now)
	return s.change(ctx, hashes, "resolved = ?", []any{true},
		map[string]any{"resolved": false, "resolved_at": nil, "resolved_in_release": ""}, "",
		func(hash, _ string) ErrorEvent {
			return ErrorEvent{Hash: hash, Kind: EventReopened, Actor: actor, At: at}
		})
}

// SetMuted mutes (or unmutes) the errors of hashes and returns how many
// changed.
func (s *Store) SetMuted(ctx context.Context, hashes []string, muted bool, actor string, now time.Time) (int64, error) {
	at := DBTime(now)
	kind := EventUnmuted
	if muted {
		kind = EventMuted
	}
	return s.change(ctx, hashes, "muted = ?", []any{!muted}, map[string]any{"muted": muted}, "",
		func(hash, _ string) ErrorEvent { return ErrorEvent{Hash: hash, Kind: kind, Actor: actor, At: at} })
}

// MaxSnoozeCount bounds a snooze "until N more occurrences".
const MaxSnoozeCount = 1_000_000_000

// Snooze holds back the alerts of the open errors of hashes until the
// time until (when not nil), or else until more occurrences more (1 to
// MaxSnoozeCount); it replaces an earlier snooze. what says it in the
// history ("for 24 hours"). It returns how many errors it snoozed.
func (s *Store) Snooze(ctx context.Context, hashes []string, until *time.Time, more int64, what, actor string, now time.Time) (int64, error) {
	at := DBTime(now)
	set := map[string]any{}
	switch {
	case until != nil:
		set["snoozed_until"], set["snooze_until_count"] = DBTime(*until), 0
	case more >= 1 && more <= MaxSnoozeCount:
		set["snoozed_until"], set["snooze_until_count"] = nil, gorm.Expr("count + ?", more)
	default:
		return 0, fmt.Errorf("errmon: snooze: a time or 1 to %d more occurrences", MaxSnoozeCount)
	}
	return s.change(ctx, hashes, "resolved = ?", []any{false}, set, "",
		func(hash, _ string) ErrorEvent {
			return ErrorEvent{Hash: hash, Kind: EventSnoozed, Actor: actor, Note: what, At: at}
		})
}

// Unsnooze ends the snoozes of the errors of hashes and returns how many
// changed.
func (s *Store) Unsnooze(ctx context.Context, hashes []string, actor string, now time.Time) (int64, error) {
	at := DBTime(now)
	return s.change(ctx, hashes, "(snoozed_until IS NOT NULL OR snooze_until_count <> ?)", []any{0},
		map[string]any{"snoozed_until": nil, "snooze_until_count": 0}, "",
		func(hash, _ string) ErrorEvent {
			return ErrorEvent{Hash: hash, Kind: EventUnsnoozed, Actor: actor, At: at}
		})
}

// AddNote adds a note (cut to MaxNoteBytes; the caller masks it) to the
// history of the error with hash, if it exists, and reports whether it
// does.
func (s *Store) AddNote(ctx context.Context, hash, actor, note string, now time.Time) (bool, error) {
	var ok bool
	err := s.InTx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&ErrorRecord{}).Where("hash = ?", hash).Count(&n).Error; err != nil {
			return fmt.Errorf("find error: %w", err)
		}
		if ok = n > 0; !ok {
			return nil
		}
		return addEvents(tx, []ErrorEvent{{Hash: hash, Kind: EventNoted, Actor: actor, Note: note, At: DBTime(now)}})
	})
	if err != nil {
		return false, fmt.Errorf("errmon: add note: %w", err)
	}
	return ok, nil
}

// Snoozed reports whether a write's result finds its error snoozed, and
// whether that snooze is over at now (its time passed or its count was
// reached).
func Snoozed(r Result, now time.Time) (snoozed, over bool) {
	if r.SnoozedUntil == nil && r.SnoozeUntilCount <= 0 {
		return false, false
	}
	over = r.SnoozedUntil != nil && !now.Before(*r.SnoozedUntil) ||
		r.SnoozeUntilCount > 0 && r.Count >= r.SnoozeUntilCount
	return true, over
}

// ClaimSnoozeEnd decides, in the database, which process ends the snooze
// of an error that ran out (see Snoozed) and sends its alert: the snooze
// is cleared, the alert time noted and the end recorded in the history by
// exactly one caller, however many processes ask.
func (s *Store) ClaimSnoozeEnd(ctx context.Context, hash string, now time.Time) (bool, error) {
	at := DBTime(now)
	var ok bool
	err := s.InTx(ctx, func(tx *gorm.DB) error {
		r := tx.Model(&ErrorRecord{}).Where("hash = ? AND muted = ?", hash, false).
			Where("((snoozed_until IS NOT NULL AND snoozed_until <= ?) OR (snooze_until_count > ? AND count >= snooze_until_count))", at, 0).
			Updates(map[string]any{"snoozed_until": nil, "snooze_until_count": 0, "last_notified_at": at})
		if r.Error != nil {
			return fmt.Errorf("end snooze: %w", r.Error)
		}
		if ok = r.RowsAffected == 1; !ok {
			return nil
		}
		return addEvents(tx, []ErrorEvent{{Hash: hash, Kind: EventUnsnoozed, Note: "the snooze ran out", At: at}})
	})
	if err != nil {
		return false, fmt.Errorf("errmon: %w", err)
	}
	return ok, nil
}

// pruneOrphanEvents deletes the events of errors that are gone (deleted
// by a process of an earlier version, or meanwhile by another).
func (s *Store) pruneOrphanEvents(ctx context.Context) error {
	err := s.db.WithContext(ctx).Exec("DELETE FROM app_error_events WHERE NOT EXISTS " +
		"(SELECT 1 FROM app_errors WHERE app_errors.hash = app_error_events.hash)").Error
	if err != nil {
		return fmt.Errorf("errmon: prune the events of deleted errors: %w", err)
	}
	return nil
}
