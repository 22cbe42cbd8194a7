#!/usr/bin/env bash
# Run steps of `make lab` that do not depend on each other side by side, each timed as lab/timed.sh
# times it, and wait for all of them: a cold machine downloads and unpacks the virtualenv, Docker's
# packages and the base image at once instead of one after the other (docs/converge.md, the cold path).
#   lab/together.sh LABEL COMMAND [LABEL COMMAND ...]     each COMMAND is a bash command line
# Exits non-zero, naming them, when any step failed; the others still run to their end.
set -uo pipefail
here=$(dirname "$0")
labels=()
pids=()
while [ $# -ge 2 ]; do
  bash "$here/timed.sh" "$1" bash -c "$2" &
  pids+=("$!")
  labels+=("$1")
  shift 2
done
[ $# -eq 0 ] || { echo "usage: lab/together.sh LABEL COMMAND [LABEL COMMAND ...]" >&2; exit 2; }
failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${labels[$i]}")
done
if [ "${#failed[@]}" -gt 0 ]; then
  printf '[lab] failed: %s\n' "${failed[*]}" >&2
  exit 1
fi
