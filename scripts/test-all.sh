#!/usr/bin/env bash
# Runs every test of h2rpc with the race detector: the root module and
# every nested module under test/ (go test ./... at the root does not
# reach those). Extra arguments go to each `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet and gofmt"
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== root module"
go test -race -count=1 "$@" ./...

echo "== fuzz targets, a few seconds each"
# go test -fuzz takes one target at a time. FUZZTIME=0 skips this section.
# The budget is a count of executions ("Nx"), not a duration: with a
# duration, Go 1.26's fuzz coordinator can report a spurious "context
# deadline exceeded" failure when the deadline fires while a worker is
# mid-call (golang/go#75804, fixed in Go 1.27). A count has no deadline.
fuzztime=${FUZZTIME:-20000x}
if [ "$fuzztime" != 0 ]; then
  for target in $(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./test/' | sort); do
    pkg=./$(dirname "${target#./}")
    for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$target" | sed 's/^func //'); do
      echo "-- $pkg $name"
      go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
    done
  done
fi

for mod in $(find test -name go.mod -not -path '*/testdata/*' 2>/dev/null | sort); do
  dir=$(dirname "$mod")
  echo "== nested module $dir"
  (cd "$dir" && go vet ./... && go test -race -count=1 "$@" ./...)
done
