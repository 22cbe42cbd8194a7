"""playbooks/rolling.yml refuses a node of a multi-node group before anything runs (it rolls one host at
a time). Runs the real playbook against local hosts: the refusal is its first play."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.paths import REPO

BIN = Path(sys.executable).parent
ENV = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}


def run_rolling(tmp_path, *extra_args):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {"single": {**local}, "head": {**local, "vllm_nnodes": 2}, "worker": {**local, "vllm_nnodes": 2}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"vllm_servers": {"hosts": hosts}}}}))
    done = subprocess.run(
        [BIN / "ansible-playbook", "playbooks/rolling.yml", "-i", path, *extra_args],
        cwd=REPO, env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_a_multi_node_group_is_refused_before_anything_runs(tmp_path):
    rc, output = run_rolling(tmp_path)
    assert rc != 0
    assert "head is a node of a multi-node group (vllm_nnodes 2)" in output
    assert "roll the other servers with --limit" in output
    assert "Check the vllm role's inputs" not in output


def test_the_single_host_servers_pass_the_refusal_with_limit(tmp_path):
    """Limited to the single-host server, the rollout goes on to the inventory's validation (which this
    bare inventory then fails: it has no key)."""
    _, output = run_rolling(tmp_path, "--limit", "single")
    assert "is a node of a multi-node group" not in output
    assert "Refuse to roll a node of a multi-node group" in output
    assert "Check the vllm role's inputs" in output, output[-3000:]
