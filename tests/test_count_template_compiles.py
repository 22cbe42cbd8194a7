"""tools/count_template_compiles.py around a real ansible-playbook run on this machine: a variable's
expression is compiled again in every task that names it, and the count says so."""

import subprocess
import sys
import textwrap

from tests.paths import REPO

TOOL = REPO / "tools" / "count_template_compiles.py"
PLAYBOOK = textwrap.dedent(
    """\
    - hosts: localhost
      connection: local
      gather_facts: false
      vars:
        numbers: "{{ range(3) | map('string') | join('-') }}"
      tasks:
        - ansible.builtin.debug: {msg: "one {{ numbers }}"}
        - ansible.builtin.debug: {msg: "two {{ numbers }}"}
        - ansible.builtin.debug: {msg: "three {{ numbers }}"}
          when: numbers == '0-1-2'
        - ansible.builtin.fail: {msg: asked to fail}
          when: fail_now | default(false) | bool
    """
)


def run(tmp_path, *extra):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    return subprocess.run(
        [sys.executable, str(TOOL), "--top", "50", "--", str(playbook), "-i", "localhost,", *extra],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )


def test_an_expression_named_by_three_tasks_is_compiled_in_each(tmp_path):
    done = run(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = [line.split(None, 2) for line in done.stderr.splitlines() if "range(3)" in line]
    assert len(listed) == 1, done.stderr
    assert int(listed[0][1]) >= 3


def test_a_failed_run_is_the_tools_failure(tmp_path):
    done = run(tmp_path, "-e", "fail_now=true")
    assert done.returncode == 2, done.stdout + done.stderr  # ansible-playbook's status for a failed host
    assert "asked to fail" in done.stdout
