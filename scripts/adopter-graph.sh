#!/usr/bin/env bash
# What requiring errmon costs an adopter:  bash scripts/adopter-graph.sh
#
# Builds, in a temp directory, the module of a gin + GORM app on SQLite
# (gin, gorm.io/gorm, gorm.io/driver/sqlite), then the same app adding
# errmon (with its mail/ notifier), and the same app adding Sentry's gin
# integration instead; prints the lines of `go mod graph` of each and what
# each adds. errmon is taken from this checkout (a replace directive), so
# the graph is what its go.mod here would give once published.
# Fails when the adopter's graph holds a module only errmon's tests need
# (a browser driver, an SMTP server, goleak, a database driver the app did
# not choose).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TMP=$(mktemp -d)
trap "rm -rf $TMP" EXIT
export GOWORK=off GOFLAGS=-mod=mod

req() { sed -n "s|^[[:space:]]*$1 \(v[^ ]*\).*|\1|p" "$2" | head -n 1; }
GIN=$(req github.com/gin-gonic/gin go.mod)
GORM=$(req gorm.io/gorm go.mod)
SQLITE=$(req gorm.io/driver/sqlite internal/tests/go.mod)
SENTRY=$(req github.com/getsentry/sentry-go/gin bench/go.mod)

# app NAME IMPORTS...: a module importing the given packages; prints its graph size.
app() {
	local name=$1
	shift
	mkdir -p "$TMP/$name"
	(
		cd "$TMP/$name"
		printf 'module example.com/%s\n\ngo 1.25.0\n' "$name" >go.mod
		{
			echo "package main"
			echo
			echo "import ("
			for p in "$@"; do echo "	_ \"$p\""; done
			echo ")"
			echo
			echo "func main() {}"
		} >main.go
		go mod edit -require="github.com/gin-gonic/gin@$GIN" -require="gorm.io/gorm@$GORM" \
			-require="gorm.io/driver/sqlite@$SQLITE"
		case "$name" in
		*errmon*)
			go mod edit -require=github.com/errmon/errmon@v0.0.0 -replace="github.com/errmon/errmon=$ROOT"
			;;
		*sentry*)
			go mod edit -require="github.com/getsentry/sentry-go/gin@$SENTRY"
			;;
		esac
		go mod tidy >/dev/null 2>&1 || go mod tidy
		go build -o /dev/null . # the graph of an app that builds
	)
	go -C "$TMP/$name" mod graph | wc -l
}

BASE_PKGS=(github.com/gin-gonic/gin gorm.io/gorm gorm.io/driver/sqlite)
base=$(app base "${BASE_PKGS[@]}")
errmon=$(app errmon "${BASE_PKGS[@]}" github.com/errmon/errmon github.com/errmon/errmon/mail)
sentry=$(app sentry "${BASE_PKGS[@]}" github.com/getsentry/sentry-go/gin)

printf '%-34s %6s %6s\n' "go mod graph | wc -l" lines added
printf '%-34s %6d %6s\n' "gin + gorm + sqlite driver" "$base" -
printf '%-34s %6d %6d\n' "  + errmon (and errmon/mail)" "$errmon" $((errmon - base))
printf '%-34s %6d %6d\n' "  + sentry-go/gin $SENTRY" "$sentry" $((sentry - base))

bad=$(go -C "$TMP/errmon" mod graph | awk '{print $2}' | sed 's/@.*//' | sort -u |
	grep -E '^(github.com/chromedp/|github.com/emersion/|go.uber.org/goleak$|github.com/pkg/errors$|gorm.io/driver/(postgres|mysql)$|github.com/go-sql-driver/|github.com/jackc/|github.com/errmon/errmon/internal/tests)' || true)
if [ -n "$bad" ]; then
	echo "adopter-graph: FAILED: requiring errmon brings in modules only its tests need:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "adopter-graph: no test-only module and no database driver the app did not choose"
