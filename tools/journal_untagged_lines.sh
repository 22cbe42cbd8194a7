#!/usr/bin/env bash
# How often journald leaves a crashing service's output without the start's invocation ID, and whether
# the start's main PID still names it (what library/vllm_ready.py relies on to keep such lines).
# Runs on a host with systemd, for example a lab host:
#   docker exec -i lab-mon bash -s 200 < tools/journal_untagged_lines.sh
# Installs and removes a runtime test unit, /run/systemd/system/journal-untagged-test.service.
set -euo pipefail
starts=${1:-100}
unit=journal-untagged-test
cat >/run/systemd/system/$unit.service <<'UNIT'
[Service]
ExecStart=/bin/sh -c 'echo journal-untagged-marker; exit 3'
UNIT
trap 'rm -f /run/systemd/system/$unit.service; systemctl daemon-reload' EXIT
systemctl daemon-reload
untagged=0 by_pid=0
for _ in $(seq "$starts"); do
    systemctl start $unit 2>/dev/null || true
    sleep 0.3
    eval "$(systemctl show -p InvocationID -p ExecMainPID $unit)"
    # grep reads all of its input: with -q it could stop early, and pipefail would count journalctl's
    # SIGPIPE as a line not found.
    if ! journalctl _SYSTEMD_INVOCATION_ID="$InvocationID" -o cat --no-pager |
        grep journal-untagged-marker >/dev/null; then
        untagged=$((untagged + 1))
        journalctl --boot -o cat --no-pager _SYSTEMD_UNIT=$unit.service _PID="$ExecMainPID" |
            grep journal-untagged-marker >/dev/null && by_pid=$((by_pid + 1))
    fi
    systemctl reset-failed $unit
done
echo "$(systemctl --version | head -1): of $starts instant crashes, $untagged left their line without the" \
    "invocation ID; the main PID found $by_pid of those"
