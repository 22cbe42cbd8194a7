"""tools/bench_converge.py's own logic: which hosts each count means, and how a json-callback report becomes
stage and task times (the benchmark itself needs the lab: `make bench-converge`)."""

import argparse
import subprocess
import sys

import pytest

from tools import bench_converge


def test_a_count_the_benchmark_does_not_know_is_refused():
    with pytest.raises(SystemExit, match="host count 3"):
        bench_converge.composition(3)


def test_a_connection_plugin_ansible_cannot_find_is_refused():
    with pytest.raises(SystemExit, match=r"community\.docker\.dokcer"):
        bench_converge.refuse_unknown_connection("community.docker.dokcer")
    bench_converge.refuse_unknown_connection("community.docker.docker")  # a collection's plugin is found
    bench_converge.refuse_unknown_connection(None)  # the lab inventory's own


def test_eight_hosts_are_the_lab_and_four_staged_servers():
    groups = bench_converge.composition(8)
    hosts = [host for members in groups.values() for host in members]
    assert len(hosts) == len(set(hosts)) == 8
    assert groups["load_balancers"] == ["lab-lb"] and groups["monitoring"] == ["lab-mon"]


def span(start, end):
    return {"start": f"2026-12-03T06:00:{start:02d}.000000Z", "end": f"2026-12-03T06:00:{end:02d}.000000Z"}


def test_profile_adds_task_times_per_stage_and_counts_changes():
    report = {
        "plays": [
            {
                "play": {"name": "A", "duration": {"start": "2026-12-03T06:00:00.000000Z"}},
                "tasks": [
                    {"task": {"name": "t1", "duration": span(0, 2)}, "hosts": {"h1": {}, "h2": {}}},
                    {"task": {"name": "skipped everywhere", "duration": span(2, 3)}, "hosts": {}},
                    {"task": {"name": "t2", "duration": span(3, 6)}, "hosts": {"h1": {}}},
                ],
            }
        ],
        "stats": {"h1": {"changed": 1}, "h2": {"changed": 0}},
    }
    profile = bench_converge.profile(report)
    assert profile["changed"] == 1
    assert profile["tasks_run"] == 2
    assert profile["plays"] == {"A": 5.0}
    assert profile["tasks"] == {"A / t1": 2.0, "A / t2": 3.0}


def test_the_controller_s_cpu_counts_finished_children_only():
    before = bench_converge.children_cpu_s()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    spent = bench_converge.children_cpu_s() - before
    assert spent > 0.05  # a child's loop that takes a good part of a second on any machine


def test_a_commit_git_cannot_find_is_refused():
    with pytest.raises(SystemExit, match="no-such-commit"):
        bench_converge.refuse_unknown_ref("no-such-commit")
    bench_converge.refuse_unknown_ref("HEAD")  # this checkout's own commit is found
    bench_converge.refuse_unknown_ref(None)  # no second run asked for


def test_the_second_checkout_is_the_commit_asked_for_and_is_removed_after(tmp_path):
    # A path of the test's own: a benchmark running beside the tests keeps its worktree (WORK_REF).
    worktree = tmp_path / "ref"
    git = ["git", "-C", str(bench_converge.REPO), "rev-parse", "HEAD"]
    head = subprocess.run(git, capture_output=True, text=True, check=True).stdout
    try:
        bench_converge.checkout("HEAD", worktree)
        checked_out = subprocess.run(
            ["git", "-C", str(worktree), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout
        assert checked_out == head
        assert (worktree / "site.yml").is_file()
    finally:
        bench_converge.checkout(None, worktree)
    assert not worktree.exists()


def test_an_environment_setting_that_is_not_name_equals_value_is_refused():
    for bad in ("PYTHONPYCACHEPREFIX", "=build/x", "NOT A NAME=1"):
        with pytest.raises(SystemExit, match="give NAME=VALUE"):
            bench_converge.parse_env([bad])
    assert bench_converge.parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}


def test_the_second_run_s_environment_is_set_over_this_one_and_the_project_s_config(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", "from-this-shell")
    env = bench_converge.playbook_env(tmp_path, {"PYTHONPYCACHEPREFIX": "build/none", "ANSIBLE_FORKS": "5"})
    assert env["PYTHONPYCACHEPREFIX"] == "build/none"
    assert env["ANSIBLE_FORKS"] == "5"
    assert env["ANSIBLE_CONFIG"] == str(tmp_path / "ansible.cfg")
    assert bench_converge.playbook_env(tmp_path, {})["PYTHONPYCACHEPREFIX"] == "from-this-shell"


def test_the_against_options_combine_into_one_second_run():
    parser_args = {"against": None, "against_ref": "HEAD", "against_env": ["PYTHONPYCACHEPREFIX=build/none"]}
    second = bench_converge.second_run(argparse.Namespace(**parser_args))
    assert second.project == bench_converge.WORK_REF
    assert dict(second.env) == {"PYTHONPYCACHEPREFIX": "build/none"}
    assert second.connection is None
    assert second.label == "commit HEAD, PYTHONPYCACHEPREFIX=build/none"
    nothing = argparse.Namespace(against=None, against_ref=None, against_env=None)
    assert bench_converge.second_run(nothing) is None
