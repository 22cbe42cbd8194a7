"""The model_fetch role's copy from the controller (connection local, the controller is also the host):
free space checked first, the copy assembled beside dest and verified against the controller's sha256
before it replaces the old model, a re-run that does nothing, an interrupted copy that leaves the old model
untouched and resumes."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from qwen_infra import lab_model, model_stage
from qwen_infra.model_verify import MARKER_NAME

from tests.paths import REPO

PLAYBOOK = """
- name: Copy the model from the controller
  hosts: all
  gather_facts: false
  roles:
    - role: model_fetch
"""
WEIGHTS = "model.safetensors"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "qwen3-tiny"
    lab_model.make_model(out)
    return out


def converge(tmp_path: Path, source: Path, dest: Path, *options: str, file_size_limit: int = 0) -> dict:
    """Run the role; return {"failed": bool, "changed": int, "tasks": {task name: localhost's result}}."""
    playbook = tmp_path / "model.yml"
    playbook.write_text(PLAYBOOK)
    env = os.environ | {
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_LIBRARY": str(REPO / "library"),
        "ANSIBLE_MODULE_UTILS": str(REPO / "module_utils"),
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
    }
    extra = {
        "ansible_python_interpreter": sys.executable,
        "model_fetch_source": f"controller:{source}",
        "model_fetch_dest": str(dest),
    }
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    argv += [str(playbook), "-e", json.dumps(extra), *options]

    def limit_file_size():  # a real interruption: writing a file past this size fails (EFBIG)
        if file_size_limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
        timeout=300,
        preexec_fn=limit_file_size,  # only sets a resource limit; ansible-playbook runs no threads yet
    )
    try:
        output = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"no JSON from ansible-playbook:\n{done.stdout}\n{done.stderr}") from error
    tasks = {}
    for task in output["plays"][0]["tasks"]:
        if "localhost" in task["hosts"]:
            tasks[task["task"]["name"].removeprefix("model_fetch : ")] = task["hosts"]["localhost"]
    stats = output["stats"]["localhost"]
    return {"failed": stats["failures"] > 0, "changed": stats["changed"], "tasks": tasks}


def test_the_controller_listing_follows_symlinks_and_leaves_hidden_files_out(tmp_path, model_dir):
    source = tmp_path / "snapshot"
    (source / "sub").mkdir(parents=True)
    (source / "config.json").symlink_to(model_dir / "config.json")  # as in a Hugging Face cache snapshot
    (source / "sub" / "extra.txt").write_text("x")
    for hidden in [".git/objects/big", ".cache/huggingface/meta", ".qwen-infra-complete.json"]:
        (source / hidden).parent.mkdir(parents=True, exist_ok=True)
        (source / hidden).write_text("not part of the model")
    (source / "model.safetensors.partial").write_text("half")
    listed = model_stage.directory_listing(source)
    assert [(f.path, f.size, f.sha256) for f in listed] == [
        ("config.json", (model_dir / "config.json").stat().st_size, sha256(model_dir / "config.json")),
        ("sub/extra.txt", 1, hashlib.sha256(b"x").hexdigest()),
    ]


STAGE = "Check free space and stage what the host already holds"
COPY = "Copy the missing files from the controller into the staging directory"
COMMIT = "Verify the staged copy against the controller's sha256 and move it into place"


def copied(run: dict) -> list[str]:
    results = run["tasks"].get(COPY, {}).get("results", [])
    return [r["item"] for r in results if r.get("changed")]


def state(dest: Path) -> dict:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, sha256(p)) for p in dest.iterdir()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def beside(dest: Path) -> list[str]:
    """The staging and transfer directories a copy leaves beside dest, if any."""
    return sorted(p.name for p in dest.parent.iterdir() if ".qwen-infra-" in p.name)


def test_check_mode_then_copy_then_nothing_then_only_the_corrupt_file(tmp_path, model_dir):
    dest = tmp_path / "models" / "qwen3-tiny"
    checked = converge(tmp_path, model_dir, dest, "--check")
    assert not checked["failed"], checked["tasks"]
    assert sorted(checked["tasks"][STAGE]["to_copy"]) == sorted(p.name for p in model_dir.iterdir())
    assert not (tmp_path / "models").exists()

    first = converge(tmp_path, model_dir, dest)
    assert not first["failed"], first["tasks"]
    assert sorted(copied(first)) == sorted(p.name for p in model_dir.iterdir())
    assert {name: digest for name, (_, _, digest) in state(dest).items() if name != MARKER_NAME} == {
        p.name: sha256(p) for p in model_dir.iterdir()
    }
    marker = json.loads((dest / MARKER_NAME).read_text())
    assert marker["source"] == f"controller:{model_dir}"
    assert marker["revision"].startswith("tree-sha256:")
    assert beside(dest) == []

    again = converge(tmp_path, model_dir, dest)
    assert again["changed"] == 0, again["tasks"]

    with (dest / "config.json").open("r+b") as handle:  # same size, other bytes, new mtime
        handle.seek(2)
        handle.write(b"##")
    repaired = converge(tmp_path, model_dir, dest)
    assert copied(repaired) == ["config.json"]
    assert sha256(dest / "config.json") == sha256(model_dir / "config.json")


def test_an_interrupted_copy_leaves_the_old_model_untouched_and_resumes(tmp_path, model_dir):
    # The old model: another config and other weights, copied and marked complete.
    old = tmp_path / "old-model"
    shutil.copytree(model_dir, old)
    (old / "config.json").write_text((model_dir / "config.json").read_text().replace("{", '{"old": 1, ', 1))
    weights = bytearray((old / WEIGHTS).read_bytes())
    weights[-1000:] = bytes(1000)
    (old / WEIGHTS).write_bytes(weights)
    dest = tmp_path / "models" / "qwen3-tiny"
    assert not converge(tmp_path, old, dest)["failed"]
    before = state(dest)

    # Writing any file past 400 kB fails (Ansible's own module payloads are smaller): config.json is
    # copied, the weights' transfer (725 kB) breaks off half way.
    cut = converge(tmp_path, model_dir, dest, file_size_limit=400_000)
    assert cut["failed"]
    assert cut["tasks"][STAGE]["to_copy"] == ["config.json", WEIGHTS]
    assert "File too large" in json.dumps(cut["tasks"][COPY])
    assert COMMIT not in cut["tasks"]
    assert state(dest) == before  # every file and the marker: same inode, mtime and bytes

    resumed = converge(tmp_path, model_dir, dest)
    assert not resumed["failed"], resumed["tasks"]
    assert resumed["tasks"][STAGE]["to_copy"] == [WEIGHTS]  # config.json stayed staged and verified
    assert {name: digest for name, (_, _, digest) in state(dest).items() if name != MARKER_NAME} == {
        p.name: sha256(p) for p in model_dir.iterdir()
    }
    assert beside(dest) == []


# --- a real small filesystem: root ----------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 256 KiB tmpfs: smaller than the model."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_not_enough_space_is_refused_with_need_and_have_before_anything_is_written(
    tmp_path, model_dir, small_tmpfs
):
    run = converge(tmp_path, model_dir, small_tmpfs / "qwen3-tiny")
    assert run["failed"]
    message = run["tasks"][STAGE]["msg"]
    total = sum(p.stat().st_size for p in model_dir.iterdir())
    assert f"not enough disk space in {small_tmpfs / 'qwen3-tiny'}: the copy needs {total} bytes" in message
    assert "bytes (0.00 GiB) are free" in message
    assert "Nothing was copied." in message
    assert list(small_tmpfs.iterdir()) == []


def test_a_mount_point_as_dest_is_refused(tmp_path, model_dir, small_tmpfs):
    run = converge(tmp_path, model_dir, small_tmpfs)
    assert run["failed"]
    assert f"{small_tmpfs} is a mount point" in run["tasks"][STAGE]["msg"]
    assert list(small_tmpfs.iterdir()) == []
