#!/usr/bin/env bash
# Runs errmon's benchmarks side by side (gin's Recovery, errmon, Sentry's gin
# middleware; errmon against a naive per-event upsert), keeps the raw output
# in bench/results/, and prints benchstat comparisons and the Markdown table
# of the README's Performance section. Then internal/tests'
# BenchmarkDistinctErrors (new errors per second against the database's
# floor) and cmd/crashwindow (what a SIGKILL under a storm loses; CRASH_RUNS
# runs, default 5, of CRASH_RATE events/s, default 5000).
#
#   bench/run.sh                 # COUNT=5: about 7 minutes on 2 cores
#   COUNT=10 bench/run.sh        # steadier medians
#
# PostgreSQL: ERRMON_TEST_PG_DSN when set, else the local server on
# 127.0.0.1:5432 when it answers, else the PostgreSQL rows are skipped.
set -euo pipefail
cd "$(dirname "$0")"

COUNT=${COUNT:-5}             # -count of the request-path and ingest benchmarks
STORM_COUNT=${STORM_COUNT:-3} # -count of the storms (each run is 100,000 events)
BENCHTIME=${BENCHTIME:-1s}

if [[ -z "${ERRMON_TEST_PG_DSN:-}" ]] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
	export ERRMON_TEST_PG_DSN='host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable'
fi

mkdir -p results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
raw=results/bench-$stamp.txt
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(go version | cut -d' ' -f3-)"
echo "# $machine" | tee "$raw"

# One test binary, run COUNT times with -count 1: the variants of a
# benchmark alternate in time, so that a shared machine's drift spreads
# over all of them instead of favouring whichever ran first.
go test -c -o results/bench.test .
status=0
run() {
	if ! ./results/bench.test -test.run '^$' -test.benchmem "$@" 2>&1 |
		grep -v '^\(goos\|goarch\|pkg\|cpu\|PASS\)' | tee -a "$raw"; then
		status=1
		echo "FAILED: bench.test $*" | tee -a "$raw"
	fi
}
for i in $(seq "$COUNT"); do
	echo "== round $i of $COUNT"
	run -test.bench '^(BenchmarkHappy|BenchmarkHappyPOST|BenchmarkHappyUpload|BenchmarkPanic)$' -test.benchtime "$BENCHTIME"
	run -test.bench '^BenchmarkIngest$' -test.benchtime "$BENCHTIME"
	if ((i <= STORM_COUNT)); then
		run -test.bench '^(BenchmarkStorm|BenchmarkStormFull)$' -test.benchtime 1x
	fi
done

# Distinct errors against the database's floor (internal/tests' benchmark:
# it reads the store's tables), and the crash window (SIGKILL under a storm),
# on SQLite and, when its server answers, PostgreSQL.
echo "== distinct errors: errmon's pass against a bare multi-row INSERT"
if ! (cd ../internal/tests && go test -run '^$' -bench '^BenchmarkDistinctErrors$' -benchtime 1x -count "$STORM_COUNT" .) 2>&1 |
	grep -v '^\(goos\|goarch\|pkg\|cpu\|PASS\|ok\)' | tee -a "$raw"; then
	status=1
fi
echo "== crash window: SIGKILL under a storm (loss in ms of events; FlushInterval 1s)"
go build -o results/crashwindow ./cmd/crashwindow
crashdbs=(sqlite)
if [[ -n "${ERRMON_TEST_PG_DSN:-}" ]]; then
	crashdbs+=(postgres)
fi
for db in "${crashdbs[@]}"; do
	if ! ./results/crashwindow -db "$db" -runs "${CRASH_RUNS:-5}" -rate "${CRASH_RATE:-5000}" 2>&1 | tee -a "$raw"; then
		status=1
	fi
done

echo
echo "Raw output: bench/$raw"
BENCHSTAT=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
if [[ -x "$BENCHSTAT" ]]; then
	echo
	echo "== benchstat: request path, each middleware against gin's Recovery =="
	"$BENCHSTAT" -filter '.name:/^(Happy|HappyPOST|HappyUpload|Panic)$/' -col '/mw@(gin none errmon sentry sentry+gin)' "$raw" || true
	echo
	echo "== benchstat: ingest, errmon against the naive baseline =="
	"$BENCHSTAT" -filter '.name:Ingest' -col '/impl@(naive errmon)' "$raw" || true
else
	echo "(benchstat not installed: go install golang.org/x/perf/cmd/benchstat@latest)"
fi
echo
echo "Machine: $machine"
echo "Command: COUNT=$COUNT STORM_COUNT=$STORM_COUNT bench/run.sh"
echo
go run ./cmd/benchtable "$raw" | tee "results/table-$stamp.md"
exit $status
