#!/usr/bin/env bash
# Runs `molecule test` for each scenario named, stopping at the first that fails. Each run's output is
# kept in .cache/molecule-logs/; on a failure, the lines that say what failed are printed again last,
# since molecule's destroy and recap push them out of the tail a CI log shows.
set -euo pipefail
# Molecule boxes each step's output and wraps it at the terminal's width (80 columns without one, as in
# CI): wide enough, a failed test's summary line stays whole.
export COLUMNS="${COLUMNS:-400}"
logs=.cache/molecule-logs
mkdir -p "$logs"
for scenario in "$@"; do
  log="$logs/$scenario.log"
  started=$SECONDS
  if molecule test -s "$scenario" 2>&1 | tee "$log"; then
    echo "[molecule] $scenario passed in $((SECONDS - started)) s"
    continue
  fi
  echo "[molecule] $scenario FAILED after $((SECONDS - started)) s; what failed (whole output: $log):"
  sed -E 's/\x1b\[[0-9;]*m//g; s/^ *│ ?//' "$log" \
    | grep -E '^(FAILED|ERROR) |^E +[A-Za-z]|fatal: \[|failed=[1-9]' | cut -c1-400 | tail -n 20
  exit 1
done
