#!/usr/bin/env bash
# Run one step of `make lab` and say how long it took: a cold run takes minutes, and the step that
# is slow on a given machine is the one to look at (docs/converge.md, the cold path).
#   lab/timed.sh LABEL COMMAND [ARGS...]
set -euo pipefail
label=${1:?usage: lab/timed.sh LABEL COMMAND [ARGS...]}
shift
printf '[lab] %s: started %(%H:%M:%S)T\n' "$label" -1 >&2
started=$SECONDS
status=0
"$@" || status=$?
printf '[lab] %s: %s after %d s\n' "$label" "$([ "$status" = 0 ] && echo done || echo "FAILED (exit $status)")" \
  $((SECONDS - started)) >&2
exit "$status"
