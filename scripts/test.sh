#!/usr/bin/env bash
# The errmon test command:  bash scripts/test.sh
#
# Runs every check and test on a real SQLite file, a real PostgreSQL server,
# a real MariaDB server and a real headless Chromium, installing what is
# missing (Debian 12, as root or with sudo):
#   gcc (cgo: SQLite and -race), postgresql (server binaries),
#   mariadb-server, chromium; and axe-core@4 from npm (see its step).
#
# PostgreSQL, in this order:
#   1. ERRMON_TEST_PG_DSN from the environment, when set;
#   2. the local server at 127.0.0.1:5432, when user postgres can connect
#      (database "test" if it exists, else "postgres");
#   3. a throwaway cluster in a temp dir on 127.0.0.1 (port 55432 or the next
#      free one), removed on exit. ERRMON_FORCE_THROWAWAY_PG=1 forces it.
# MariaDB likewise (see its step below). The database and browser tests
# fail rather than skip here (ERRMON_REQUIRE_PG=1, ERRMON_REQUIRE_MYSQL=1,
# ERRMON_REQUIRE_BROWSER=1).
#
# Steps: gofmt -l, go vet, go test -race on the library's packages and on
# internal/tests (the module of the tests that need real services); then
# go vet and a one-iteration smoke run of bench/'s tests and benchmarks;
# then scripts/adopter-graph.sh (what requiring errmon adds to an app's
# module graph). The last line is "errmon: N passed, N failed, N skipped,
# N benchmarks ran"; the exit status is non-zero on any failure.
#
# Arguments are passed to go test, for a partial run that skips bench/ and
# the adopter's graph:  bash scripts/test.sh -run 'TestConfig'
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
START=$SECONDS

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
	printf '\nerrmon: FAILED: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------- packages

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	SUDO=(sudo)
fi
APT_UPDATED=0

# apt_install PKG...: installs Debian packages, running apt-get update once.
apt_install() {
	command -v apt-get >/dev/null 2>&1 ||
		die "packages needed: $* (no apt-get here: install them by hand)"
	if [ ${#SUDO[@]} -gt 0 ] && ! command -v sudo >/dev/null 2>&1; then
		die "packages needed: $* (not root and no sudo: install them by hand)"
	fi
	local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
	if [ "$APT_UPDATED" -eq 0 ]; then
		note "apt-get update"
		"${apt[@]}" update -qq || die "apt-get update failed"
		APT_UPDATED=1
	fi
	note "apt-get install $*"
	"${apt[@]}" install -y -qq --no-install-recommends "$@" >/dev/null ||
		die "apt-get install $* failed"
}

step "Tools"
command -v go >/dev/null 2>&1 ||
	die "Go is not installed (or not on PATH): install Go 1.25 or later from https://go.dev/dl and retry"
note "$(go version)"
if [ ! -e /etc/ssl/certs/ca-certificates.crt ] && [ -z "${SSL_CERT_FILE:-}" ]; then
	apt_install ca-certificates # go's module downloads need the CA roots
fi
if ! command -v gcc >/dev/null 2>&1; then
	apt_install gcc libc6-dev
fi
note "$(gcc --version | head -n 1)"
export CGO_ENABLED=1 # SQLite (mattn/go-sqlite3) and -race need cgo

# ---------------------------------------------------------------- PostgreSQL

step "PostgreSQL"

# pg_bin prints the newest Debian PostgreSQL bin directory holding initdb.
pg_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
		fi
	done | sort -V | tail -n 1
}

if [ -n "${ERRMON_PG_BIN:-}" ] && [ -x "$ERRMON_PG_BIN/initdb" ] && [ -x "$ERRMON_PG_BIN/pg_ctl" ]; then
	PG_BIN=$ERRMON_PG_BIN
else
	PG_BIN=$(pg_bin)
	if [ -z "$PG_BIN" ]; then
		apt_install postgresql
		PG_BIN=$(pg_bin)
		[ -n "$PG_BIN" ] || die "postgresql is installed but no /usr/lib/postgresql/*/bin/initdb was found"
	fi
fi
export ERRMON_PG_BIN=$PG_BIN
note "server binaries: $PG_BIN ($("$PG_BIN/postgres" --version))"

# as_pg CMD...: runs a command as the postgres user when root (initdb and
# pg_ctl refuse to run as root), else as the current user; from /, which
# that user can always enter.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# local_psql DB SQL: a query to the local server as user postgres, no password.
local_psql() {
	PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -w -q -A -t -h 127.0.0.1 -p 5432 -U postgres -d "$1" -c "$2" 2>/dev/null
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

PG_TMP=""
cleanup() {
	if [ -n "$PG_TMP" ] && [ -d "$PG_TMP" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null 2>&1 || true
		rm -rf "$PG_TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_throwaway_pg() {
	if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
		die "user postgres is missing (it comes with the postgresql package)"
	fi
	local port=55432
	while port_in_use "$port"; do
		port=$((port + 1))
		[ "$port" -lt 55532 ] || die "no free port for a throwaway PostgreSQL in 55432-55531"
	done
	PG_TMP=$(mktemp -d /tmp/errmon-pg.XXXXXX)
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$PG_TMP"
	fi
	note "throwaway cluster in $PG_TMP on 127.0.0.1:$port"
	as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -A trust -U postgres -E UTF8 --no-locale --no-sync >"$PG_TMP/initdb.log" 2>&1 ||
		{
			cat "$PG_TMP/initdb.log" >&2
			die "initdb failed"
		}
	# A scratch server: durability off, room for the multi-process tests.
	as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
		-o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null ||
		{
			cat "$PG_TMP/server.log" >&2
			die "pg_ctl start failed"
		}
	ERRMON_TEST_PG_DSN="host=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=disable"
}

if [ "${ERRMON_FORCE_THROWAWAY_PG:-}" = 1 ]; then
	note "ERRMON_FORCE_THROWAWAY_PG=1: ignoring any configured or local server"
	start_throwaway_pg
elif [ -n "${ERRMON_TEST_PG_DSN:-}" ]; then
	note "using ERRMON_TEST_PG_DSN from the environment"
elif [ "$(local_psql postgres 'select 1')" = 1 ]; then
	db=postgres
	if [ "$(local_psql postgres "select 1 from pg_database where datname = 'test'")" = 1 ]; then
		db="test"
	fi
	note "local server at 127.0.0.1:5432 answers: using database $db"
	ERRMON_TEST_PG_DSN="host=127.0.0.1 port=5432 user=postgres dbname=$db sslmode=disable"
else
	note "no usable server at 127.0.0.1:5432 (user postgres, no password)"
	start_throwaway_pg
fi
export ERRMON_TEST_PG_DSN
export ERRMON_REQUIRE_PG=1

# ---------------------------------------------------------------- MySQL (MariaDB)

step "MySQL (MariaDB)"
# In this order: ERRMON_TEST_MYSQL_DSN from the environment; the local
# server at 127.0.0.1:3306 when root can connect without a password; else a
# throwaway MariaDB in a temp dir (port 53306 or the next free one),
# installed from Debian's mariadb-server when missing, removed on exit.
MY_TMP=""
my_cleanup() {
	if [ -n "$MY_TMP" ] && [ -d "$MY_TMP" ]; then
		if [ -f "$MY_TMP/mariadbd.pid" ]; then
			kill "$(cat "$MY_TMP/mariadbd.pid")" 2>/dev/null || true
			for _ in $(seq 1 50); do
				[ -f "$MY_TMP/mariadbd.pid" ] || break
				sleep 0.1
			done
		fi
		rm -rf "$MY_TMP"
	fi
}
trap 'cleanup; my_cleanup' EXIT

local_mysql() {
	command -v mariadb >/dev/null 2>&1 &&
		mariadb --connect-timeout=5 -h 127.0.0.1 -P 3306 -u root -N -B -e "$1" 2>/dev/null
}

start_throwaway_mysql() {
	if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
		apt_install mariadb-server
	fi
	local port=53306
	while port_in_use "$port"; do
		port=$((port + 1))
		[ "$port" -lt 53406 ] || die "no free port for a throwaway MariaDB in 53306-53405"
	done
	MY_TMP=$(mktemp -d /tmp/errmon-mysql.XXXXXX)
	local user=()
	if [ "$(id -u)" -eq 0 ]; then
		chown mysql: "$MY_TMP"
		user=(--user=mysql)
	fi
	note "throwaway MariaDB in $MY_TMP on 127.0.0.1:$port"
	mariadb-install-db "${user[@]}" --datadir="$MY_TMP/data" --auth-root-authentication-method=normal \
		--skip-test-db >"$MY_TMP/install.log" 2>&1 ||
		{
			cat "$MY_TMP/install.log" >&2
			die "mariadb-install-db failed"
		}
	/usr/sbin/mariadbd "${user[@]}" --datadir="$MY_TMP/data" --socket="$MY_TMP/mysqld.sock" \
		--pid-file="$MY_TMP/mariadbd.pid" --port="$port" --bind-address=127.0.0.1 \
		--innodb-flush-log-at-trx-commit=0 --max-connections=300 >"$MY_TMP/server.log" 2>&1 &
	for _ in $(seq 1 100); do
		if mariadb --connect-timeout=2 -h 127.0.0.1 -P "$port" -u root -N -B -e 'select 1' >/dev/null 2>&1; then
			ERRMON_TEST_MYSQL_DSN="root@tcp(127.0.0.1:$port)/"
			return
		fi
		sleep 0.2
	done
	cat "$MY_TMP/server.log" >&2
	die "the throwaway MariaDB did not start"
}

if [ -n "${ERRMON_TEST_MYSQL_DSN:-}" ]; then
	note "using ERRMON_TEST_MYSQL_DSN from the environment"
elif [ "$(local_mysql 'select 1')" = 1 ]; then
	note "local server at 127.0.0.1:3306 answers: $(local_mysql 'select version()')"
	ERRMON_TEST_MYSQL_DSN="root@tcp(127.0.0.1:3306)/"
else
	note "no usable server at 127.0.0.1:3306 (user root, no password)"
	start_throwaway_mysql
fi
export ERRMON_TEST_MYSQL_DSN
export ERRMON_REQUIRE_MYSQL=1

# ---------------------------------------------------------------- Chromium

step "Chromium"
if [ -n "${ERRMON_CHROMIUM:-}" ] && [ -x "$ERRMON_CHROMIUM" ]; then
	:
else
	if [ ! -x /usr/bin/chromium ]; then
		apt_install chromium fonts-liberation
	fi
	ERRMON_CHROMIUM=/usr/bin/chromium
fi
export ERRMON_CHROMIUM
export ERRMON_REQUIRE_BROWSER=1
note "$ERRMON_CHROMIUM: $("$ERRMON_CHROMIUM" --version 2>/dev/null || echo 'version unknown')"

# ---------------------------------------------------------------- axe-core

step "axe-core"
# The accessibility test (TestDashboardBrowserAccessibility) injects
# axe.min.js into every page: ERRMON_AXE_JS from the environment, else
# axe-core@4 that npm installs into the cache directory the test also looks
# in (npm from Debian when missing).
if [ -z "${ERRMON_AXE_JS:-}" ] || [ ! -f "$ERRMON_AXE_JS" ]; then
	AXE_DIR="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/errmon/axe-core"
	ERRMON_AXE_JS="$AXE_DIR/node_modules/axe-core/axe.min.js"
	if [ ! -f "$ERRMON_AXE_JS" ]; then
		if ! command -v npm >/dev/null 2>&1; then
			apt_install npm
		fi
		note "npm install axe-core@4 into $AXE_DIR"
		npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
			--prefix "$AXE_DIR" axe-core@4 >/dev/null || die "npm install axe-core@4 failed"
	fi
fi
export ERRMON_AXE_JS
note "$ERRMON_AXE_JS: axe-core $(grep -m 1 -o '"version": *"[^"]*"' "$(dirname "$ERRMON_AXE_JS")/package.json" 2>/dev/null | grep -o '[0-9][^"]*' || echo 'version unknown')"

# ---------------------------------------------------------------- checks

PASSED=0
FAILED=0
SKIPPED=0
BENCHMARKS=0
FAILURES=() # names of the failed steps; the tests still run after a failed check
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/errmon-test-logs.XXXXXX")

# check_failed NAME MESSAGE: records a failed check.
check_failed() {
	printf '    FAILED: %s\n' "$2" >&2
	FAILED=$((FAILED + 1))
	FAILURES+=("$1")
}

step "gofmt -l ."
if ! unformatted=$(gofmt -l . 2>&1); then
	printf '%s\n' "$unformatted" >&2
	check_failed gofmt "gofmt could not read every file (listed above)"
elif [ -n "$unformatted" ]; then
	printf '%s\n' "$unformatted" >&2
	check_failed gofmt "these files need gofmt -w (listed above)"
fi

step "go vet ./... ./internal/tests/... ./examples/..."
if ! go vet ./... ./internal/tests/... ./examples/...; then
	check_failed vet "go vet reported problems (above)"
fi

# run_tests NAME DIR GO-TEST-ARGS...: runs go test -v in DIR with the full
# log in $LOGDIR/NAME.log, showing all but the RUN/PAUSE/CONT and PASS
# lines, and adds up the results.
run_tests() {
	local name=$1 dir=$2 rc p f s
	shift 2
	local log="$LOGDIR/$name.log"
	set +e
	(cd "$dir" && go test -v "$@" 2>&1) | tee "$log" |
		grep -Ev --line-buffered '^[[:space:]]*(=== (RUN|PAUSE|CONT|NAME) |--- PASS: )|^PASS$'
	rc=${PIPESTATUS[0]}
	set -e
	p=$(grep -cE '^[[:space:]]*--- PASS: ' "$log" || true)
	f=$(grep -cE '^[[:space:]]*--- FAIL: ' "$log" || true)
	s=$(grep -cE '^[[:space:]]*--- SKIP: ' "$log" || true)
	b=$(grep -cE '^Benchmark[^[:space:]]+[[:space:]]+[0-9]+[[:space:]]' "$log" || true)
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # a build failure, a panic or a timeout outside any one test
	fi
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	SKIPPED=$((SKIPPED + s))
	BENCHMARKS=$((BENCHMARKS + b))
	note "$name: $p passed, $f failed, $s skipped, $b benchmarks ran (exit $rc; full log: $log)"
	if [ "$rc" -ne 0 ]; then
		FAILURES+=("$name")
		grep -E '^[[:space:]]*--- FAIL: |^FAIL[[:space:]]' "$log" | sed 's/^/    /' || true
	fi
}

# The library's own packages (./...), and internal/tests: the module of the
# tests that need drivers, a browser, an SMTP server or goleak, which must
# not reach the library's go.mod (the workspace wires it).
step "go test -race -count=1 -timeout 30m ./... ./internal/tests/..."
run_tests main "$ROOT" -race -count=1 -timeout 30m "$@" ./... ./internal/tests/...

if [ $# -gt 0 ]; then
	note "partial run (arguments given): bench/ skipped"
elif [ -f bench/go.mod ]; then
	step "bench/: go vet, smoke run of tests and benchmarks (-benchtime 1x)"
	if ! (cd bench && go vet ./...); then
		check_failed bench-vet "go vet in bench/ reported problems (above)"
	fi
	run_tests bench "$ROOT/bench" -count=1 -timeout 30m -run . -bench . -benchtime 1x ./...
fi

if [ $# -eq 0 ]; then
	step "What requiring errmon costs an adopter (scripts/adopter-graph.sh)"
	if ! bash scripts/adopter-graph.sh; then
		check_failed adopter-graph "the adopter's module graph holds a module only errmon's tests need (above)"
	fi
fi

# ---------------------------------------------------------------- summary

elapsed=$((SECONDS - START))
printf '\n==> Summary (%dm%02ds)\n' $((elapsed / 60)) $((elapsed % 60))
if [ ${#FAILURES[@]} -gt 0 ]; then
	note "failed: ${FAILURES[*]}"
	printf 'errmon: %d passed, %d failed, %d skipped, %d benchmarks ran\n' "$PASSED" "$FAILED" "$SKIPPED" "$BENCHMARKS"
	exit 1
fi
printf 'errmon: %d passed, %d failed, %d skipped, %d benchmarks ran\n' "$PASSED" "$FAILED" "$SKIPPED" "$BENCHMARKS"
