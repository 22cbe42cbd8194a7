"""callback_plugins/vars_files_once.py in real ansible-playbook runs with the repository's ansible.cfg: a
play's vars file is parsed once, at the play's start, and its templates still render. Shown by changing
the file during the run: with the plugin the play keeps the values it started with (the file was not
read again for the later task), without it the next task reads the new file."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.paths import REPO

PLAYBOOK = textwrap.dedent(
    """\
    - hosts: all
      gather_facts: false
      vars_files: [site.yml]
      tasks:
        - name: Change the vars file during the run
          ansible.builtin.copy:
            dest: "{{ playbook_dir }}/site.yml"
            content: "value: changed\\nderived: \\"{{ '{{' }} value {{ '}}' }}-derived\\"\\n"
            mode: "0644"
          delegate_to: localhost
          run_once: true

        - name: Show the values
          ansible.builtin.debug:
            msg: "{{ inventory_hostname }} value={{ value }} derived={{ derived }}"
    """
)


def run(tmp_path: Path, callbacks: str) -> str:
    (tmp_path / "site.yml").write_text('value: original\nderived: "{{ value }}-derived"\n')
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "hosts.ini").write_text(
        "".join(
            f"host{n} ansible_connection=local ansible_python_interpreter={sys.executable}\n" for n in (1, 2)
        )
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_CALLBACKS_ENABLED": callbacks}
    done = subprocess.run(
        [Path(sys.executable).parent / "ansible-playbook", "-i", "hosts.ini", "play.yml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("callbacks", "seen"),
    [
        ("load_before_fork, vars_files_once", "value=original derived=original-derived"),
        ("load_before_fork", "value=changed derived=changed-derived"),
    ],
)
def test_a_play_s_vars_file_is_read_once_with_the_plugin_and_again_for_each_task_without(
    tmp_path, callbacks, seen
):
    output = run(tmp_path, callbacks)
    assert f"host1 {seen}" in output and f"host2 {seen}" in output, output


def test_ansible_cfg_enables_it():
    enabled = subprocess.run(
        [Path(sys.executable).parent / "ansible-config", "dump", "--only-changed"],
        cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "vars_files_once" in next(line for line in enabled.splitlines() if "CALLBACKS_ENABLED" in line)
