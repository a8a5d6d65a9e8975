package store

import (
	"fmt"

	"gorm.io/gorm"
)

// MySQL (and MariaDB) get tables written out rather than AutoMigrate's:
// GORM maps a string column that has a default to varchar(191), too short
// for a traceback, and MySQL refuses a literal default on TEXT columns.
// Times keep microseconds (DATETIME(6)), as on PostgreSQL. A column added
// to a model must be added here too: TestMySQLSchemaMatchesModels fails
// until it is.
var mysqlTables = []string{
	`CREATE TABLE IF NOT EXISTS app_errors (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  hash VARCHAR(64) NOT NULL,
  host MEDIUMTEXT NOT NULL,
  path MEDIUMTEXT NOT NULL,
  method VARCHAR(16) NOT NULL DEFAULT '',
  route MEDIUMTEXT NOT NULL,
  exception_name MEDIUMTEXT NOT NULL,
  message MEDIUMTEXT NOT NULL,
  traceback MEDIUMTEXT NOT NULL,
  request_data MEDIUMTEXT NOT NULL,
  count BIGINT NOT NULL DEFAULT 0,
  created_on DATETIME(6) NOT NULL,
  last_seen DATETIME(6) NOT NULL,
  resolved BOOLEAN NOT NULL DEFAULT FALSE,
  resolved_at DATETIME(6) NULL,
  regressions BIGINT NOT NULL DEFAULT 0,
  last_notified_at DATETIME(6) NULL,
  write_token VARCHAR(32) NOT NULL DEFAULT '',
  first_release VARCHAR(64) NOT NULL DEFAULT '',
  last_release VARCHAR(64) NOT NULL DEFAULT '',
  environment VARCHAR(64) NOT NULL DEFAULT '',
  culprit VARCHAR(512) NOT NULL DEFAULT '',
  muted BOOLEAN NOT NULL DEFAULT FALSE,
  snoozed_until DATETIME(6) NULL,
  snooze_until_count BIGINT NOT NULL DEFAULT 0,
  resolved_in_release VARCHAR(64) NOT NULL DEFAULT '',
  users BIGINT NOT NULL DEFAULT 0,
  users_scale BIGINT NOT NULL DEFAULT 1,
  UNIQUE KEY idx_app_errors_hash (hash),
  KEY idx_app_errors_last_seen_id (last_seen, id),
  KEY idx_app_errors_count_id (count, id),
  KEY idx_app_errors_created_on_id (created_on, id),
  KEY idx_app_errors_resolved_last_seen_id (resolved, last_seen, id),
  KEY idx_app_errors_resolved_count_id (resolved, count, id),
  KEY idx_app_errors_resolved_created_on_id (resolved, created_on, id),
  KEY idx_app_errors_muted_id (muted, id),
  KEY idx_app_errors_users_id (users, id),
  KEY idx_app_errors_resolved_users_id (resolved, users, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS app_error_occurrences (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  hash VARCHAR(64) NOT NULL,
  seen_at DATETIME(6) NOT NULL,
  host MEDIUMTEXT NOT NULL,
  path MEDIUMTEXT NOT NULL,
  method VARCHAR(16) NOT NULL DEFAULT '',
  message MEDIUMTEXT NOT NULL,
  request_data MEDIUMTEXT NOT NULL,
  release_name VARCHAR(64) NOT NULL DEFAULT '',
  environment VARCHAR(64) NOT NULL DEFAULT '',
  server MEDIUMTEXT NOT NULL,
  status BIGINT NOT NULL DEFAULT 0,
  user_id VARCHAR(255) NOT NULL DEFAULT '',
  KEY idx_app_error_occurrences_hash (hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS app_error_hourly (
  hash VARCHAR(64) NOT NULL,
  hour DATETIME(6) NOT NULL,
  count BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (hash, hour),
  KEY idx_app_error_hourly_hour (hour)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS app_error_writes (
  token VARCHAR(32) NOT NULL PRIMARY KEY,
  written_at DATETIME(6) NOT NULL,
  KEY idx_app_error_writes_written_at (written_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS app_error_events (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  hash VARCHAR(64) NOT NULL,
  kind VARCHAR(32) NOT NULL,
  actor VARCHAR(255) NOT NULL DEFAULT '',
  release_name VARCHAR(64) NOT NULL DEFAULT '',
  note MEDIUMTEXT NOT NULL,
  at DATETIME(6) NOT NULL,
  KEY idx_app_error_events_hash_id (hash, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS app_error_sources (
  file VARCHAR(512) NOT NULL,
  line BIGINT NOT NULL,
  ` + "`lines`" + ` MEDIUMTEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (file, line)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS app_error_users (
  hash VARCHAR(64) NOT NULL,
  user_key BIGINT NOT NULL,
  PRIMARY KEY (hash, user_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
}

// mysqlAddedColumns are the columns added to errmon's tables after their
// first version, with their DDL: tables created by an earlier version get
// them (MySQL has no ADD COLUMN IF NOT EXISTS; MariaDB's is not MySQL's).
var mysqlAddedColumns = []struct{ table, column, ddl string }{
	{"app_errors", "first_release", "VARCHAR(64) NOT NULL DEFAULT ''"},
	{"app_errors", "last_release", "VARCHAR(64) NOT NULL DEFAULT ''"},
	{"app_errors", "environment", "VARCHAR(64) NOT NULL DEFAULT ''"},
	{"app_errors", "culprit", "VARCHAR(512) NOT NULL DEFAULT ''"},
	{"app_error_occurrences", "release_name", "VARCHAR(64) NOT NULL DEFAULT ''"},
	{"app_error_occurrences", "environment", "VARCHAR(64) NOT NULL DEFAULT ''"},
	{"app_error_occurrences", "server", "MEDIUMTEXT NOT NULL"},
	{"app_error_occurrences", "status", "BIGINT NOT NULL DEFAULT 0"},
	{"app_errors", "muted", "BOOLEAN NOT NULL DEFAULT FALSE"},
	{"app_errors", "snoozed_until", "DATETIME(6) NULL"},
	{"app_errors", "snooze_until_count", "BIGINT NOT NULL DEFAULT 0"},
	{"app_errors", "resolved_in_release", "VARCHAR(64) NOT NULL DEFAULT ''"},
	{"app_errors", "users", "BIGINT NOT NULL DEFAULT 0"},
	{"app_errors", "users_scale", "BIGINT NOT NULL DEFAULT 1"},
	{"app_error_occurrences", "user_id", "VARCHAR(255) NOT NULL DEFAULT ''"},
}

// createMySQLTables creates errmon's tables on MySQL when they are
// missing, and adds the columns a table of an earlier version lacks.
func createMySQLTables(db *gorm.DB) error {
	for _, ddl := range mysqlTables {
		if err := db.Exec(ddl).Error; err != nil {
			return fmt.Errorf("create table: %w", err)
		}
	}
	for _, c := range mysqlAddedColumns {
		var n int64
		err := db.Raw("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?",
			c.table, c.column).Scan(&n).Error
		if err != nil {
			return fmt.Errorf("read the columns of %s: %w", c.table, err)
		}
		if n == 0 {
			if err := db.Exec(fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", c.table, c.column, c.ddl)).Error; err != nil {
				return fmt.Errorf("add column %s.%s: %w", c.table, c.column, err)
			}
		}
	}
	return nil
}
