#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time ($1, default 5s)
# on top of its committed seed corpus (testdata/fuzz/<Target>).
set -euo pipefail
fuzztime=${1:-5s}
cd "$(dirname "$0")/../.."
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  dir=$(dirname "$f")
  for t in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "fuzz: $dir $t ($fuzztime)"
    go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "./$dir"
  done
done
