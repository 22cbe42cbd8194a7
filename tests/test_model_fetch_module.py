"""The model_fetch module end to end against the loopback hub stand-in, run by ansible-core.

The stand-in serves the real files of the tiny lab model with their real sha256 listing; ModelScope
listings go through the installed modelscope SDK (modelscope_client=auto), as on a real host.
"""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from qwen_infra import lab_model
from qwen_infra.model_verify import MARKER_NAME

from tests.model_hub_standin.hub import HubStandin
from tests.model_hub_standin.runner import run_model_fetch
from tests.module_docs import assert_return_documented

SOURCE = "modelscope:Qwen/Qwen3-Tiny@v1.0"
WEIGHTS = "model.safetensors"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "qwen3-tiny"
    lab_model.make_model(out)
    return out


@pytest.fixture
def hub(model_dir):
    with HubStandin(model_dir) as standin:
        yield standin


def fetch(tmp_path, hub, dest, check=False, **extra):
    args = {"source": SOURCE, "dest": str(dest), "endpoint": hub.url, **extra}
    return run_model_fetch(tmp_path, args, check=check)


def staging_of(dest: Path) -> Path:
    """Where a fetch assembles the new copy: beside dest, on its filesystem."""
    return dest.parent / f".{dest.name}.qwen-infra-staging"


def model_state(dest: Path) -> dict:
    """Every file of the model and its marker: inode, mtime and sha256 (the progress file may grow)."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, sha256(p))
        for p in dest.iterdir()
        if p.name != ".qwen-infra-fetch.progress"
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_same_model(dest: Path, model_dir: Path):
    for source_file in model_dir.iterdir():
        assert sha256(dest / source_file.name) == sha256(source_file), source_file.name


def test_fresh_download_verifies_every_file_and_writes_the_marker(tmp_path, hub, model_dir):
    dest = tmp_path / "dest"
    result = fetch(tmp_path, hub, dest)
    assert result["changed"] is True, result
    assert_same_model(dest, model_dir)
    marker = json.loads((dest / MARKER_NAME).read_text())
    assert marker["revision"] == "v1.0"
    assert {f["path"]: f["sha256"] for f in marker["files"]} == {
        p.name: sha256(p) for p in model_dir.iterdir()
    }
    assert hub.bytes_sent == sum(p.stat().st_size for p in model_dir.iterdir())
    assert (
        f"{result['bytes_total']}/{result['bytes_total']} bytes (100.0%)"
        in Path(result["progress_file"]).read_text()
    )
    assert not list(dest.glob("*.partial"))
    assert_return_documented("model_fetch", result)


def test_rerun_does_no_network_work_and_reports_no_change(tmp_path, hub):
    dest = tmp_path / "dest"
    fetch(tmp_path, hub, dest)
    hub.reset_counters()
    result = fetch(tmp_path, hub, dest)
    assert result["changed"] is False
    assert result["network_requests"] == 0
    assert hub.requests == []
    assert_return_documented("model_fetch", result)


def test_interrupted_download_resumes_without_fetching_bytes_again(tmp_path, hub, model_dir):
    dest, size = tmp_path / "dest", (model_dir / WEIGHTS).stat().st_size
    hub.cut_after = {WEIGHTS: 300_000}
    first = fetch(tmp_path, hub, dest, retries=0)
    assert first.get("failed"), first
    assert "transfer broke" in first["msg"]
    assert (staging_of(dest) / (WEIGHTS + ".partial")).stat().st_size == 300_000
    assert not (dest / MARKER_NAME).exists()
    assert not (dest / WEIGHTS).exists()

    second = fetch(tmp_path, hub, dest)
    assert second["changed"] is True
    assert hub.sent[WEIGHTS] == size  # 300 000 before the cut + the rest, nothing twice
    assert second["bytes_downloaded"] == size - 300_000
    assert sha256(dest / WEIGHTS) == sha256(model_dir / WEIGHTS)


def test_an_interrupted_update_leaves_the_previous_model_untouched(tmp_path, model_dir, hub):
    # The previous model: other weights, at revision v0.9, fetched from a second stand-in.
    previous = tmp_path / "previous"
    shutil.copytree(model_dir, previous)
    weights = bytearray((previous / WEIGHTS).read_bytes())
    weights[-1000:] = bytes(1000)
    (previous / WEIGHTS).write_bytes(weights)
    dest = tmp_path / "dest"
    with HubStandin(previous, revision="v0.9") as old_hub:
        assert fetch(tmp_path, old_hub, dest, source="modelscope:Qwen/Qwen3-Tiny@v0.9")["changed"]
    before = model_state(dest)

    hub.cut_after = {WEIGHTS: 300_000}
    first = fetch(tmp_path, hub, dest, retries=0)
    assert first.get("failed"), first
    assert model_state(dest) == before
    assert json.loads((dest / MARKER_NAME).read_text())["revision"] == "v0.9"
    # Files that did not change were hard-linked into the staging copy, not fetched.
    assert set(hub.sent) == {WEIGHTS}

    second = fetch(tmp_path, hub, dest)
    assert second["changed"] is True
    assert second["fetched"] == [WEIGHTS]
    assert hub.sent[WEIGHTS] == (model_dir / WEIGHTS).stat().st_size  # resumed, nothing sent twice
    assert_same_model(dest, model_dir)
    assert json.loads((dest / MARKER_NAME).read_text())["revision"] == "v1.0"
    assert not staging_of(dest).exists()
    assert sorted(p.name for p in tmp_path.iterdir() if ".qwen-infra-" in p.name) == []


def test_a_transfer_cut_mid_file_is_resumed_within_the_same_run(tmp_path, hub, model_dir):
    dest = tmp_path / "dest"
    hub.cut_after = {WEIGHTS: 100_000}
    result = fetch(tmp_path, hub, dest)
    assert result["changed"] is True
    assert hub.sent[WEIGHTS] == (model_dir / WEIGHTS).stat().st_size


def test_a_file_corrupted_in_transit_is_detected_and_fetched_again(tmp_path, hub, model_dir):
    dest = tmp_path / "dest"
    hub.corrupt = {WEIGHTS: 1}
    result = fetch(tmp_path, hub, dest)
    assert result["refetched"] == [WEIGHTS]
    assert_same_model(dest, model_dir)


def test_a_persistent_checksum_mismatch_fails_and_marks_nothing_complete(tmp_path, hub):
    dest = tmp_path / "dest"
    hub.corrupt = {WEIGHTS: 10}
    result = fetch(tmp_path, hub, dest, retries=2)
    assert result.get("failed")
    assert f"{WEIGHTS}: sha256" in result["msg"]
    assert "after 3 attempts" in result["msg"]
    assert not (dest / WEIGHTS).exists()
    assert not (dest / MARKER_NAME).exists()


def test_a_file_corrupted_on_disk_is_fetched_again_alone(tmp_path, hub, model_dir):
    dest = tmp_path / "dest"
    fetch(tmp_path, hub, dest)
    with (dest / WEIGHTS).open("r+b") as handle:  # same size, different bytes, new mtime
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    hub.reset_counters()
    result = fetch(tmp_path, hub, dest)
    assert result["changed"] is True
    assert result["fetched"] == [WEIGHTS]
    assert set(hub.sent) == {WEIGHTS}
    assert_same_model(dest, model_dir)


def test_not_enough_disk_is_refused_before_any_download(tmp_path, hub):
    dest = tmp_path / "dest"
    result = fetch(tmp_path, hub, dest, assume_free_bytes=10_000)
    assert result.get("failed")
    assert "needs 746004 bytes" in result["msg"]
    assert "10000 bytes" in result["msg"]
    assert hub.sent == {}
    assert not dest.exists()


@pytest.mark.parametrize("client", ["sdk", "rest"])
@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("modelscope:Qwen/Qwen3-Tiny@v9.9", "revision v9.9 of Qwen/Qwen3-Tiny not found"),
        ("modelscope:Qwen/No-Such-Model@v1.0", "model Qwen/No-Such-Model not found"),
    ],
)
def test_wrong_revision_or_unknown_model_is_refused(tmp_path, hub, source, says, client):
    result = fetch(tmp_path, hub, tmp_path / "dest", source=source, modelscope_client=client)
    assert result.get("failed")
    assert says in result["msg"]
    assert "check the model id and revision" in result["msg"]
    assert not (tmp_path / "dest").exists()


def test_check_mode_reports_what_would_be_fetched_and_writes_nothing(tmp_path, hub, model_dir):
    dest = tmp_path / "dest"
    result = fetch(tmp_path, hub, dest, check=True)
    assert result["changed"] is True
    assert sorted(result["fetched"]) == sorted(p.name for p in model_dir.iterdir())
    assert hub.sent == {}
    assert not dest.exists()
    assert_return_documented("model_fetch", result)


def test_include_and_exclude_select_files(tmp_path, hub):
    dest = tmp_path / "dest"
    result = fetch(tmp_path, hub, dest, include=["*.json"], exclude=["tokenizer*"])
    assert sorted(result["fetched"]) == ["config.json", "generation_config.json"]
    assert not (dest / WEIGHTS).exists()


def test_hugging_face_source_verifies_lfs_sha256_and_git_blob_ids(tmp_path, hub, model_dir):
    dest = tmp_path / "dest"
    result = fetch(tmp_path, hub, dest, source="hf:Qwen/Qwen3-Tiny@v1.0")
    assert result["changed"] is True, result
    assert_same_model(dest, model_dir)
    by_path = {f["path"]: f for f in json.loads((dest / MARKER_NAME).read_text())["files"]}
    assert by_path["config.json"]["source_digest"].startswith("gitsha1:")  # verified as a git blob
    assert by_path["config.json"]["sha256"] == sha256(model_dir / "config.json")  # recorded as sha256


# --- full and read-only filesystems: need a real small filesystem, so root ----------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 256 KiB tmpfs: smaller than the model, so writing fills it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_disk_that_fills_during_the_download_fails_clearly(tmp_path, hub, small_tmpfs):
    # Free space is assumed plentiful so the preflight passes and the write itself hits ENOSPC.
    result = fetch(tmp_path, hub, small_tmpfs / "dest", assume_free_bytes=1 << 40, parallel=1)
    assert result.get("failed")
    assert "is full" in result["msg"]
    assert not (small_tmpfs / "dest" / MARKER_NAME).exists()


def test_a_read_only_destination_fails_clearly(tmp_path, hub, small_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    result = fetch(tmp_path, hub, small_tmpfs / "dest")
    assert result.get("failed")
    assert "read-only filesystem" in result["msg"]
