"""A tagged `include_tasks` hands its tags to the tasks it brings (`apply: tags`).

An include's own tags select the include and nothing it brings: with `--tags quantize`, the quantize
role's include ran and none of its tasks did. The first test shows that in a real run; the second asks
it of every tagged include in the roles and playbooks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO

INCLUDE = "ansible.builtin.include_tasks"


def tasks_in(entries):
    """Every task of a task list, those in blocks (and their rescue and always) included."""
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        yield entry
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from tasks_in(entry.get(key))


def tagged_includes():
    for directory in ("roles", "playbooks"):
        for path in sorted((REPO / directory).rglob("*.yml")):
            document = yaml.safe_load(path.read_text())
            if not isinstance(document, list):
                continue
            for task in tasks_in(document):
                if INCLUDE in task and task.get("tags"):
                    yield pytest.param(
                        path.relative_to(REPO), task, id=f"{path.relative_to(REPO)}:{task['name']}"
                    )


@pytest.mark.parametrize(("path", "task"), list(tagged_includes()))
def test_a_tagged_include_applies_its_tags_to_what_it_brings(path, task):
    arguments = task[INCLUDE]
    assert isinstance(arguments, dict), f"{path}: write `{INCLUDE}: {{file: ..., apply: {{tags: ...}}}}`"
    applied = set((arguments.get("apply") or {}).get("tags") or [])
    assert set(task["tags"]) <= applied, f"{path}: {task['name']!r} applies {sorted(applied)}"


def test_the_tagged_includes_are_found():
    found = {str(param.values[0]) for param in tagged_includes()}
    assert {"roles/quantize/tasks/main.yml", "roles/journal_remote/tasks/main.yml"} <= found


ROLE_MAIN = """\
- name: Without apply
  ansible.builtin.include_tasks: inner.yml
  tags: [selected]
- name: With apply
  ansible.builtin.include_tasks:
    file: inner.yml
    apply:
      tags: [selected]
  tags: [selected]
"""
INNER = "- name: Inner\n  ansible.builtin.debug:\n    msg: INNER RAN\n"


def test_without_apply_the_selected_include_brings_nothing(tmp_path: Path):
    tasks = tmp_path / "roles" / "probe" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(ROLE_MAIN)
    (tasks / "inner.yml").write_text(INNER)
    (tmp_path / "play.yml").write_text("- hosts: localhost\n  gather_facts: false\n  roles: [probe]\n")
    done = subprocess.run(
        [Path(sys.executable).parent / "ansible-playbook", "-i", "localhost,", "-c", "local",
         "play.yml", "--tags", "selected"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
             "ANSIBLE_ROLES_PATH": str(tmp_path / "roles")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("INNER RAN") == 1  # from the include with `apply`, not the other
