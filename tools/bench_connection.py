"""What one task costs per lab host through each Docker connection plugin (issue 18).

Runs a play of `--tasks` no-op module calls (ansible.builtin.ping, which does nothing on the host but
start Python) against the running lab's hosts, `--runs` times for each plugin: community.docker.docker
(the `docker exec` command, the lab's setting) and community.docker.docker_api (the Engine API from the
controller's Python, no command per task). Pipelining and forks as ansible.cfg sets them. Writes the
medians to docs/benchmarks/connection.md. Needs the lab up (`make lab`); changes nothing on it.

    .venv/bin/python tools/bench_connection.py [--runs 3] [--tasks 20]
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
PLUGINS = ("community.docker.docker", "community.docker.docker_api")


def play(tasks: int) -> str:
    steps = "".join(f"    - name: No-op {i}\n      ansible.builtin.ping:\n" for i in range(tasks))
    return f"---\n- name: Time the connection\n  hosts: lab\n  gather_facts: false\n  tasks:\n{steps}"


def run(playbook: Path, plugin: str) -> float:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    command = [BIN / "ansible-playbook", "-i", REPO / "inventories" / "lab", playbook]
    started = time.monotonic()
    # A fixed argument list, no shell: the virtualenv's ansible-playbook on a playbook written here.
    subprocess.run(  # noqa: S603
        [*command, "-e", f"ansible_connection={plugin}"], cwd=REPO, env=env, check=True, capture_output=True
    )
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args()
    hosts = subprocess.run(  # noqa: S603 (a fixed argument list, no shell)
        [BIN / "ansible", "lab", "-i", REPO / "inventories" / "lab", "--list-hosts"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.splitlines()[1:]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as work:
        one, many = Path(work) / "one.yml", Path(work) / "many.yml"
        one.write_text(play(1))
        many.write_text(play(args.tasks))
        for plugin in PLUGINS:
            # The difference between a play of N tasks and one of 1 is N - 1 tasks on every host at once,
            # without the start of ansible-playbook itself.
            base = statistics.median(run(one, plugin) for _ in range(args.runs))
            full = statistics.median(run(many, plugin) for _ in range(args.runs))
            rows.append((plugin, base, full, (full - base) / (args.tasks - 1)))
            print(f"{plugin}: {full:.1f} s for {args.tasks} tasks, {rows[-1][3]:.3f} s per task", flush=True)
    lines = [
        "# What a task costs per connection plugin (tools/bench_connection.py)",
        "",
        f"{datetime.now():%Y-%m-%d}, 2-core, 24 GiB development machine; the lab's {len(hosts)} hosts "
        f"at once (forks and pipelining from ansible.cfg); medians of {args.runs} runs; "
        "ansible.builtin.ping as the task.",
        "",
        f"| plugin | play of 1 task (s) | play of {args.tasks} tasks (s) | "
        "each further task, all hosts (s) |",
        "|---|---|---|---|",
        *[f"| `{plugin}` | {base:.1f} | {full:.1f} | {per:.3f} |" for plugin, base, full, per in rows],
        "",
    ]
    OUTPUT.write_text("\n".join(lines))
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
