"""The qwen.infra collection: built from the repository's own files, installed offline into an empty
collections path, and used from a directory outside the checkout by its collection names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import ansible_test
import pytest
import yaml
from qwen_infra import __version__
from qwen_infra.sizing.architecture import catalog_config

from tests.module_docs import MODULES
from tests.paths import REPO
from tools import build_collection

BIN = Path(sys.executable).parent
ROLES = sorted(path.name for path in (REPO / "roles").iterdir() if (path / "tasks").is_dir())
FILTER_PLUGIN = REPO / "roles" / "nccl_fabric" / "filter_plugins" / "nccl_fabric.py"
# ansible-core's module validator, the code behind `ansible-test sanity --test validate-modules`. It is run
# directly: ansible-test insists on a fresh virtualenv for it and downloads pip to make one.
VALIDATE_MODULES = Path(ansible_test.__file__).parent / "_util" / "controller" / "sanity" / "validate-modules"
# The one check that is not for this project: ansible's own modules must carry a GPLv3 header, and
# qwen-infra is Apache-2.0.
NOT_OUR_POLICY = {"missing-gplv3-license"}


def source_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_collection.build(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def tarball(built) -> dict[str, bytes]:
    files = {}
    with tarfile.open(built) as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None:
                files[member.name] = handle.read()
    return files


@pytest.fixture(scope="module")
def outside(tmp_path_factory, built) -> dict[str, Any]:
    """A directory outside the checkout, an empty ansible.cfg, and the tarball installed into an empty
    collections path; `run` runs an Ansible command there."""
    where = tmp_path_factory.mktemp("outside")
    assert REPO not in where.parents
    (where / "ansible.cfg").write_text("[defaults]\n")
    collections = where / "collections"
    # Nothing of the checkout: no ANSIBLE_* setting (make exports ANSIBLE_CONFIG), no PYTHONPATH.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.pop("PYTHONPATH", None)
    env.update(
        ANSIBLE_CONFIG=str(where / "ansible.cfg"),
        ANSIBLE_HOME=str(where / "ansible-home"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_NOCOLOR="1",
    )

    def run(*command: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / command[0]), *command[1:]],
            cwd=where,
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            check=False,
        )

    # --offline: Galaxy is never asked; community.general comes from the pinned ansible package.
    installed = run(
        "ansible-galaxy", "collection", "install", "--offline", "-p", str(collections), str(built)
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "qwen.infra:" + __version__ in installed.stdout
    return {"dir": where, "run": run, "collections": collections}


# --- the tarball: the repository's files, the one version, the pinned dependencies ----------------------


def test_modules_and_module_utils_are_the_repository_files(tarball):
    modules = {f"plugins/modules/{name}": data for name, data in source_files(REPO / "library").items()}
    modules = {name: data for name, data in modules.items() if name.endswith(".py")}
    utils = {
        f"plugins/module_utils/qwen_infra/{name}": data
        for name, data in source_files(REPO / "module_utils" / "qwen_infra").items()
    }
    shipped = {
        name: data
        for name, data in tarball.items()
        if name.startswith(("plugins/modules/", "plugins/module_utils/"))
    }
    assert shipped == {**modules, **utils}


def test_roles_are_the_repository_roles_with_their_filters_lifted(tarball):
    """Role files are byte for byte the repository's, except that the filter plugin moved to
    plugins/filter/ and its filters are called by their full names; undoing that gives the source back."""
    lifted = build_collection.filter_names(FILTER_PLUGIN)
    assert tarball[f"plugins/filter/{FILTER_PLUGIN.name}"] == FILTER_PLUGIN.read_bytes()
    expected = {
        f"roles/{name}": data
        for name, data in source_files(REPO / "roles").items()
        if "filter_plugins" not in Path(name).parts
    }
    shipped = {name: data for name, data in tarball.items() if name.startswith("roles/")}
    assert set(shipped) == set(expected)
    rewritten = [name for name in shipped if shipped[name] != expected[name]]
    assert rewritten == ["roles/nccl_fabric/tasks/preflight.yml"]
    text = shipped[rewritten[0]].decode()
    for name in lifted:
        assert not re.search(rf"\|\s*{name}\b", text), name
        assert re.search(rf"\|\s*qwen\.infra\.{name}\b", text), name
        text = text.replace(f"qwen.infra.{name}", name)
    assert text.encode() == expected[rewritten[0]]


def test_metadata_comes_from_the_one_version_and_the_pins(tarball):
    manifest = json.loads(tarball["MANIFEST.json"])["collection_info"]
    assert (manifest["namespace"], manifest["name"]) == ("qwen", "infra")
    assert manifest["version"] == __version__
    assert manifest["license"] == ["Apache-2.0"]
    pins = {
        entry["name"]: entry["version"]
        for entry in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    }
    # The roles call community.general (modprobe) and community.crypto (the front door reads its
    # certificate) and no other collection beyond ansible.builtin.
    assert manifest["dependencies"] == {
        "community.general": f">={pins['community.general']},<12.0.0",
        "community.crypto": f">={pins['community.crypto']},<4.0.0",
    }
    runtime = yaml.safe_load(tarball["meta/runtime.yml"])
    assert runtime["requires_ansible"] == ">=2.19.0"
    assert tarball["README.md"] == (REPO / "docs" / "collection.md").read_bytes()
    assert not (REPO / "galaxy.yml").exists() and not (REPO / "plugins").exists(), "no second copy"


def test_modules_pass_ansible_core_s_module_validator(built):
    """Documentation against the schema ansible-core defines (attributes, RETURN, author, markup) and
    against the argument spec each module really builds (validate-modules imports it to read it)."""
    collection = built.parent / "ansible_collections" / "qwen" / "infra"
    modules = sorted(
        str(path.relative_to(collection)) for path in (collection / "plugins" / "modules").glob("*.py")
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(built.parent), PYTHONPATH=str(VALIDATE_MODULES))
    validate = [sys.executable, str(VALIDATE_MODULES / "validate.py"), "--format", "json", "--arg-spec"]
    this = ["--collection", "ansible_collections/qwen/infra", "--collection-version", __version__]
    done = subprocess.run(
        [*validate, *this, *modules],
        cwd=collection,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # It exits non-zero for any error, the GPLv3 one included, so the report decides.
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    report = json.loads(done.stdout)
    found = {
        path: [
            f"{error['code']}: {error['msg']}"
            for error in result["errors"]
            if error["code"] not in NOT_OUR_POLICY
        ]
        for path, result in report.items()
    }
    assert len(modules) == len(MODULES)
    assert all(not errors for errors in found.values()), found


def test_a_role_calling_an_unpinned_collection_is_refused(tmp_path):
    (tmp_path / "r" / "tasks").mkdir(parents=True)
    (tmp_path / "r" / "tasks" / "main.yml").write_text("- name: X\n  example.thing.module:\n    a: 1\n")
    with pytest.raises(SystemExit, match=r"example\.thing"):
        build_collection.dependencies(tmp_path)


# --- installed, used from outside the checkout ---------------------------------------------------------


def test_ansible_doc_renders_every_module_by_its_collection_name(outside):
    names = [f"qwen.infra.{module}" for module in MODULES]
    done = outside["run"]("ansible-doc", "--json", *names)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr
    docs = json.loads(done.stdout)
    assert sorted(docs) == names
    for name in names:
        assert docs[name]["doc"]["collection"] == "qwen.infra", name
        assert docs[name]["doc"]["attributes"]["check_mode"]["support"], name
        assert str(outside["collections"]) in docs[name]["doc"]["filename"], name


def test_a_playbook_using_every_role_by_collection_name_passes_syntax_check(outside):
    """Syntax check loads every role's tasks and resolves each module name, so the roles' short names
    (vram_check, gpu_facts, ...) must resolve inside their collection."""
    playbook = outside["dir"] / "every_role.yml"
    roles = [f"qwen.infra.{role}" for role in ROLES]
    playbook.write_text(
        yaml.safe_dump([{"name": "Every role", "hosts": "all", "gather_facts": False, "roles": roles}])
    )
    assert len(roles) >= 7
    done = outside["run"]("ansible-playbook", "-i", "localhost,", "--syntax-check", str(playbook))
    assert done.returncode == 0, done.stdout + done.stderr


def test_server_check_and_fabric_preflight_run_from_the_collection(outside):
    """vram_check imports the sizing engine from the installed collection's module_utils (nothing else
    provides it outside the checkout); nccl_fabric's filters are the collection's."""
    where = outside["dir"]
    model = where / "models" / "Qwen3-0.6B"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(catalog_config("Qwen/Qwen3-0.6B")))
    (where / "fake-sys" / "sys" / "class" / "net" / "eth9").mkdir(parents=True)
    playbook = where / "check.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Check from the collection",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Check the server",
                            "ansible.builtin.include_role": {
                                "name": "qwen.infra.vllm",
                                "tasks_from": "check_server",
                            },
                            "vars": {
                                "vllm_model_path": str(model),
                                "vllm_served_model_name": "qwen3-0.6b",
                                "vllm_max_model_len": 4096,
                                "vllm_vram_check_gpu_memory_bytes": 24 << 30,
                            },
                        },
                        {
                            "name": "Check the fabric",
                            "ansible.builtin.include_role": {
                                "name": "qwen.infra.nccl_fabric",
                                "tasks_from": "preflight",
                            },
                            "vars": {
                                "nccl_fabric_profile": "ethernet",
                                "nccl_fabric_socket_ifname": ["eth9"],
                                "nccl_fabric_sysfs_root": str(where / "fake-sys"),
                            },
                        },
                    ],
                }
            ],
            sort_keys=False,
        )
    )
    done = outside["run"](
        "ansible-playbook",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "--check",
        str(playbook),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    results = {
        task["task"]["name"]: task["hosts"]["localhost"]
        for task in json.loads(done.stdout)["plays"][0]["tasks"]
    }
    # The role calls the module by its short name; only the collection can resolve it here.
    check = results["qwen.infra.vllm : Check the server against the model and the GPUs"]
    assert check["action"] == "vram_check"
    assert check["checked"] is True and check["shape_checked"] is True and check["fits"] is True, check
    argv = check["argv"]
    assert argv[0].endswith("/bin/python") and argv[argv.index("--model") + 1] == str(model), argv
    assert argv[argv.index("--served-model-name") + 1] == "qwen3-0.6b", argv
    assert argv[argv.index("--max-model-len") + 1] == "4096", argv
    settings = results["qwen.infra.nccl_fabric : Decide the settings"]["ansible_facts"][
        "_nccl_fabric_settings"
    ]
    assert settings["nccl_conf"]["NCCL_IB_DISABLE"] == "1"
    assert settings["environment"]["GLOO_SOCKET_IFNAME"] == "eth9"
