"""The mirror path of model_fetch through a real nginx: MANIFEST.sha256 made by sha256sum, Range resume."""

import shutil
import subprocess

import pytest
from qwen_infra import lab_model
from qwen_infra.model_verify import MARKER_NAME

from tests.model_hub_standin.nginx import Nginx, find_nginx
from tests.model_hub_standin.runner import run_model_fetch

WEIGHTS = "model.safetensors"


@pytest.fixture(scope="session")
def nginx_binary():
    """Debian's nginx, which the README's set-up (`make setup`) installs; missing, the tests fail."""
    binary = find_nginx()
    assert binary is not None, "nginx is not installed: `make setup` installs it (apt-get install nginx)"
    return binary


@pytest.fixture(scope="module")
def mirror_root(tmp_path_factory):
    """www/qwen3-tiny/: the tiny model and the MANIFEST.sha256 an operator makes with sha256sum."""
    root = tmp_path_factory.mktemp("www")
    model = root / "qwen3-tiny"
    lab_model.make_model(model)
    names = sorted(p.name for p in model.iterdir())
    manifest = subprocess.run(["sha256sum", *names], cwd=model, check=True, capture_output=True, text=True)
    (model / "MANIFEST.sha256").write_text(manifest.stdout)
    return root


@pytest.fixture
def mirror(nginx_binary, mirror_root, tmp_path):
    with Nginx(nginx_binary, mirror_root, tmp_path / "nginx") as server:
        yield server


def fetch(tmp_path, mirror, dest, path="qwen3-tiny/", **extra):
    return run_model_fetch(tmp_path, {"source": f"{mirror.url}/{path}", "dest": str(dest), **extra})


def test_fresh_download_then_rerun_without_requests(tmp_path, mirror, mirror_root):
    dest = tmp_path / "dest"
    result = fetch(tmp_path, mirror, dest)
    assert result["changed"] is True, result
    assert result["revision"].startswith("manifest-sha256:")
    manifest = mirror_root / "qwen3-tiny" / "MANIFEST.sha256"
    subprocess.run(["sha256sum", "--quiet", "-c", str(manifest)], cwd=dest, check=True)  # fails the test
    assert (dest / MARKER_NAME).exists()
    requests_after_first = len(mirror.transfers())

    again = fetch(tmp_path, mirror, dest)
    assert again["changed"] is False
    assert len(mirror.transfers()) == requests_after_first


def test_a_partial_file_is_resumed_with_a_range_request(tmp_path, mirror, mirror_root):
    dest = tmp_path / "dest"
    staging = tmp_path / ".dest.qwen-infra-staging"  # where an interrupted run left its partial file
    staging.mkdir()
    weights = (mirror_root / "qwen3-tiny" / WEIGHTS).read_bytes()
    (staging / (WEIGHTS + ".partial")).write_bytes(weights[:300_000])
    result = fetch(tmp_path, mirror, dest)
    assert result["changed"] is True
    gets = [
        (status, sent)
        for method, path, status, sent in mirror.transfers()
        if path.endswith(WEIGHTS) and method == "GET"
    ]
    assert gets == [(206, len(weights) - 300_000)]
    assert (dest / WEIGHTS).read_bytes() == weights


def test_a_missing_manifest_is_a_clear_error(tmp_path, mirror):
    result = fetch(tmp_path, mirror, tmp_path / "dest", path="no-such-model/")
    assert result.get("failed")
    assert "not found (HTTP 404" in result["msg"]
    assert "MANIFEST.sha256" in result["msg"]


def test_a_mirror_file_that_does_not_match_its_manifest_is_never_marked_complete(
    tmp_path, mirror, mirror_root
):
    bad = mirror_root / "bad-copy"
    shutil.copytree(mirror_root / "qwen3-tiny", bad)
    (bad / "config.json").write_text("{}\n")  # the manifest still lists the original's sha256
    result = fetch(tmp_path, mirror, tmp_path / "dest", path="bad-copy/", retries=1)
    assert result.get("failed")
    assert "config.json: sha256" in result["msg"]
    assert not (tmp_path / "dest" / MARKER_NAME).exists()
    assert not (tmp_path / "dest" / "config.json").exists()
