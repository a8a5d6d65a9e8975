// Package bench holds errmon's benchmarks: the happy path and the panic path
// against gin's Recovery and Sentry's gin middleware, error storms, and
// ingest throughput into SQLite and PostgreSQL. It is a module of its own so
// that sentry-go never enters errmon's go.mod. Run ./run.sh.
package bench
