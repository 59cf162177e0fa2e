#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time ($1, default 5s)
# on top of its committed seed corpus (testdata/fuzz/<Target>). A target
# without a committed corpus fails the run.
set -euo pipefail
fuzztime=${1:-5s}
cd "$(dirname "$0")/../.."
GO=${GO:-go}
missing=()
targets=()
while read -r f; do
  dir=$(dirname "$f")
  for t in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    if [ -z "$(ls -A "$dir/testdata/fuzz/$t" 2>/dev/null)" ]; then
      missing+=("$dir/testdata/fuzz/$t")
    fi
    targets+=("$dir $t")
  done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | sort)
if [ ${#missing[@]} -gt 0 ]; then
  printf 'fuzz: no committed seed corpus in %s\n' "${missing[@]}" >&2
  exit 1
fi
# Go's fuzzing coordinator sometimes ends a time-boxed run with a bare
# "context deadline exceeded" when the time runs out while it waits on a
# worker, with no failing input. Such a run is tried once more; any failure
# that names an input (or happens twice) fails the script.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for entry in "${targets[@]}"; do
  read -r dir t <<<"$entry"
  for try in 1 2; do
    echo "fuzz: $dir $t ($fuzztime)"
    if "$GO" test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "./$dir" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
      break
    fi
    if [ "$try" -eq 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo "fuzz: $t stopped on the coordinator's deadline without a failing input; trying again"
      continue
    fi
    exit 1
  done
done
