"""A staged serving host (vllm_service_enabled: false) is installed and configured but does not serve:
the front door sends it nothing and Prometheus does not scrape its vLLM. Multi-node workers are left out
as before. Runs the roles' own variables through Ansible (tests/playbooks/serving_hosts.yml)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.paths import REPO

BIN = Path(sys.executable).parent


def serving_hosts(tmp_path, servers, workers=()):
    document = {
        "all": {
            "children": {
                "vllm_servers": {"hosts": servers},
                "vllm_workers": {"hosts": {worker: {} for worker in workers}},
            }
        }
    }
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump(document))
    done = subprocess.run(
        [BIN / "ansible-playbook", "-i", inventory, "tests/playbooks/serving_hosts.yml"],
        cwd=REPO, capture_output=True, text=True, check=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
             "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
    )  # fmt: skip
    shown = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    return {role: sorted(hosts) for role, hosts in shown.items()}


def test_a_staged_host_is_neither_a_backend_nor_scraped(tmp_path):
    servers = {
        "node1": {},
        "node2": {"vllm_service_enabled": True},
        "staged": {"vllm_service_enabled": False},
        "head": {},
        "worker": {},
    }
    shown = serving_hosts(tmp_path, servers, workers=["worker"])
    assert shown == {"front_door": ["head", "node1", "node2"], "prometheus": ["head", "node1", "node2"]}


def test_without_staged_hosts_every_server_serves(tmp_path):
    shown = serving_hosts(tmp_path, {"node1": {}, "node2": {}})
    assert shown == {"front_door": ["node1", "node2"], "prometheus": ["node1", "node2"]}
