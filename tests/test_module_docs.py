"""Every module in library/ is documented the way ansible-core's documentation standard asks, and
ansible-doc renders it: options that match the argument spec, examples, every returned key, and the
check-mode / diff-mode / platform attributes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from qwen_infra.sizing.architecture import catalog_config

from tests.ansible_module import run_ansible_module
from tests.module_docs import (
    MODULES,
    argument_spec,
    assert_return_documented,
    doc_string,
    returns_diff,
    supports_check_mode,
)
from tests.paths import REPO

ANSIBLE_DOC = Path(sys.executable).parent / "ansible-doc"
SUPPORT = {"full", "partial", "none", "N/A"}


def ansible_doc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(ANSIBLE_DOC), "-M", str(REPO / "library"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_module_is_covered():
    assert MODULES == [
        "config_files", "gpu_facts", "host_facts", "model_fetch", "unit_sandbox", "vllm_ready", "vram_check"
    ]  # fmt: skip


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict]:
    """ansible-doc's JSON for every module at once (one process: ansible-doc is slow to start)."""
    done = ansible_doc("--json", *MODULES)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr and "ERROR" not in done.stderr, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_the_module(module):
    """The text ansible-doc prints for people: no error, every section present."""
    done = ansible_doc(module)
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr and "WARNING" not in done.stderr, done.stderr
    for section in ("OPTIONS", "ATTRIBUTES:", "EXAMPLES:", "RETURN VALUES:"):
        assert section in done.stdout, (module, section)


@pytest.mark.parametrize("module", MODULES)
def test_documentation_is_complete(module, rendered):
    doc = rendered[module]
    assert doc["doc"]["short_description"] and doc["doc"]["description"], module
    assert doc["examples"].strip(), module
    assert doc["return"], module
    for name, option in doc["doc"]["options"].items():
        assert option.get("description"), (module, name)
        assert option.get("type"), (module, name)
    for name, value in doc["return"].items():
        assert value.get("description") and value.get("type") and value.get("returned"), (module, name)
        if value["type"] == "list":
            assert value.get("elements"), (module, name, "a returned list states its elements")


@pytest.mark.parametrize("module", MODULES)
def test_attributes_state_check_mode_diff_mode_and_platform(module, rendered):
    attributes = rendered[module]["doc"]["attributes"]
    for name in ("check_mode", "diff_mode", "platform"):
        assert name in attributes, (module, name)
        assert attributes[name]["support"] in SUPPORT, (module, name)
        assert attributes[name].get("description"), (module, name, "from action_common_attributes")
        if attributes[name]["support"] == "partial":
            assert attributes[name].get("details"), (module, name, "partial support says what is missing")
    assert attributes["platform"].get("platforms"), module
    # What the documentation claims is what AnsibleModule is told.
    assert supports_check_mode(module) == (attributes["check_mode"]["support"] != "none"), module
    assert returns_diff(module) == (attributes["diff_mode"]["support"] != "none"), module


@pytest.mark.parametrize("module", MODULES)
def test_documented_options_match_the_argument_spec(module):
    docs, spec = doc_string(module, "DOCUMENTATION")["options"], argument_spec(module)
    assert set(docs) == set(spec), module
    for name, option in spec.items():
        documented = docs[name]
        assert documented["type"] == option.get("type", "str"), (module, name)
        assert documented.get("default") == option.get("default"), (module, name)
        assert documented.get("choices") == option.get("choices"), (module, name)
        assert documented.get("required", False) == option.get("required", False), (module, name)
        assert documented.get("elements") == option.get("elements"), (module, name)


def test_returned_keys_are_documented(tmp_path):
    """Real runs of the modules that need no server (model_fetch's are in test_model_fetch_module)."""
    model = tmp_path / "Qwen3-0.6B"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(catalog_config("Qwen/Qwen3-0.6B")))
    server = {"model": str(model), "served_model_name": "qwen3"}
    nccl_env = tmp_path / "nccl.env"
    nccl_env.write_text("NCCL_IB_HCA=mlx5_0:1\nQWEN_INFRA_FABRIC=infiniband\n")
    files = [{"path": str(tmp_path / "etc"), "state": "directory", "mode": "0755"}]
    runs = {
        "config_files": [
            run_ansible_module(
                tmp_path, "config_files", json.dumps({"files": files}), extra_env={"ANSIBLE_DIFF_ALWAYS": "1"}
            )
        ],
        "gpu_facts": [run_ansible_module(tmp_path, "gpu_facts", "profile=dev-h100-1")],
        "host_facts": [
            run_ansible_module(
                tmp_path,
                "host_facts",
                json.dumps(
                    {
                        "paths": [str(tmp_path)],
                        "packages": ["dpkg"],
                        "filesystems": ["/"],
                        "users": ["root"],
                        "groups": ["root"],
                        "resolve": ["localhost"],
                        "read": [str(nccl_env)],
                    }
                ),
            )
        ],
        "unit_sandbox": [
            run_ansible_module(tmp_path, "unit_sandbox", f"device=cuda nccl_env_file={nccl_env}"),
            run_ansible_module(tmp_path, "unit_sandbox", "device=cpu fabric=none"),
        ],
        "vram_check": [
            run_ansible_module(
                tmp_path, "vram_check", json.dumps({"server": server, "gpu_memory_bytes": 24 << 30})
            ),
            run_ansible_module(tmp_path, "vram_check", json.dumps({"server": server, "device": "cpu"})),
        ],
        "vllm_ready": [
            run_ansible_module(
                tmp_path,
                "vllm_ready",
                json.dumps(
                    {
                        "base_url": "http://127.0.0.1:9",
                        "api_key": "k",
                        "model": "m",
                        "unit": "u",
                        "timeout": 1,
                    }
                ),
                check=True,
            )
        ],
    }
    assert runs["config_files"][0]["changed_paths"] == [str(tmp_path / "etc")]
    assert runs["vram_check"][0]["checked"] is True and runs["vram_check"][1]["checked"] is False
    assert "expected" in runs["gpu_facts"][0]
    assert runs["host_facts"][0]["paths"][str(tmp_path)]["isdir"] is True
    assert runs["unit_sandbox"][0]["fabric"] == "infiniband" and runs["unit_sandbox"][0]["nccl_networks"] == [
        "IB"
    ]
    assert (
        runs["unit_sandbox"][1]["rdma_devices"] == []
        and ["PrivateDevices", "yes"] in runs["unit_sandbox"][1]["properties"]
    )
    for module, results in runs.items():
        for result in results:
            assert_return_documented(module, result)


def test_an_undocumented_key_is_caught():
    with pytest.raises(AssertionError, match="surprise"):
        assert_return_documented("vram_check", {"changed": False, "fits": True, "surprise": 1})
