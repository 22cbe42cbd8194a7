"""How long `site.yml` takes to re-converge the lab with nothing to change, and how that grows with hosts.

For each host count (1, 2, 4, 8 by default) the lab's inventory is narrowed or widened to that many hosts
(an inventory of its own under build/bench-converge/, beside the lab's group_vars), the hosts are brought
up and converged once (its writes flushed), then `site.yml` runs again `--runs` times (default 5); each
re-run must report changed=0. Every run's wall time, per-stage (play) and per-task times come from
Ansible's json callback.

    host count   hosts                                          what runs on them
    1            lab-node1                                      every stage (one vLLM server)
    2            lab-node1, lab-node2                           every stage (the two-host lab)
    4            + lab-lb, lab-mon                              the lab as `make lab` builds it
    8            + lab-node3 .. lab-node6 (staged serving hosts) every stage but the vLLM start
                                                                (vllm_service_enabled: false)

The hosts are reached as the lab inventory reaches them (over SSH, lab/tasks/ssh.yml); `--connection NAME`
gives every host that connection plugin instead (community.docker.docker: a `docker exec` per task);
`--against NAME` times every re-run a second time with every host on NAME, right after the first (A, B,
A, B, ...), so that two connections are compared on the same machine at the same moment; `--against-ref
REF` times it a second time with the playbooks, roles and ansible.cfg of commit REF (a git worktree under
build/, run with this checkout's virtualenv on the same hosts and inventory), so that a change is
compared with the code before it the same way; `--against-env NAME=VALUE` (repeatable) times it a
second time with those environment variables set (for example PYTHONPYCACHEPREFIX, to run without the
virtualenv's byte-compiled files). They combine: `--against-ref REF --against-env NAME=VALUE` is commit
REF with that variable set.

Writes docs/benchmarks/converge.{json,md,png} (medians) and the raw runs under build/bench-converge-runs/.
At the end the lab's own inventory is converged again and the staged hosts are removed, so `make lab`
finds the lab as it left it. Run with `make bench-converge` (needs `make lab` first: the wheelhouse,
the lab model and the base image).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
import yaml

matplotlib.use("Agg")  # chosen before pyplot is imported: no display here
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parent.parent
LAB_INVENTORY = REPO / "inventories" / "lab"
# Same depth below the project as inventories/lab: the lab's group_vars derive paths from inventory_dir.
WORK = REPO / "build" / "bench-converge"
WORK_AGAINST = REPO / "build" / "bench-converge-against"
WORK_REF = REPO / "build" / "bench-converge-ref"
OUTPUT = REPO / "docs" / "benchmarks"
BIN = Path(sys.executable).parent
VAULT = ["--vault-id", f"lab@{LAB_INVENTORY / 'vault-password.txt'}"]
STAGED = ["lab-node3", "lab-node4", "lab-node5", "lab-node6"]
COUNTS = (1, 2, 4, 8)


@dataclass(frozen=True)
class SecondRun:
    """What each re-run is compared with, timed right after it on the same hosts: every host on another
    connection plugin, another commit's playbooks, roles and ansible.cfg, or more environment variables."""

    label: str
    connection: str | None = None
    project: Path = REPO
    env: Mapping[str, str] = field(default_factory=dict)


def parse_env(assignments: list[str]) -> dict[str, str]:
    """NAME=VALUE arguments as a mapping; anything else refused before any host is brought up."""
    env = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise SystemExit(f"--against-env {assignment!r}: give NAME=VALUE")
        env[name] = value
    return env


def composition(count: int) -> dict[str, list[str]]:
    """The inventory groups of the lab narrowed or widened to `count` hosts."""
    if count not in COUNTS:
        raise SystemExit(f"host count {count}: the benchmark knows {', '.join(map(str, COUNTS))}")
    groups: dict[str, list[str]] = {"vllm_servers": ["lab-node1"], "load_balancers": [], "monitoring": []}
    if count >= 2:
        groups["vllm_servers"].append("lab-node2")
    if count >= 4:
        groups["load_balancers"], groups["monitoring"] = ["lab-lb"], ["lab-mon"]
    if count >= 8:
        groups["vllm_servers"] += STAGED
    return groups


def host_vars(host: str, connection: str | None) -> dict[str, Any]:
    """Inventory host variables, which win over the lab's group_vars."""
    own: dict[str, Any] = {"vllm_service_enabled": False} if host in STAGED else {}
    return own | ({"ansible_connection": connection} if connection else {})


@functools.cache
def connection_loader() -> Any:
    """Ansible's connection plugin loader, with the collections configured (once per process)."""
    from ansible.plugins.loader import connection_loader, init_plugin_loader  # noqa: PLC0415 - only here

    init_plugin_loader()
    return connection_loader


def refuse_unknown_connection(name: str | None) -> None:
    """A connection plugin Ansible cannot find is refused before any host is brought up."""
    if name is not None and connection_loader().find_plugin(name) is None:
        raise SystemExit(f"connection plugin {name!r}: Ansible finds none (ansible-doc -t connection -l)")


def refuse_unknown_ref(ref: str | None) -> None:
    """A commit git cannot find is refused before any host is brought up."""
    if ref is None:
        return
    done = subprocess.run(  # noqa: S603 - fixed git command, the ref as one argument
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],  # noqa: S607 - git from PATH
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"--against-ref {ref!r}: no such commit in {REPO} (git log --oneline)")


def checkout(ref: str | None, path: Path = WORK_REF) -> None:
    """This repository at `ref` as a git worktree of its own at `path`; none for None (removed)."""
    git = ["git", "-C", str(REPO), "worktree"]
    subprocess.run([*git, "remove", "--force", str(path)], capture_output=True, check=False)  # noqa: S603
    if ref is not None:
        subprocess.run([*git, "add", "--detach", str(path), ref], capture_output=True, check=True)  # noqa: S603


def write_inventory(groups: dict[str, list[str]], connection: str | None, work: Path = WORK) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    link = work / "group_vars"
    if not link.is_symlink():
        link.symlink_to(os.path.relpath(LAB_INVENTORY / "group_vars", work))
    children = {
        name: {"hosts": {host: host_vars(host, connection) for host in hosts}}
        for name, hosts in groups.items()
    }
    inventory = {"all": {"children": {"lab": {"children": children}, "gpu_hosts": {"hosts": {}}}}}
    path = work / "hosts.yml"
    header = "---\n# Written by tools/bench_converge.py.\n"
    path.write_text(header + yaml.safe_dump(inventory, sort_keys=False))
    return work


def children_cpu_s() -> float:
    """CPU seconds (user and system) of every finished child process, their own children included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def playbook_env(project: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """ansible-playbook's environment: this one, `project`'s ansible.cfg, and `extra` over both."""
    return {**os.environ, "ANSIBLE_CONFIG": str(project / "ansible.cfg"), **extra}


def ansible_playbook(
    inventory: Path,
    playbook: str,
    *,
    json_output: bool,
    project: Path = REPO,
    extra_env: Mapping[str, str] = {},
) -> tuple[float, float, str]:
    """(wall seconds, the controller's CPU seconds, stdout), the playbook and ansible.cfg of `project` (this
    checkout, or another commit's worktree), with `extra_env` set. The controller's share: ansible-playbook,
    its workers and the ssh (or `docker exec`) clients they start; the modules' own work runs in the
    containers, outside this process tree. On a real fleet that is the part that grows on the controller
    per host."""
    env = playbook_env(project, extra_env)
    if json_output:
        env |= {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    cpu_before = children_cpu_s()
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own playbooks, argument list, no shell
        [BIN / "ansible-playbook", "-i", str(inventory), *VAULT, playbook],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    cpu = children_cpu_s() - cpu_before
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise SystemExit(f"{playbook} failed on {inventory} (exit {done.returncode}):\n{tail}")
    return seconds, cpu, done.stdout


def _duration(span: dict[str, str]) -> float:
    if "end" not in span:  # the json callback leaves a play's end out
        return 0.0
    return (datetime.fromisoformat(span["end"]) - datetime.fromisoformat(span["start"])).total_seconds()


def profile(report: dict[str, Any]) -> dict[str, Any]:
    """Changed count, and seconds per play and per task (a task's time: first host's start to last's end;
    a play's time: its tasks' times added up)."""
    plays: dict[str, float] = defaultdict(float)
    tasks: dict[str, float] = defaultdict(float)
    task_count = 0
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["hosts"]:
                task_count += 1
                name = f"{play['play']['name']} / {task['task']['name']}"
                tasks[name] += _duration(task["task"]["duration"])
                plays[play["play"]["name"]] += _duration(task["task"]["duration"])
    changed = sum(stats["changed"] for stats in report["stats"].values())
    return {"changed": changed, "tasks_run": task_count, "plays": dict(plays), "tasks": dict(tasks)}


def rerun(
    inventory: Path, count: int, run: int, log: Path, *, second: SecondRun | None = None
) -> dict[str, Any]:
    """One timed `site.yml` with nothing to change (as `second` says, if given); refused if it changed
    anything."""
    project, extra_env = (second.project, second.env) if second else (REPO, {})
    seconds, cpu, stdout = ansible_playbook(
        inventory, "site.yml", json_output=True, project=project, extra_env=extra_env
    )
    against = second.label if second else None
    suffix = "-" + re.sub(r"[^A-Za-z0-9._-]+", "-", against) if against else ""
    (log / f"hosts{count}-run{run + 1}{suffix}.json").write_text(stdout)
    label = f", {against}" if against else ""
    sample = {"seconds": round(seconds, 2), "controller_cpu_s": round(cpu, 2)}
    sample |= profile(json.loads(stdout))
    if sample["changed"]:
        raise SystemExit(f"[{count} hosts{label}] run {run + 1} changed {sample['changed']}: not idempotent")
    print(
        f"[{count} hosts{label}] run {run + 1}: {seconds:.1f} s, controller CPU {cpu:.1f} s,"
        f" {sample['tasks_run']} tasks",
        flush=True,
    )
    return sample


def medians(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs_s": [sample["seconds"] for sample in samples],
        "median_s": round(statistics.median(sample["seconds"] for sample in samples), 2),
        "controller_cpu_s": [sample["controller_cpu_s"] for sample in samples],
        "controller_cpu_median_s": round(statistics.median(s["controller_cpu_s"] for s in samples), 2),
    }


def measure(
    count: int, runs: int, log: Path, connection: str | None, second: SecondRun | None
) -> dict[str, Any]:
    """`second`, if given, gives every re-run a second one right after it."""
    groups = composition(count)
    inventory = write_inventory(groups, connection)
    other = None
    if second:
        other = write_inventory(groups, second.connection, WORK_AGAINST) if second.connection else inventory
    hosts = [host for members in groups.values() for host in members]
    print(f"[{count} hosts] bringing up {', '.join(hosts)}", flush=True)
    ansible_playbook(inventory, "lab/up.yml", json_output=False)
    catch_up_s, _, _ = ansible_playbook(inventory, "site.yml", json_output=False)
    # The catch-up writes gigabytes (a virtualenv per new host); flushed now, not during the timed runs.
    os.sync()
    print(f"[{count} hosts] converged in {catch_up_s:.0f} s; {runs} runs with nothing to change", flush=True)
    samples, other_samples = [], []
    for run in range(runs):
        samples.append(rerun(inventory, count, run, log))
        if other:
            other_samples.append(rerun(other, count, run, log, second=second))
    stages = {
        name: round(statistics.median(sample["plays"].get(name, 0.0) for sample in samples), 2)
        for name in samples[0]["plays"]
    }
    task_medians = {
        name: statistics.median(s["tasks"][name] for s in samples) for name in samples[0]["tasks"]
    }
    slowest = sorted(task_medians, key=lambda name: -task_medians[name])
    result = {"hosts": count, "inventory": groups, "catch_up_s": round(catch_up_s, 1), **medians(samples)}
    result |= {
        "tasks_run": samples[0]["tasks_run"],
        "stages_median_s": stages,
        "slowest_tasks_median_s": {name: round(task_medians[name], 2) for name in slowest[:10]},
    }
    if second:
        result["against"] = {"label": second.label, **medians(other_samples)}
    return result


def slope(results: list[dict[str, Any]], key: str = "median_s") -> float:
    """Seconds per added host: least squares over (hosts, the results' `key`)."""
    xs, ys = [r["hosts"] for r in results], [r[key] for r in results]
    if len(xs) < 2:
        return float("nan")
    return statistics.linear_regression(xs, ys).slope


def write_report(results: list[dict[str, Any]], machine: str, settings: str, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    per_host = slope(results)
    cpu_per_host = slope(results, "controller_cpu_median_s")
    summary = {
        "machine": machine,
        "settings": settings,
        "seconds_per_added_host": round(per_host, 2),
        "controller_cpu_seconds_per_added_host": round(cpu_per_host, 2),
    }
    (OUTPUT / f"{name}.json").write_text(json.dumps({**summary, "results": results}, indent=2) + "\n")
    lines = [
        "# Re-converge with nothing to change (tools/bench_converge.py)",
        "",
        f"Machine: {machine}. Settings: {settings}. Medians of the runs; `make bench-converge` writes this.",
        "",
        "| hosts | re-converge median (s) | runs (s) | controller CPU, median (s) | tasks run |"
        " first converge of the added hosts (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        runs = ", ".join(f"{s:.1f}" for s in r["runs_s"])
        row = [str(r["hosts"]), f"{r['median_s']:.1f}", runs, f"{r['controller_cpu_median_s']:.1f}",
               str(r["tasks_run"]), f"{r['catch_up_s']:.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    lines += against_lines(results)
    lines += [
        "",
        f"Time per added host (least squares over the medians): {per_host:.2f} s. The controller's CPU per"
        f" added host (ansible-playbook, its workers and their connection's clients; the modules run in the"
        f" containers): {cpu_per_host:.2f} s.",
        "",
    ]
    largest = results[-1]
    lines += [
        f"## Where the time goes at {largest['hosts']} hosts (medians)",
        "",
        "| stage | s |",
        "|---|---|",
    ]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in largest["stages_median_s"].items()]
    lines += ["", "| slowest tasks | s |", "|---|---|"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in largest["slowest_tasks_median_s"].items()]
    (OUTPUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    plot(results, machine, name)


def against_lines(results: list[dict[str, Any]]) -> list[str]:
    """The second table, where an `--against` option gave one: each count's runs interleaved."""
    if "against" not in results[0]:
        return []
    other = [{"hosts": r["hosts"], **r["against"]} for r in results]
    name = other[0]["label"]
    lines = [
        "",
        f"Every re-run above was followed at once by one with `{name}`:",
        "",
        f"| hosts | median above (s) | `{name}`, median (s) | its runs (s) | its controller CPU (s) |",
        "|---|---|---|---|---|",
    ]
    for r, o in zip(results, other, strict=True):
        runs = ", ".join(f"{s:.1f}" for s in o["runs_s"])
        row = [
            str(r["hosts"]),
            f"{r['median_s']:.1f}",
            f"{o['median_s']:.1f}",
            runs,
            f"{o['controller_cpu_median_s']:.1f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        f"Time per added host with `{name}` (least squares over the medians): {slope(other):.2f} s; its"
        f" controller's CPU per added host: {slope(other, 'controller_cpu_median_s'):.2f} s.",
    ]
    return lines


def plot(results: list[dict[str, Any]], machine: str, name: str) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for r in results:
        axes.scatter([r["hosts"]] * len(r["runs_s"]), r["runs_s"], color="0.7", s=12)
    axes.plot([r["hosts"] for r in results], [r["median_s"] for r in results], marker="o", label="median")
    if "against" in results[0]:
        other = [r["against"]["median_s"] for r in results]
        label = f"median, {results[0]['against']['label']}"
        axes.plot([r["hosts"] for r in results], other, marker="s", linestyle="--", label=label)
    axes.set_xlabel("hosts in the inventory")
    axes.set_ylabel("site.yml with nothing to change (s)")
    axes.set_title(f"Re-converge time ({machine})", fontsize=9)
    axes.set_ylim(bottom=0)
    axes.legend()
    figure.tight_layout()
    figure.savefig(OUTPUT / f"{name}.png", dpi=120)


def restore_lab() -> None:
    """The lab's own inventory converged again; the staged hosts removed."""
    print("restoring the lab: site.yml on inventories/lab, staged hosts removed", flush=True)
    docker = ["docker", "rm", "--force", "--volumes", *STAGED]
    subprocess.run(docker, capture_output=True, check=False)  # noqa: S603 - fixed arguments
    ansible_playbook(LAB_INVENTORY, "lab/up.yml", json_output=False)
    ansible_playbook(LAB_INVENTORY, "site.yml", json_output=False)


def second_run(args: argparse.Namespace) -> SecondRun | None:
    """The run each re-run is compared with, from the `--against` options given (any of them together:
    another commit without this machine's byte-compiled files is `--against-ref` with `--against-env`)."""
    env = parse_env(args.against_env or [])
    labels = [
        f"{args.against}" if args.against else "",
        f"commit {args.against_ref}" if args.against_ref else "",
    ]
    labels += [f"{name}={value}" for name, value in env.items()]
    if not any(labels):
        return None
    return SecondRun(
        label=", ".join(filter(None, labels)),
        connection=args.against,
        project=WORK_REF if args.against_ref else REPO,
        env=env,
    )


def this_machine() -> str:
    """Cores and memory of this machine (controller and lab hosts share them)."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, shared by the controller and every lab host"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="1,2,4,8", help="host counts, ascending (default 1,2,4,8)")
    parser.add_argument("--runs", type=int, default=5, help="re-converges per host count (default 5)")
    parser.add_argument("--machine", default=this_machine(), help="the machine, as the report names it")
    parser.add_argument("--name", default="converge", help="report file names under docs/benchmarks/")
    parser.add_argument("--connection", help="every host's connection plugin (default: the lab's)")
    parser.add_argument("--against", help="also time each re-run with every host on this connection plugin")
    parser.add_argument("--against-ref", help="also time each re-run with this commit's playbooks and roles")
    parser.add_argument(
        "--against-env", action="append", metavar="NAME=VALUE",
        help="also time each re-run with this environment variable set (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    counts = sorted(int(count) for count in args.hosts.split(","))
    for count in counts:  # every count refused before any host is brought up
        composition(count)
    for name in (args.connection, args.against):
        refuse_unknown_connection(name)
    refuse_unknown_ref(args.against_ref)
    second = second_run(args)
    log = WORK.parent / "bench-converge-runs"  # not in the inventory directory, which Ansible reads whole
    log.mkdir(parents=True, exist_ok=True)
    config = subprocess.run(  # noqa: S603 - our own toolchain, argument list, no shell
        [BIN / "ansible-config", "dump", "--only-changed", "-t", "all"],
        cwd=REPO, capture_output=True, text=True, check=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    ).stdout  # fmt: skip
    settings = "; ".join(
        line.split("(")[0].strip() + "=" + line.split("=", 1)[1].strip()
        for line in config.splitlines()
        if line.startswith(("DEFAULT_FORKS", "ANSIBLE_PIPELINING", "DEFAULT_GATHERING"))
    )
    connection = args.connection or "ansible.builtin.ssh (the lab inventory's)"
    settings = "; ".join(filter(None, [settings, f"connection={connection}"]))
    results = []
    try:
        checkout(args.against_ref)  # removed in `finally`, whatever stops the benchmark
        for count in counts:
            result = measure(count, args.runs, log, args.connection, second)
            results.append(result)
    finally:
        if results:
            write_report(results, args.machine, settings, args.name)
        checkout(None)
        try:
            restore_lab()
        except SystemExit as failure:  # reported, without hiding why the benchmark stopped
            print(f"the lab was not restored (run `make lab`): {failure}", file=sys.stderr)
    print((OUTPUT / f"{args.name}.md").read_text())


if __name__ == "__main__":
    main()
