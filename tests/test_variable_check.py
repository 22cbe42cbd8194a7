"""Typos are caught: a variable named like a role's that its argument specs do not know is refused with
the nearest valid name where qwen_infra_strict is on, and warned about elsewhere."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from qwen_infra.argument_specs import role_options
from qwen_infra.names import unknown_variables

from tests.paths import REPO

ANSIBLE = Path(sys.executable).parent / "ansible"


def run_check(strict: bool, *extra: str) -> subprocess.CompletedProcess:
    """The real action plugin through ansible-core, on localhost, with extra variables."""
    return subprocess.run(
        [ANSIBLE, "localhost", "-m", "qwen_variable_check", "-a", f"roles_dir={REPO}/roles strict={strict}",
         *[word for pair in extra for word in ("-e", pair)]],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
             "ANSIBLE_ACTION_PLUGINS": str(REPO / "playbooks" / "action_plugins")},
    )  # fmt: skip


def test_a_typo_is_refused_with_the_nearest_name_when_strict():
    done = run_check(True, "vllm_max_modle_len=4096")
    assert done.returncode != 0
    assert "vllm_max_modle_len is not a variable of the vllm role: did you mean vllm_max_model_len?" in (
        done.stdout + done.stderr
    )


def test_a_typo_is_a_warning_otherwise():
    done = run_check(False, "nccl_fabric_profil=efa")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "nccl_fabric_profil is not a variable of the nccl_fabric role: did you mean nccl_fabric_profile?"
        in (done.stdout + done.stderr)
    )


def test_known_and_internal_names_pass():
    done = run_check(True, "vllm_max_model_len=4096", "_vllm_internal=1", "vllm_servers_note=x")
    assert done.returncode != 0  # vllm_servers_note is named like a vllm variable and is not one
    assert "vllm_servers_note" in done.stdout + done.stderr
    assert run_check(True, "vllm_max_model_len=4096", "_vllm_internal=1").returncode == 0


class VaultTolerantLoader(yaml.SafeLoader):
    """Reads group_vars holding `!vault` values (the names matter here, not the secrets)."""


VaultTolerantLoader.add_constructor("!vault", lambda loader, node: "<vaulted>")


@pytest.mark.parametrize("inventory", ["lab", "sample", "prod"])
def test_the_shipped_inventories_set_strict_and_only_known_variables(inventory):
    names = {}
    for path in (REPO / "inventories" / inventory / "group_vars").rglob("*.yml"):
        if "vault" not in path.name:
            names.update(yaml.load(path.read_text(), Loader=VaultTolerantLoader) or {})  # noqa: S506
    assert names.get("qwen_infra_strict") is True
    assert unknown_variables(names, role_options(REPO / "roles")) == []
