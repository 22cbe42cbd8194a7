#!/usr/bin/env bash
# A rolling restart of the lab's serving hosts under load: `qwen-infra bench` through the front door
# while `playbooks/rolling.yml -e rolling_restart=true` runs, as molecule/rolling does.
#   tools/bench_rollout.sh NAME [bench load options, e.g. --concurrency 2 or --rate 2]
# Needs the lab up (`make lab`). Prints the rollout's seconds, its slowest tasks and the bench's request
# counts, and exits with the rollout's status; the bench report and the playbook's output go to
# build/artifacts/bench_rollout/NAME.*.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: tools/bench_rollout.sh NAME [bench options]}
shift
export ANSIBLE_CONFIG=$PWD/ansible.cfg
vault=(--vault-id lab@inventories/lab/vault-password.txt)
out=build/artifacts/bench_rollout
mkdir -p "$out"

# The bench client's key, decrypted by Ansible into this shell only (never on a command line or in a log).
key=$(ANSIBLE_LOAD_CALLBACK_PLUGINS=1 ANSIBLE_STDOUT_CALLBACK=ansible.builtin.json \
    .venv/bin/ansible lab-lb -i inventories/lab "${vault[@]}" -m ansible.builtin.debug \
    -a 'msg={{ (qwen_clients | selectattr("name", "eq", "lab-bench") | first).key }}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["plays"][0]["tasks"][0]["hosts"]["lab-lb"]["msg"])')
lb=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' lab-lb)

QWEN_INFRA_API_KEY=$key .venv/bin/qwen-infra bench --base-url "https://$lb/v1" --model qwen3-tiny \
    --ca-bundle .cache/lab-tls/ca.pem --duration 3600 --prompt-tokens 32 --output-tokens 16 \
    --output "$out/$name.json" --no-progress "$@" >/dev/null 2>"$out/$name.bench.err" &
bench=$!
trap 'kill -INT "$bench" 2>/dev/null || true' EXIT
sleep 10  # under way before any host is touched
kill -0 "$bench" || { cat "$out/$name.bench.err"; exit 1; }

started=$(date +%s.%N)
status=0
ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks .venv/bin/ansible-playbook playbooks/rolling.yml \
    -i inventories/lab "${vault[@]}" -e rolling_restart=true >"$out/$name.rollout.log" 2>&1 || status=$?
ended=$(date +%s.%N)
kill -INT "$bench"
wait "$bench" || true
trap - EXIT

python3 - "$name" "$status" "$started" "$ended" "$out" <<'PY'
import json, sys
name, status, started, ended, out = sys.argv[1:]
requests = json.load(open(f"{out}/{name}.json"))["requests"]
print(f"{name}: rollout exit {status}, {float(ended) - float(started):.1f} s; bench requests {requests}")
PY
grep -A4 '^=====' "$out/$name.rollout.log" | tail -4
exit "$status"
