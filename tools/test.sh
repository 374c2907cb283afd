#!/usr/bin/env bash
# Runs every test of every module in go.work, with the race detector.
# Usage: tools/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
failed=0
for dir in $(go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p'); do
  echo "=== module $dir"
  if ! (cd "$dir" && go vet ./... && go test -race -count=1 "$@" ./...); then
    failed=1
  fi
done
exit $failed
