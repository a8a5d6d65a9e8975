// Package tests holds errmon's tests that need what an adopter must not
// pay for: real databases through their GORM drivers (SQLite, PostgreSQL,
// MariaDB), an SMTP server, a headless browser, goleak and pkg/errors.
//
// It is a module of its own (wired into the repository's go.work), so that
// none of these requirements reaches errmon's go.mod: the library requires
// only gin, GORM and gomail. The tests use errmon as a user does, through
// its public API, and read the store through internal/store. Their shared
// helpers (database openers, the monitor harness, the SMTP server, the
// fault proxies) live here once. Run them with the README's test command,
// or from here:
//
//	go test -race ./...
package tests
