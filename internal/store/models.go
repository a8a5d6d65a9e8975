package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrorRecord is one bug: every occurrence with the same fingerprint is
// counted in one row of the table "app_errors".
type ErrorRecord struct {
	// ID breaks ties of every list order (see the composite indexes below:
	// each list order and status filter is one index range).
	ID            uint   `gorm:"primaryKey;index:idx_app_errors_last_seen_id,priority:2;index:idx_app_errors_count_id,priority:2;index:idx_app_errors_created_on_id,priority:2;index:idx_app_errors_resolved_last_seen_id,priority:3;index:idx_app_errors_resolved_count_id,priority:3;index:idx_app_errors_resolved_created_on_id,priority:3;index:idx_app_errors_muted_id,priority:2;index:idx_app_errors_users_id,priority:2;index:idx_app_errors_resolved_users_id,priority:3" json:"-"`
	Hash          string `gorm:"size:64;not null;uniqueIndex" json:"hash"` // fingerprint, sha256 hex
	Host          string `gorm:"not null;default:''" json:"host"`
	Path          string `gorm:"not null;default:''" json:"path"` // path only; the masked query is in RequestData
	Method        string `gorm:"size:16;not null;default:''" json:"method"`
	Route         string `gorm:"not null;default:''" json:"route"` // c.FullPath()
	ExceptionName string `gorm:"not null;default:''" json:"exception_name"`
	Message       string `gorm:"not null;default:''" json:"message"`
	Traceback     string `gorm:"not null;default:''" json:"traceback"`    // newest frame first
	RequestData   string `gorm:"not null;default:''" json:"request_data"` // JSON of the masked context
	Count         int64  `gorm:"not null;default:0;index:idx_app_errors_count_id,priority:1;index:idx_app_errors_resolved_count_id,priority:2" json:"count"`
	// CreatedOn is when the error was first seen; it never moves.
	CreatedOn time.Time `gorm:"not null;index:idx_app_errors_created_on_id,priority:1;index:idx_app_errors_resolved_created_on_id,priority:2" json:"created_on"`
	// LastSeen is when the error was last seen.
	LastSeen time.Time `gorm:"not null;index:idx_app_errors_last_seen_id,priority:1;index:idx_app_errors_resolved_last_seen_id,priority:2" json:"last_seen"`
	// Resolved is set from the dashboard; an occurrence of a resolved error
	// reopens it (a regression) and keeps its count.
	Resolved   bool       `gorm:"not null;default:false;index:idx_app_errors_resolved_last_seen_id,priority:1;index:idx_app_errors_resolved_count_id,priority:1;index:idx_app_errors_resolved_created_on_id,priority:1" json:"resolved"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// Regressions counts how often the error reopened after being resolved.
	Regressions int64 `gorm:"not null;default:0" json:"regressions"`
	// LastNotifiedAt is when the last alert for this error was sent.
	LastNotifiedAt *time.Time `json:"last_notified_at,omitempty"`
	// WriteToken is an internal marker: the token of the write that created
	// or last reopened the row, which tells that write it must alert.
	WriteToken string `gorm:"size:32;not null;default:''" json:"-"`
	// FirstRelease and LastRelease are the Config.Release of the error's
	// first and latest occurrences.
	FirstRelease string `gorm:"size:64;not null;default:''" json:"first_release"`
	LastRelease  string `gorm:"size:64;not null;default:''" json:"last_release"`
	// Environment is the Config.Environment of its latest occurrence.
	Environment string `gorm:"size:64;not null;default:''" json:"environment"`
	// Culprit is the function to blame of its latest occurrence (the newest
	// in-app frame; for a c.Error without a stack, its handler).
	Culprit string `gorm:"size:512;not null;default:''" json:"culprit"`
	// Muted is set from the dashboard (mute, unmute): a muted error is
	// counted as ever but never alerted on.
	Muted bool `gorm:"not null;default:false;index:idx_app_errors_muted_id,priority:1" json:"muted"`
	// SnoozedUntil and SnoozeUntilCount, set from the dashboard (snooze),
	// hold the error's alerts back until that time, or until its count
	// reaches that number (0: no such bound). Its first occurrence past
	// either sends one alert (ReasonOngoing) and clears both.
	SnoozedUntil     *time.Time `json:"snoozed_until,omitempty"`
	SnoozeUntilCount int64      `gorm:"not null;default:0" json:"snooze_until_count"`
	// ResolvedInRelease, on a resolved error, is the release it was
	// resolved "in the next release" of (its LastRelease then): while it
	// recurs in that release only, it stays resolved and is counted; its
	// first occurrence in any other release reopens it (a regression).
	// "" for an error resolved plainly.
	ResolvedInRelease string `gorm:"size:64;not null;default:''" json:"resolved_in_release"`
	// Users is how many distinct users the error hit (see errmon.SetUser):
	// exact while UsersScale is 1, an estimate past UsersExact users.
	Users int64 `gorm:"not null;default:0;index:idx_app_errors_users_id,priority:1;index:idx_app_errors_resolved_users_id,priority:2" json:"users"`
	// UsersScale is 1 while Users is exact, else how many users each
	// sampled one stands for (a power of two; see users.go).
	UsersScale int64 `gorm:"not null;default:1" json:"-"`
}

// UsersEstimated reports whether Users is an estimate rather than an exact
// count.
func (r *ErrorRecord) UsersEstimated() bool { return r.UsersScale > 1 }

// TableName implements GORM's Tabler.
func (ErrorRecord) TableName() string { return "app_errors" }

// ErrorOccurrence is a sample of one occurrence of an error, kept for the
// dashboard's detail page. Only the newest occurrenceHistory samples of
// each error are kept (table "app_error_occurrences").
type ErrorOccurrence struct {
	ID          uint      `gorm:"primaryKey" json:"-"`
	Hash        string    `gorm:"size:64;not null;index" json:"hash"`
	SeenAt      time.Time `gorm:"not null" json:"seen_at"`
	Host        string    `gorm:"not null;default:''" json:"host"`
	Path        string    `gorm:"not null;default:''" json:"path"`
	Method      string    `gorm:"size:16;not null;default:''" json:"method"`
	Message     string    `gorm:"not null;default:''" json:"message"`
	RequestData string    `gorm:"not null;default:''" json:"request_data"`
	// Release, Environment and Server say where it happened, Status what
	// its request answered (0 outside a request).
	Release     string `gorm:"column:release_name;size:64;not null;default:''" json:"release"` // RELEASE is reserved in MySQL
	Environment string `gorm:"size:64;not null;default:''" json:"environment"`
	Server      string `gorm:"not null;default:''" json:"server"`
	Status      int    `gorm:"not null;default:0" json:"status"`
	// User is the id of the user it hit (errmon.SetUser), masked; "" when
	// none was set.
	User string `gorm:"column:user_id;size:255;not null;default:''" json:"user"`
}

// TableName implements GORM's Tabler.
func (ErrorOccurrence) TableName() string { return "app_error_occurrences" }

// ErrorHourly counts the occurrences of an error per hour, for the
// dashboard's charts (table "app_error_hourly"). Buckets older than
// hourlyRetention are pruned.
type ErrorHourly struct {
	Hash  string    `gorm:"size:64;not null;primaryKey" json:"hash"`
	Hour  time.Time `gorm:"not null;primaryKey;index" json:"hour"` // start of the hour, UTC
	Count int64     `gorm:"not null;default:0" json:"count"`
}

// TableName implements GORM's Tabler.
func (ErrorHourly) TableName() string { return "app_error_hourly" }

// ErrorWrite is a receipt: one row per stored batch of errors, written in
// the batch's transaction (table "app_error_writes"). When the answer to a
// commit is lost, the writer looks for the batch's token to learn whether
// it was stored, rather than storing it twice. Receipts older than
// receiptRetention are pruned.
type ErrorWrite struct {
	Token     string    `gorm:"size:32;primaryKey" json:"token"`
	WrittenAt time.Time `gorm:"not null;index" json:"written_at"`
}

// TableName implements GORM's Tabler.
func (ErrorWrite) TableName() string { return "app_error_writes" }

const (
	// ReceiptRetention is how long write receipts are kept.
	ReceiptRetention = 24 * time.Hour
	// OccurrenceHistory is how many occurrence samples are kept per error.
	OccurrenceHistory = 10
	// HourlyRetention is how long hourly counts are kept.
	HourlyRetention = 14 * 24 * time.Hour
)

// Store writes coalesced occurrences to the database.
type Store struct {
	db     *gorm.DB
	search searchIndex // how the dashboard searches (searchindex.go), set by migrate
}

// migrateLockKey is the PostgreSQL advisory lock that serializes errmon's
// migrations ("errmon" in ASCII).
const migrateLockKey = 0x6572726d6f6e

// migrateLockName is the MySQL named lock that does the same.
const migrateLockName = "errmon_migrate"

// Migrate creates or updates errmon's tables. Several instances of a service
// may start at once on one database: on PostgreSQL the migration runs in a
// transaction holding an advisory lock, on MySQL under a named lock, so
// that they take turns; on any
// database a migration that lost a race (a table created meanwhile) is
// tried again, and then finds the tables in place.
func (s *Store) Migrate(ctx context.Context) error {
	models := []any{&ErrorRecord{}, &ErrorOccurrence{}, &ErrorHourly{}, &ErrorWrite{}, &ErrorEvent{}, &ErrorSource{}, &ErrorUser{}}
	db := s.db.WithContext(ctx)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("errmon: migrate tables: %w (after %w)", ctx.Err(), err)
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
		}
		switch {
		case db.Dialector.Name() == "postgres":
			err = db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrateLockKey).Error; err != nil {
					return fmt.Errorf("take the migration lock: %w", err)
				}
				return tx.AutoMigrate(models...)
			})
		case isMySQL(db):
			// MySQL's DDL commits at once: a named lock, held by one
			// connection, serializes the migrations instead.
			err = db.Connection(func(conn *gorm.DB) error {
				var got *int
				if err := conn.Raw("SELECT GET_LOCK(?, ?)", migrateLockName, 60).Scan(&got).Error; err != nil {
					return fmt.Errorf("take the migration lock: %w", err)
				}
				if got == nil || *got != 1 {
					return errors.New("take the migration lock: timed out")
				}
				defer conn.Exec("SELECT RELEASE_LOCK(?)", migrateLockName)
				return createMySQLTables(conn)
			})
		default:
			err = db.AutoMigrate(models...)
		}
		err = s.migrateListIndexes(ctx, err) // searchindex.go: the dashboard's indexes
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("errmon: migrate tables: %w", err)
}

// Result tells what one write did to an error's row.
type Result struct {
	ID          uint
	Count       int64 // the count after this write
	Created     bool  // this write inserted the row
	Reopened    bool  // this write reopened a resolved row
	Regressions int64
	// LastNotifiedAt is when the error was last alerted on, as the write
	// found it (nil: never), so that NotifyEvery claims only the errors due.
	LastNotifiedAt *time.Time
	// Resolved, Muted, SnoozedUntil and SnoozeUntilCount are the row's,
	// after the write: whether its alerts are held back. (A write leaves
	// an error resolved when it was resolved in the next release and the
	// write is of that release.)
	Resolved         bool
	Muted            bool
	SnoozedUntil     *time.Time
	SnoozeUntilCount int64
	// Users and UsersScale are the error's (see ErrorRecord) after the
	// write, when it named users (else 0).
	Users, UsersScale int64
}

// The upsert of app_errors for one or many rows: upsertHeadSQL, then
// upsertRowSQL per error (comma-separated), then upsertTailSQL. Columns are
// qualified with the table, as PostgreSQL requires in DO UPDATE.
const (
	upsertHeadSQL = `INSERT INTO app_errors
 (hash, host, path, method, route, exception_name, message, traceback, request_data, count, created_on, last_seen, resolved, regressions, write_token, first_release, last_release, environment, culprit)
 VALUES `
	upsertRowSQL  = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)"
	upsertTailSQL = `
 ON CONFLICT (hash) DO UPDATE SET
  count = app_errors.count + excluded.count,
  last_seen = CASE WHEN excluded.last_seen > app_errors.last_seen THEN excluded.last_seen ELSE app_errors.last_seen END,
  host = excluded.host,
  path = excluded.path,
  method = excluded.method,
  route = excluded.route,
  message = excluded.message,
  traceback = excluded.traceback,
  request_data = excluded.request_data,
  last_release = excluded.last_release,
  environment = excluded.environment,
  culprit = excluded.culprit,
  write_token = CASE WHEN ` + reopensSQL + ` THEN excluded.write_token ELSE app_errors.write_token END,
  regressions = CASE WHEN ` + reopensSQL + ` THEN app_errors.regressions + 1 ELSE app_errors.regressions END,
  resolved = CASE WHEN ` + staysResolvedSQL + ` THEN app_errors.resolved ELSE ? END,
  resolved_at = CASE WHEN ` + staysResolvedSQL + ` THEN app_errors.resolved_at ELSE NULL END,
  resolved_in_release = CASE WHEN ` + staysResolvedSQL + ` THEN app_errors.resolved_in_release ELSE '' END
 RETURNING ` + returnedColumns
)

// A write of a resolved error reopens it (a regression), unless the error
// was resolved in the next release and the write's release is the one it
// was resolved in (staysResolvedSQL): an old instance still running
// during a rolling deploy. The decision is the upsert's, so that every
// process agrees on it.
const (
	staysResolvedSQL = "(app_errors.resolved AND app_errors.resolved_in_release <> '' AND excluded.last_release = app_errors.resolved_in_release)"
	reopensSQL       = "(app_errors.resolved AND NOT (app_errors.resolved_in_release <> '' AND excluded.last_release = app_errors.resolved_in_release))"
	// The same for MySQL's ON DUPLICATE KEY UPDATE.
	staysResolvedMySQL = "(resolved AND resolved_in_release <> '' AND VALUES(last_release) = resolved_in_release)"
	reopensMySQL       = "(resolved AND NOT (resolved_in_release <> '' AND VALUES(last_release) = resolved_in_release))"
)

// upsertTailMySQL is upsertTailSQL for MySQL and MariaDB, which have ON
// DUPLICATE KEY UPDATE instead of ON CONFLICT and no RETURNING there: the
// rows are read back in the same transaction (see writeManyTx). MySQL
// assigns left to right, each assignment seeing the ones before it, so
// the columns that read resolved come before resolved is cleared (and
// resolved_in_release, read by resolved's, is cleared only when resolved
// is too).
const upsertTailMySQL = `
 ON DUPLICATE KEY UPDATE
  write_token = IF(` + reopensMySQL + `, VALUES(write_token), write_token),
  regressions = IF(` + reopensMySQL + `, regressions + 1, regressions),
  resolved_at = IF(` + staysResolvedMySQL + `, resolved_at, NULL),
  count = count + VALUES(count),
  last_seen = GREATEST(last_seen, VALUES(last_seen)),
  host = VALUES(host),
  path = VALUES(path),
  method = VALUES(method),
  route = VALUES(route),
  message = VALUES(message),
  traceback = VALUES(traceback),
  request_data = VALUES(request_data),
  last_release = VALUES(last_release),
  environment = VALUES(environment),
  culprit = VALUES(culprit),
  resolved = IF(` + staysResolvedMySQL + `, resolved, ?),
  resolved_in_release = IF(` + staysResolvedMySQL + `, resolved_in_release, '')`

// The hourly counts' upsert: hourlyHeadSQL, "(?, ?, ?)" per bucket, then
// hourlyTailSQL (hourlyTailMySQL).
const (
	hourlyHeadSQL   = "INSERT INTO app_error_hourly (hash, hour, count) VALUES "
	hourlyTailSQL   = " ON CONFLICT (hash, hour) DO UPDATE SET count = app_error_hourly.count + excluded.count"
	hourlyTailMySQL = " ON DUPLICATE KEY UPDATE count = count + VALUES(count)"
)

// isMySQL reports whether db speaks MySQL's dialect (MySQL or MariaDB).
func isMySQL(db *gorm.DB) bool { return db.Dialector.Name() == "mysql" }

// pruneOccurrencesSQL deletes, in one statement for the errors listed, the
// samples beyond the newest occurrenceHistory of each. The ranked rows are
// a derived table, so that the DELETE never reads the table it changes
// (which MySQL refuses).
const pruneOccurrencesSQL = `DELETE FROM app_error_occurrences WHERE id IN
 (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY hash ORDER BY id DESC) AS newer
   FROM app_error_occurrences WHERE hash IN ?) ranked WHERE newer > ?)`

// Write is what one write pass stores of one error: its newest sample and
// how many occurrences it had, when.
type Write struct {
	Hash, Host, Path, Method, Route, ExceptionName, Message, Traceback, RequestData string

	// Release, Environment, Server, Status, Culprit and User are the
	// newest sample's.
	Release, Environment, Server, Culprit, User string
	Status                                      int

	Count       int64
	First, Last time.Time
	Hours       iter.Seq2[int64, int64] // unix start of hour -> occurrences, in order
	// Samples are the occurrences stored as samples, oldest first (at most
	// OccurrenceHistory); none means one, made of the fields above.
	Samples []Sample
	// UserKeys are the keys of the distinct users its occurrences hit
	// (see users.go), those below the threshold of UsersScale (a power of
	// two, 1: all of them; the writer thins what it holds the same way).
	UserKeys   []int64
	UsersScale int64
}

// Sample is one occurrence stored in app_error_occurrences.
type Sample struct {
	SeenAt                                   time.Time
	Host, Path, Method, Message, RequestData string
	Release, Environment, Server, User       string
	Status                                   int
}

// WriteBatch stores coalesced errors (one or many) and the receipt token
// in one transaction: the row upserts, the hourly counts and the newest
// samples. Either all of it is stored or none, so a failed write can be
// retried without double counting, once [store.settled] tells whether it
// was stored.
func (s *Store) WriteBatch(ctx context.Context, token string, ws []Write) ([]Result, error) {
	var res []Result
	err := s.InTx(ctx, func(tx *gorm.DB) error {
		var err error
		if res, err = writeManyTx(tx, token, ws); err != nil {
			return err
		}
		return insertReceipt(tx, token)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

type returnedHashRow struct {
	Hash             string
	ID               uint
	Count            int64
	WriteToken       string
	Regressions      int64
	LastNotifiedAt   *time.Time
	Resolved         bool
	Muted            bool
	SnoozedUntil     *time.Time
	SnoozeUntilCount int64
	UsersScale       int64
}

// returnedColumns are what a write reads back of each row it wrote.
const returnedColumns = "hash, id, count, write_token, regressions, last_notified_at, resolved, muted, snoozed_until, snooze_until_count, users_scale"

// The samples' insert: samplesHeadSQL, then samplesRowSQL per error.
const (
	samplesHeadSQL = "INSERT INTO app_error_occurrences (hash, seen_at, host, path, method, message, request_data, release_name, environment, server, status, user_id) VALUES "
	samplesRowSQL  = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

// Bind parameters per error in the statements of a chunk: the upsert of
// app_errors and the samples' insert (the hourly counts take 3 per hour).
const (
	upsertParamsPerRow = 18
	sampleParamsPerRow = 12
)

// writeManyTx writes several coalesced errors (of distinct hashes, sorted)
// inside tx with one statement per table: the upsert of app_errors, the
// hourly counts, the samples, and one pruning the samples of the errors
// seen more than occurrenceHistory times: a chunk costs the same few
// statements whether its errors are new or hot.
//
// The statements are built by hand and read with Rows, not through GORM's
// Create or Scan: Create reflects over every sample, and Scan renders the
// whole statement with its values as text (for its logger) even when the
// logger is silent, which for a chunk of new errors costs as much as
// sending it.
func writeManyTx(tx *gorm.DB, token string, ws []Write) ([]Result, error) {
	var (
		q    strings.Builder
		args = make([]any, 0, upsertParamsPerRow*len(ws)+1)
	)
	q.Grow(len(upsertHeadSQL) + len(ws)*(len(upsertRowSQL)+2) + len(upsertTailSQL))
	q.WriteString(upsertHeadSQL)
	for i := range ws {
		o := &ws[i]
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(upsertRowSQL)
		args = append(args, o.Hash, o.Host, o.Path, o.Method, o.Route, o.ExceptionName, o.Message,
			o.Traceback, o.RequestData, o.Count, o.First, o.Last, false, token, o.Release, o.Release, o.Environment, o.Culprit)
	}
	mysql := isMySQL(tx)
	rows := make([]returnedHashRow, 0, len(ws))
	if mysql {
		q.WriteString(upsertTailMySQL)
		args = append(args, false)
		if err := tx.Exec(q.String(), args...).Error; err != nil {
			return nil, fmt.Errorf("upsert app_errors: %w", err)
		}
		// The rows this transaction wrote are locked until it ends: what
		// it reads of them is exactly what its upsert left.
		hashes := make([]string, len(ws))
		for i := range ws {
			hashes[i] = ws[i].Hash
		}
		var err error
		if rows, err = scanReturned(tx.Model(&ErrorRecord{}).Select(returnedColumns).
			Where("hash IN ?", hashes), rows); err != nil {
			return nil, fmt.Errorf("read back app_errors: %w", err)
		}
	} else {
		q.WriteString(upsertTailSQL)
		args = append(args, false)
		var err error
		if rows, err = scanReturned(tx.Raw(q.String(), args...), rows); err != nil {
			return nil, fmt.Errorf("upsert app_errors: %w", err)
		}
	}
	clear(args) // the texts of the chunk: let them go before the next statements
	if len(rows) != len(ws) {
		return nil, fmt.Errorf("upsert app_errors: %d rows returned for %d errors", len(rows), len(ws))
	}
	byHash := make(map[string]*returnedHashRow, len(rows))
	for i := range rows {
		byHash[rows[i].Hash] = &rows[i]
	}

	res := make([]Result, len(ws))
	var (
		hours []hourlyCount
		sq    strings.Builder
		sargs = make([]any, 0, sampleParamsPerRow*samplesIn(ws))
		prune []string
		// The chunk's regressed errors, for their history: one insert
		// for all of them (events.go).
		events []ErrorEvent
	)
	sq.Grow(len(samplesHeadSQL) + samplesIn(ws)*(len(samplesRowSQL)+2))
	sq.WriteString(samplesHeadSQL)
	for i := range ws {
		o := &ws[i]
		r, ok := byHash[o.Hash]
		if !ok {
			return nil, fmt.Errorf("upsert app_errors: no row returned for %s", o.Hash)
		}
		res[i] = Result{ID: r.ID, Count: r.Count, Regressions: r.Regressions, LastNotifiedAt: r.LastNotifiedAt,
			Resolved: r.Resolved, Muted: r.Muted, SnoozedUntil: r.SnoozedUntil, SnoozeUntilCount: r.SnoozeUntilCount}
		if r.WriteToken == token {
			res[i].Created = r.Count == o.Count
			res[i].Reopened = !res[i].Created
			if res[i].Reopened {
				events = append(events, regressionEvent(o))
			}
		}
		// Hours in order, like the hashes: two writers of one error take
		// its hourly rows' locks in the same order.
		for hour, n := range o.Hours {
			hours = append(hours, hourlyCount{o.Hash, time.Unix(hour, 0).UTC(), n})
		}
		samples := o.Samples
		if len(samples) == 0 {
			samples = []Sample{{SeenAt: o.Last, Host: o.Host, Path: o.Path, Method: o.Method, Message: o.Message,
				RequestData: o.RequestData, Release: o.Release, Environment: o.Environment, Server: o.Server, Status: o.Status, User: o.User}}
		}
		for j := range samples {
			sm := &samples[j]
			if i > 0 || j > 0 {
				sq.WriteString(", ")
			}
			sq.WriteString(samplesRowSQL)
			sargs = append(sargs, o.Hash, sm.SeenAt, sm.Host, sm.Path, sm.Method, sm.Message, sm.RequestData,
				sm.Release, sm.Environment, sm.Server, sm.Status, sm.User)
		}
		if r.Count > OccurrenceHistory {
			prune = append(prune, o.Hash)
		}
	}
	if err := upsertHourly(tx, hours, mysql); err != nil {
		return nil, err
	}
	if err := tx.Exec(sq.String(), sargs...).Error; err != nil {
		return nil, fmt.Errorf("insert app_error_occurrences: %w", err)
	}
	clear(sargs)
	if len(prune) > 0 {
		if err := tx.Exec(pruneOccurrencesSQL, prune, OccurrenceHistory).Error; err != nil {
			return nil, fmt.Errorf("prune app_error_occurrences: %w", err)
		}
	}
	if err := insertEvents(tx, events); err != nil {
		return nil, err
	}
	scales := make(map[string]int64, len(rows))
	for i := range rows {
		scales[rows[i].Hash] = rows[i].UsersScale
	}
	users, err := writeUsers(tx, ws, scales)
	if err != nil {
		return nil, err
	}
	for i := range ws {
		if c, ok := users[ws[i].Hash]; ok {
			res[i].Users, res[i].UsersScale = c.n*c.scale, c.scale
		}
	}
	return res, nil
}

// hourlyCount is one hour's occurrences of an error.
type hourlyCount struct {
	hash string
	hour time.Time
	n    int64
}

// MaxHourlyPerStatement bounds the buckets of one hourly upsert (3 bind
// parameters each): an error pending through a long outage spans many
// hours, and a chunk of them must stay within SQLite's 32766 parameters.
const MaxHourlyPerStatement = 10000

// upsertHourly adds the hourly counts, in statements of at most
// maxHourlyPerStatement buckets.
func upsertHourly(tx *gorm.DB, hours []hourlyCount, mysql bool) error {
	tail := hourlyTailSQL
	if mysql {
		tail = hourlyTailMySQL
	}
	for part := range slices.Chunk(hours, MaxHourlyPerStatement) {
		var q strings.Builder
		q.Grow(len(hourlyHeadSQL) + 11*len(part) + len(tail))
		q.WriteString(hourlyHeadSQL)
		args := make([]any, 0, 3*len(part))
		for i, h := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?)")
			args = append(args, h.hash, h.hour, h.n)
		}
		q.WriteString(tail)
		if err := tx.Exec(q.String(), args...).Error; err != nil {
			return fmt.Errorf("upsert app_error_hourly: %w", err)
		}
	}
	return nil
}

// scanReturned runs q and appends the rows it returns (hash, id, count,
// write_token, regressions) to out.
func scanReturned(q *gorm.DB, out []returnedHashRow) ([]returnedHashRow, error) {
	rows, err := q.Rows()
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var r returnedHashRow
		var notified, snoozed sql.NullTime
		if err := rows.Scan(&r.Hash, &r.ID, &r.Count, &r.WriteToken, &r.Regressions, &notified,
			&r.Resolved, &r.Muted, &snoozed, &r.SnoozeUntilCount, &r.UsersScale); err != nil {
			return out, err
		}
		if notified.Valid {
			t := notified.Time
			r.LastNotifiedAt = &t
		}
		if snoozed.Valid {
			t := snoozed.Time
			r.SnoozedUntil = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// NoteNotified starts, for the errors of hashes just alerted on, the
// NotifyEvery interval: one statement for a chunk's errors.
func (s *Store) NoteNotified(ctx context.Context, hashes []string, now time.Time) error {
	return s.db.WithContext(ctx).Model(&ErrorRecord{}).Where("hash IN ?", hashes).
		Update("last_notified_at", now).Error
}

// ClaimNotification decides, in the database, whether this process sends a
// repeat alert for an open error: it succeeds for exactly one caller per
// interval, however many processes ask.
func (s *Store) ClaimNotification(ctx context.Context, hash string, now time.Time, every time.Duration) (bool, error) {
	q := s.db.WithContext(ctx).Model(&ErrorRecord{}).Where("hash = ?", hash)
	if every > 0 {
		q = q.Where("last_notified_at IS NULL OR last_notified_at <= ?", now.Add(-every))
	}
	r := q.Update("last_notified_at", now)
	return r.RowsAffected == 1, r.Error
}

// CommitError is the failure of a COMMIT: unlike the failure of any
// statement before it, it does not say that the transaction was rolled
// back; its answer may be what was lost.
type CommitError struct{ err error }

// Error implements error.
func (e *CommitError) Error() string { return "commit: " + e.err.Error() }

// Unwrap returns the driver's error.
func (e *CommitError) Unwrap() error { return e.err }

// InTx runs fc in a transaction, rolled back if fc fails or panics. A
// failed commit is a *commitError.
func (s *Store) InTx(ctx context.Context, fc func(tx *gorm.DB) error) error {
	tx := s.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return fmt.Errorf("begin: %w", tx.Error)
	}
	done := false
	defer func() {
		if !done {
			tx.Rollback()
		}
	}()
	if err := fc(tx); err != nil {
		return err
	}
	done = true
	if err := tx.Commit().Error; err != nil {
		return &CommitError{err: err}
	}
	return nil
}

// insertReceipt records, inside a write's transaction, that the write
// with this token was stored. It comes last, just before the commit.
func insertReceipt(tx *gorm.DB, token string) error {
	if err := tx.Create(&ErrorWrite{Token: token, WrittenAt: DBTime(time.Now())}).Error; err != nil {
		return fmt.Errorf("insert app_error_writes: %w", err)
	}
	return nil
}

// Settled tells whether the write with this token was stored, when its
// answer was lost. It does not merely look for the receipt: it inserts the
// token itself, unless it is there. A conflict means the write committed
// (the insert waits for a transaction still holding the token to end); an
// insert that succeeds means it never did, and from now on never can (its
// receipt would conflict), so that its occurrences may be written again.
func (s *Store) Settled(ctx context.Context, token string) (bool, error) {
	r := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&ErrorWrite{Token: token, WrittenAt: DBTime(time.Now())})
	if r.Error != nil {
		return false, fmt.Errorf("errmon: look up write receipt: %w", r.Error)
	}
	return r.RowsAffected == 0, nil
}

// LostWriteResults returns, for the errors of a write with this token that
// was found stored after its answer was lost, what the write did to the
// rows it created or reopened (the rows still carrying its token); rows it
// merely counted are left out.
func (s *Store) LostWriteResults(ctx context.Context, token string, hashes []string) (map[string]Result, error) {
	var rows []returnedHashRow
	err := s.db.WithContext(ctx).Model(&ErrorRecord{}).
		Select(returnedColumns).
		Where("write_token = ? AND hash IN ?", token, hashes).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("errmon: read rows of a lost write: %w", err)
	}
	out := make(map[string]Result, len(rows))
	for _, r := range rows {
		out[r.Hash] = Result{ID: r.ID, Count: r.Count, Regressions: r.Regressions, LastNotifiedAt: r.LastNotifiedAt,
			Created: r.Regressions == 0, Reopened: r.Regressions > 0,
			Resolved: r.Resolved, Muted: r.Muted, SnoozedUntil: r.SnoozedUntil, SnoozeUntilCount: r.SnoozeUntilCount}
	}
	return out, nil
}

// PruneReceipts deletes write receipts older than ReceiptRetention.
func (s *Store) PruneReceipts(ctx context.Context, now time.Time) error {
	return s.db.WithContext(ctx).Where("written_at < ?", DBTime(now.Add(-ReceiptRetention))).Delete(&ErrorWrite{}).Error
}

// PruneHourly deletes hourly counts older than HourlyRetention.
func (s *Store) PruneHourly(ctx context.Context, now time.Time) error {
	return s.db.WithContext(ctx).Where("hour < ?", now.Add(-HourlyRetention)).Delete(&ErrorHourly{}).Error
}

// NewToken returns a random write token: 32 hex digits.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// New returns the store of errmon's tables on db; Migrate creates them.
// Every statement the store runs carries the setting OwnStatement, so
// that errmon's GORM plugin never takes one for the application's.
func New(db *gorm.DB) *Store {
	return &Store{db: db.Set(OwnStatement, true).Session(&gorm.Session{})}
}

// OwnStatement is the GORM setting (db.Set) that marks errmon's own
// statements.
const OwnStatement = "errmon:own_statement"

// samplesIn is how many sample rows ws make.
func samplesIn(ws []Write) int {
	n := 0
	for i := range ws {
		n += max(1, len(ws[i].Samples))
	}
	return n
}
