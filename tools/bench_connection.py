"""What one task costs on the lab's hosts, and which part of it is the connection (issue 18).

Four kinds of task, each in a play of `--tasks` copies against the running lab, `--runs` times:
a task its `when` skips (the controller still hands it to a worker per host),
`ansible.builtin.debug` (the controller alone: no connection, nothing runs on the host),
`ansible.builtin.raw: "true"` (the connection: a process on the host, no Python) and
`ansible.builtin.ping` (a real module: Python starts on the host and imports ansible-core's module
code, which every module does). Each on one host and on all of the lab's hosts at once, through the
lab's connection plugin (ansible.builtin.ssh, as production: one kept-open connection per host, a
session on it per task), community.docker.docker (a `docker exec` per task, the lab's before) and
community.docker.docker_api (the Engine API from the controller, no command per task); `--plugin`
picks some. Pipelining and forks as ansible.cfg sets them. Writes the medians to
docs/benchmarks/connection.md. Needs the lab up (`make lab`); changes nothing on it.

    .venv/bin/python tools/bench_connection.py [--runs 3] [--tasks 20] [--plugin NAME ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUTPUT = REPO / "docs" / "benchmarks" / "connection.md"
PLUGINS = ("ansible.builtin.ssh", "community.docker.docker", "community.docker.docker_api")
TASKS = {
    "skipped": "ansible.builtin.debug: {msg: x}\n      when: false",
    "debug": "ansible.builtin.debug: {msg: x}",
    "raw": 'ansible.builtin.raw: "true"',
    "ping": "ansible.builtin.ping:",
}


def play(hosts: str, action: str, tasks: int) -> str:
    steps = "".join(f"    - name: Step {i}\n      {action}\n" for i in range(tasks))
    return f"---\n- name: Time a task\n  hosts: {hosts}\n  gather_facts: false\n  tasks:\n{steps}"


def run(playbook: Path, plugin: str) -> float:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    command = [BIN / "ansible-playbook", "-i", REPO / "inventories" / "lab", playbook]
    started = time.monotonic()
    # A fixed argument list, no shell: the virtualenv's ansible-playbook on a playbook written here.
    subprocess.run(  # noqa: S603
        [*command, "-e", f"ansible_connection={plugin}"], cwd=REPO, env=env, check=True, capture_output=True
    )
    return time.monotonic() - started


def per_task(work: Path, hosts: str, kind: str, plugin: str, args: argparse.Namespace) -> float:
    """Seconds each further task adds: a play of N tasks against a play of 1, so the start of
    ansible-playbook itself drops out."""
    one, many = work / f"{kind}-{hosts}-1.yml", work / f"{kind}-{hosts}-n.yml"
    one.write_text(play(hosts, TASKS[kind], 1))
    many.write_text(play(hosts, TASKS[kind], args.tasks))
    base = statistics.median(run(one, plugin) for _ in range(args.runs))
    full = statistics.median(run(many, plugin) for _ in range(args.runs))
    return (full - base) / (args.tasks - 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--plugin", action="append", choices=PLUGINS, help="only this plugin (repeatable)")
    args = parser.parse_args()
    hosts = subprocess.run(  # noqa: S603 (a fixed argument list, no shell)
        [BIN / "ansible", "lab", "-i", REPO / "inventories" / "lab", "--list-hosts"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.split()[2:]  # fmt: skip
    targets = {"1 host": hosts[0], f"{len(hosts)} hosts": "lab"}
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for plugin in args.plugin or PLUGINS:
            for label, pattern in targets.items():
                cost = {kind: per_task(Path(work), pattern, kind, plugin, args) for kind in TASKS}
                rows.append((plugin, label, cost))
                print(
                    f"{plugin}, {label}: " + ", ".join(f"{k} {v:.3f} s" for k, v in cost.items()), flush=True
                )
    lines = [
        "# What a task costs, and which part is the connection (tools/bench_connection.py)",
        "",
        f"{datetime.now():%Y-%m-%d}, 2-core, 24 GiB development machine; the lab's hosts "
        f"({', '.join(hosts)}); forks and pipelining from ansible.cfg; seconds each further task adds "
        f"(a play of {args.tasks} tasks against a play of 1), medians of {args.runs} runs.",
        "",
        "| plugin | hosts | skipped by `when` | `debug` (controller only) | `raw` (connection, no Python) "
        "| `ping` (a module) | the module's Python start (`ping` minus `raw`) |",
        "|---|---|---|---|---|---|---|",
    ]
    for plugin, label, cost in rows:
        start = cost["ping"] - cost["raw"]
        figures = " | ".join(f"{seconds:.3f}" for seconds in (*cost.values(), start))
        lines.append(f"| `{plugin}` | {label} | {figures} |")
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
