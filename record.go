package errmon

import "github.com/errmon/errmon/internal/store"

// ErrorRecord is one bug, a GORM model of the table "app_errors": every
// occurrence with the same fingerprint is counted in one row. Read it with
// the service's own *gorm.DB (db.Find(&[]errmon.ErrorRecord{})), or through
// the dashboard's JSON API. Its fields are those of the table: ID, Hash,
// Host, Path, Method, Route, ExceptionName, Message, Traceback,
// RequestData (masked JSON), Count, CreatedOn, LastSeen, Resolved,
// ResolvedAt, Regressions, LastNotifiedAt and WriteToken.
type ErrorRecord = store.ErrorRecord
