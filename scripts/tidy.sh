#!/usr/bin/env bash
# Tidies every module of the repository:  bash scripts/tidy.sh
#
# The library's go.mod must list only what its packages import (gin, GORM,
# gomail): its tests import drivers, a browser, an SMTP server and goleak
# from the workspace module internal/testkit, which plain `go mod tidy` in
# the root would add back. So the root is tidied on a copy without its test
# files and internal/testkit, and its go.mod and go.sum are copied back.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for m in internal/testkit examples bench; do
	(cd "$m" && GOWORK=off GOFLAGS=-mod=mod go mod tidy)
done

tar --exclude=./.git --exclude=./internal/testkit --exclude=./examples --exclude=./bench \
	--exclude='*_test.go' -cf - . | (cd "$TMP" && tar -xf -)
rm -f "$TMP/go.work" "$TMP/go.work.sum"
(cd "$TMP" && GOWORK=off go mod tidy)
cp "$TMP/go.mod" "$TMP/go.sum" "$ROOT/"
echo "tidy: $(grep -c '^	' go.mod) requirements in the library's go.mod"
