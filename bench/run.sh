#!/usr/bin/env bash
# Runs errmon's benchmarks side by side (gin's Recovery, errmon, Sentry's gin
# middleware; errmon against a naive per-event upsert), keeps the raw output
# in bench/results/, and prints benchstat comparisons and the Markdown table
# of the README's Performance section.
#
#   bench/run.sh                 # COUNT=5: about 6 minutes on 2 cores
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

status=0
run() { go test -run '^$' -benchmem "$@" . 2>&1 | tee -a "$raw" || { status=1; echo "FAILED: go test $*"; }; }

run -bench '^(BenchmarkHappy|BenchmarkHappyPOST|BenchmarkPanic)$' -count "$COUNT" -benchtime "$BENCHTIME"
run -bench '^(BenchmarkStorm|BenchmarkStormFull)$' -count "$STORM_COUNT" -benchtime 1x
run -bench '^BenchmarkIngest$' -count "$COUNT" -benchtime "$BENCHTIME"

echo
echo "Raw output: bench/$raw"
BENCHSTAT=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
if [[ -x "$BENCHSTAT" ]]; then
	echo
	echo "== benchstat: request path, each middleware against gin's Recovery =="
	"$BENCHSTAT" -filter '.name:/^(Happy|HappyPOST|Panic)$/' -col '/mw@(gin none errmon sentry sentry+gin)' "$raw" || true
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
