"""playbooks/rolling.yml rolls a multi-node group as one server and refuses, before anything runs, a rollout
that holds only part of a group. Runs the real playbook against local hosts: the plan is its first play,
the inventory's validation its second (which these bare inventories fail: they have no keys)."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.paths import REPO

BIN = Path(sys.executable).parent
ENV = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
# The inventory's validation (playbooks/validate.yml), as the run's output names it.
VALIDATION = "PLAY [Check every serving host's inputs]"


def run_rolling(tmp_path, *extra_args):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    group = {**local, "vllm_nnodes": 2, "vllm_master_addr": "10.0.0.1"}
    hosts = {
        "single": local,
        "head": {**group, "vllm_node_rank": 0},
        "worker": {**group, "vllm_node_rank": 1},
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"vllm_servers": {"hosts": hosts}}}}))
    done = subprocess.run(
        [BIN / "ansible-playbook", "playbooks/rolling.yml", "-i", path, *extra_args],
        cwd=REPO, env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_part_of_a_group_is_refused_before_anything_runs(tmp_path):
    rc, output = run_rolling(tmp_path, "--limit", "single,worker")
    assert rc != 0
    assert "the group with head 10.0.0.1 has 2 nodes and this rollout holds 1 (worker)" in output
    assert "Include all of its nodes, or none, in --limit" in output
    assert VALIDATION not in output


def test_whole_groups_and_single_hosts_pass_the_plan(tmp_path):
    """The whole inventory, and a limit to the single-host server, go on to the inventory's validation."""
    for limit in ([], ["--limit", "single"], ["--limit", "head,worker"]):
        _, output = run_rolling(tmp_path, *limit)
        assert "Refuse a multi-node group that is not whole in the rollout" in output, limit
        assert "has 2 nodes and this rollout holds" not in output, limit
        assert VALIDATION in output, (limit, output[-3000:])
