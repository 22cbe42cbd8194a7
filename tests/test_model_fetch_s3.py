"""Private S3 buckets through signed requests: the real module, run by ansible-core, against moto's S3
server on 127.0.0.1 with IAM enforced (every request must carry a valid AWS Signature V4 of a key whose
policy allows it).

The module finds credentials through botocore's default chain, the one an EC2 instance profile feeds
through the instance metadata service (IMDS). IMDS cannot exist here (it is a link-local address of EC2's
hypervisor), so the credentials come from the environment, the first link of the same chain, and IMDS is
switched off (AWS_EC2_METADATA_DISABLED) so that no test ever sends a request beyond loopback.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from qwen_infra import lab_model
from qwen_infra.model_verify import MARKER_NAME

from tests.model_hub_standin.runner import run_model_fetch
from tests.model_hub_standin.s3 import Key, MotoS3

BUCKET, PREFIX = "acme-models", "qwen/qwen3-tiny/"
SOURCE = f"s3://{BUCKET}/{PREFIX}"
WEIGHTS = "model.safetensors"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "qwen3-tiny"
    lab_model.make_model(out)
    return out


@pytest.fixture(scope="module")
def s3(tmp_path_factory, model_dir):
    files = {p.name: p.read_bytes() for p in sorted(model_dir.iterdir())}
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items())
    with MotoS3(tmp_path_factory.mktemp("moto")) as server:
        server.private_bucket(BUCKET, PREFIX, {**files, "MANIFEST.sha256": manifest.encode()})
        yield server


@pytest.fixture(autouse=True)
def no_outside_credentials(monkeypatch, tmp_path):
    """Only what a test passes reaches botocore: no developer's keys, profiles or container role."""
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def fetch(tmp_path: Path, s3: MotoS3, dest: Path, key: Key | None, monkeypatch, **extra) -> dict:
    if key is not None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key.secret_key)
    args = {"source": SOURCE, "dest": str(dest), "endpoint": s3.url, **extra}
    return run_model_fetch(tmp_path, args)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_private_bucket_is_fetched_with_signed_requests_then_not_again(
    tmp_path, s3, model_dir, monkeypatch
):
    dest, seen = tmp_path / "dest", len(s3.requests())
    result = fetch(tmp_path, s3, dest, s3.reader, monkeypatch)
    assert result["changed"] is True, result
    for source_file in model_dir.iterdir():
        assert sha256(dest / source_file.name) == sha256(source_file), source_file.name
    marker = json.loads((dest / MARKER_NAME).read_text())
    assert marker["source"] == SOURCE
    assert marker["revision"].startswith("manifest-sha256:")
    assert result["s3_credentials"] == (
        f"access key {s3.reader.access_key} from the environment (AWS_ACCESS_KEY_ID), region us-east-1"
    )
    sent = s3.requests()[seen:]
    assert {(r["method"], r["url"].rsplit("/", 1)[-1]) for r in sent} == {
        ("GET", "MANIFEST.sha256"),
        *(("HEAD", p.name) for p in model_dir.iterdir()),
        *(("GET", p.name) for p in model_dir.iterdir()),
    }
    assert all(r["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=") for r in sent)
    assert all(f"Credential={s3.reader.access_key}/" in r["headers"]["Authorization"] for r in sent)

    again = fetch(tmp_path, s3, dest, s3.reader, monkeypatch)
    assert again["changed"] is False
    assert again["network_requests"] == 0
    assert len(s3.requests()) == seen + len(sent)


def test_without_credentials_the_request_is_unsigned_and_refused_before_anything_is_written(
    tmp_path, s3, monkeypatch
):
    dest, seen = tmp_path / "dest", len(s3.requests())
    result = fetch(tmp_path, s3, dest, None, monkeypatch)
    assert result.get("failed"), result
    assert f"{SOURCE}: access denied (HTTP 403" in result["msg"]
    assert "unsigned because botocore found no AWS credentials on the host" in result["msg"]
    assert f"s3:GetObject on arn:aws:s3:::{BUCKET}/{PREFIX}*" in result["msg"]
    assert [r["method"] for r in s3.requests()[seen:]] == ["GET"]  # the manifest, then nothing
    assert "Authorization" not in s3.requests()[seen]["headers"]
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if ".qwen-infra-" in p.name]


@pytest.mark.parametrize(
    ("who", "says"),
    [
        ("wrong-secret", "SignatureDoesNotMatch"),
        ("stranger", "AccessDenied"),
    ],
)
def test_a_refused_key_is_named_in_the_error_never_its_secret(tmp_path, s3, monkeypatch, who, says):
    key = Key(s3.reader.access_key, "not-the-secret-" + "x" * 25) if who == "wrong-secret" else s3.stranger
    dest = tmp_path / "dest"
    result = fetch(tmp_path, s3, dest, key, monkeypatch)
    assert result.get("failed"), result
    assert f"access denied (HTTP 403 {says}" in result["msg"]
    assert f"with access key {key.access_key} from the environment (AWS_ACCESS_KEY_ID)" in result["msg"]
    assert key.secret_key not in json.dumps(result)
    assert not dest.exists()


def test_an_interrupted_fetch_resumes_with_a_signed_range_request(tmp_path, s3, model_dir, monkeypatch):
    dest = tmp_path / "dest"
    staging = tmp_path / ".dest.qwen-infra-staging"  # where an interrupted run left its partial file
    staging.mkdir()
    weights = (model_dir / WEIGHTS).read_bytes()
    (staging / (WEIGHTS + ".partial")).write_bytes(weights[:300_000])
    seen = len(s3.requests())
    result = fetch(tmp_path, s3, dest, s3.reader, monkeypatch)
    assert result["changed"] is True, result
    assert result["bytes_downloaded"] == result["bytes_total"] - 300_000
    gets = [r for r in s3.requests()[seen:] if r["method"] == "GET" and r["url"].endswith(WEIGHTS)]
    assert len(gets) == 1
    assert gets[0]["headers"]["Range"] == "bytes=300000-"
    assert "range" in gets[0]["headers"]["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert (dest / WEIGHTS).read_bytes() == weights
    assert not staging.exists()


@pytest.fixture(scope="module")
def python_without_botocore(tmp_path_factory):
    """A host interpreter without botocore: a bare virtualenv of this Python."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bare = venv / "bin" / "python"
    assert subprocess.run([str(bare), "-c", "import botocore"], check=False).returncode != 0
    return str(bare)


def test_without_botocore_check_mode_passes_and_a_real_run_says_why_it_was_unsigned(
    tmp_path, s3, monkeypatch, python_without_botocore
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.reader.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.reader.secret_key)
    args = {"source": SOURCE, "dest": str(tmp_path / "dest"), "endpoint": s3.url}
    # An explicit localhost: the implicit one always runs modules with ansible's own interpreter.
    inventory = tmp_path / "hosts"
    inventory.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={python_without_botocore}\n"
    )
    host = {"ANSIBLE_INVENTORY": str(inventory)}
    seen = len(s3.requests())
    checked = run_model_fetch(tmp_path, args, check=True, env=host)
    assert checked["changed"] is True, checked
    assert "botocore is not installed on the host" in checked["msg"]
    assert len(s3.requests()) == seen  # nothing asked of the bucket in check mode
    result = run_model_fetch(tmp_path, args, env=host)
    assert result.get("failed"), result
    assert "unsigned because botocore is not installed on the host" in result["msg"]
    assert not (tmp_path / "dest").exists()
