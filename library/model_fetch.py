#!/usr/bin/python
"""Ansible module: fetch a model's files into a directory, verified by sha256, resumable, idempotent."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_fetch
short_description: Download a model from ModelScope, Hugging Face or an HTTP/S3 mirror, verified
description:
  - Reads the source's file listing with a sha256 per file (ModelScope through the official modelscope
    SDK's HubApi when it is installed; Hugging Face's tree API; a mirror's C(MANIFEST.sha256)).
  - Refuses before any download when the filesystem lacks the bytes still to fetch.
  - Assembles the new copy in C(.<name>.qwen-infra-staging) beside I(dest), on the same filesystem. Files
    I(dest) already holds with the right sha256 are hard-linked in, the others downloaded in parallel
    threads into C(<file>.partial), resumed with HTTP Range, verified, and re-fetched when corrupt
    (bounded).
  - Writes C(.qwen-infra-complete.json) into the staged copy only after every file verified, then swaps
    it in for I(dest) by renames, so an interrupted run leaves the previous model untouched. A re-run that
    finds the marker matching does no network work and reports no change.
  - Signs S3 requests (AWS Signature V4, botocore) with the host's credentials from botocore's default
    chain (environment, C(~/.aws) files, the EC2 instance profile); unsigned only where none are found.
  - Appends progress lines (bytes done / total, rate, ETA) to I(progress_file) every few seconds; a
    module cannot stream to the operator's terminal, so C(tail -f) that file on the host.
  - For C(controller:) sources the model_fetch role drives three steps, C(list) (on the controller, every
    file's size and sha256), C(stage) (on the host, free space, staging, what to copy) and C(commit)
    (verify the copied files against the controller's sha256, marker, swap); the role copies in between.
  - Check mode reads the listing and reports what would be fetched; it writes nothing.
options:
  source:
    description: modelscope:ORG/NAME@REVISION, hf:ORG/NAME@REVISION, https://mirror/path/, s3://bucket/prefix
      or (with I(step)) controller:/dir. Give either I(source) or I(model).
    type: str
  model:
    description: Model id (Qwen/Qwen3-8B) fetched from I(hub) at I(revision), instead of I(source).
    type: str
  precision:
    description: With I(model), fetch the official C(-AWQ), C(-GPTQ-Int4) or C(-FP8) checkpoint when Qwen
      publishes one (the result's C(prequantized) says whether it did).
    type: str
    choices: [bf16, awq, gptq, fp8]
    default: bf16
  hub:
    description: Hub of I(model).
    type: str
    choices: [modelscope, hf]
    default: modelscope
  revision:
    description: Pinned revision of the resolved repository, with I(model).
    type: str
    default: ""
  dest:
    description: Directory that receives the files (required except for I(step=list)).
    type: path
  step:
    description: C(fetch) for every downloading source; C(list), C(stage) or C(commit) for a
      C(controller:) source (see the description).
    type: str
    choices: [fetch, list, stage, commit]
    default: fetch
  files:
    description: With I(step=stage) or I(step=commit), the controller's listing (I(step=list)'s C(files)).
    type: list
    elements: dict
    default: []
  endpoint:
    description: Hub or S3 endpoint URL (a private ModelScope, an HF mirror, MinIO); empty for the default
      (for S3, AWS's endpoint of I(s3_region)).
    type: str
    default: ""
  s3_region:
    description: Region S3 requests are signed for; empty takes botocore's configured region (AWS_REGION,
      C(~/.aws/config)), else the instance's region when the credentials come from the instance profile,
      else us-east-1.
    type: str
    default: ""
  token:
    description: Access token for ModelScope or Hugging Face (gated or private repos).
    type: str
    default: ""
  include:
    description: Glob patterns of files to fetch; empty fetches every file.
    type: list
    elements: str
    default: []
  exclude:
    description: Glob patterns of files to skip.
    type: list
    elements: str
    default: []
  parallel:
    description: Files downloaded at once.
    type: int
    default: 4
  retries:
    description: Extra attempts per file after a checksum mismatch or a broken transfer.
    type: int
    default: 3
  rehash:
    description: Re-hash every file on a re-run instead of trusting the marker's size and mtime.
    type: bool
    default: false
  progress_file:
    description: File that progress lines are appended to; empty means C(<dest>/.qwen-infra-fetch.progress).
    type: path
    default: ""
  assume_free_bytes:
    description: Free space to assume instead of asking the filesystem (tests; a reserve for other data).
    type: int
  modelscope_client:
    description: List ModelScope files through the modelscope SDK (C(sdk)), plain HTTP (C(rest)), or the
      SDK when it is importable (C(auto)). Downloads never use the SDK (it does not resume).
    type: str
    choices: [auto, sdk, rest]
    default: auto
  timeout:
    description: Seconds a single HTTP read may stall before the transfer counts as broken.
    type: int
    default: 60
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the listing (and the marker) and reports what would be fetched; writes nothing.
  diff_mode:
    support: none
    details: The result's C(fetched) lists the files a run downloads (or would, in check mode).
  platform:
    support: full
    platforms: posix
author: qwen-infra maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Fetch Qwen3-8B-AWQ from ModelScope at a pinned revision
  model_fetch:
    source: modelscope:Qwen/Qwen3-8B-AWQ@master
    dest: /srv/models/qwen3-8b-awq
    token: "{{ vault_modelscope_token }}"
    exclude: ["*.md"]

- name: Fetch from the site's mirror
  model_fetch:
    source: https://models.internal/qwen3-8b-awq/
    dest: /srv/models/qwen3-8b-awq

- name: Fetch from a private bucket with the instance profile's credentials
  model_fetch:
    source: s3://acme-models/qwen3-8b-awq
    s3_region: eu-west-1
    dest: /srv/models/qwen3-8b-awq
"""

RETURN = r"""
source:
  description: The source fetched, in canonical form (resolved from I(model) when given).
  type: str
  returned: when the listing was read (not when the completion marker already matched)
prequantized:
  description: Whether I(model) + I(precision) resolved to an official pre-quantized checkpoint.
  type: bool
  returned: when the listing was read
revision:
  description: Revision recorded in the marker (the hub revision, or the mirror manifest's sha256).
  type: str
  returned: when the listing was read
fetched:
  description: Files downloaded (or, in check mode, that would be).
  type: list
  elements: str
  returned: success
bytes_downloaded:
  description: Bytes received in this run (resumed bytes excluded).
  type: int
  returned: success
bytes_total:
  description: Size of every selected file together.
  type: int
  returned: when the listing was read
refetched:
  description: Files whose download failed verification and were fetched again.
  type: list
  elements: str
  returned: when the listing was read
network_requests:
  description: HTTP requests made by this run (0 when the marker matched).
  type: int
  returned: success
elapsed_s:
  description: Seconds the download took.
  type: float
  returned: when files were downloaded
rate_mib_s:
  description: Average download rate in MiB/s.
  type: float
  returned: when files were downloaded
progress_file:
  description: The file progress lines were appended to.
  type: str
  returned: when files were downloaded
msg:
  description: C(complete) when the completion marker matched and nothing was fetched; the reason on failure.
  type: str
  returned: when the marker matched, or on failure
s3_credentials:
  description: Which credentials signed the S3 requests (the access key id and where botocore found it;
    never the secret), or why the requests were unsigned.
  type: str
  returned: for s3:// sources
files:
  description: With I(step=list), every file of the controller directory with its size and sha256.
  type: list
  elements: dict
  returned: step=list
to_copy:
  description: With I(step=stage), the files the role must copy into I(staging).
  type: list
  elements: str
  returned: step=stage
bytes_needed:
  description: With I(step=stage), the bytes still to copy (what the free-space check compared).
  type: int
  returned: step=stage, when dest is not complete
complete:
  description: With I(step=stage) or I(step=commit), whether I(dest) already holds exactly the listed files
    (verified, marked complete), so nothing is to be copied.
  type: bool
  returned: step=stage, step=commit
staging:
  description: The staging directory beside I(dest) that the new copy is assembled in.
  type: str
  returned: step=stage
transfer:
  description: Where the copy's transfers land (Ansible's remote tmp for the copy; same filesystem).
  type: str
  returned: step=stage
"""

import hashlib
import http.client
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import (
        model_sources,
        model_stage,
        model_verify,
    )
except ImportError:  # this repository: ansible.cfg points module_utils at module_utils/
    from ansible.module_utils.qwen_infra import model_sources, model_stage, model_verify

_CHUNK = 1 << 20
PROGRESS_NAME = model_stage.PROGRESS_NAME


class FetchError(Exception):
    """A fetch that cannot complete; the message is the task's error."""


# Where botocore found the credentials (Credentials.method), in the words an operator looks for.
CREDENTIAL_SOURCES = {
    "env": "the environment (AWS_ACCESS_KEY_ID)",
    "shared-credentials-file": "~/.aws/credentials",
    "config-file": "~/.aws/config",
    "iam-role": "the instance profile (EC2 instance metadata)",
    "container-role": "the container's task role",
    "assume-role": "a role assumed through ~/.aws/config",
    "assume-role-with-web-identity": "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)",
}
NO_CREDENTIALS = (
    "botocore found no AWS credentials on the host (environment, ~/.aws/credentials and config, "
    "instance profile)"
)


class S3Signer:
    """AWS Signature V4 for S3 requests, with botocore's default credential chain.

    botocore is imported here, on the host and only for s3:// sources, so module_utils stays stdlib-only
    and hosts fetching from elsewhere need nothing. No credentials (or no botocore): requests go unsigned,
    which a public bucket accepts; a private one answers 403, and the error says why it was unsigned."""

    def __init__(self, region: str):
        self.credentials, self.problem, self.botocore_missing = None, NO_CREDENTIALS, False
        try:
            import botocore.session  # noqa: PLC0415 - on the host, only for s3:// sources
            from botocore.auth import S3SigV4Auth  # noqa: PLC0415
            from botocore.awsrequest import AWSRequest  # noqa: PLC0415
            from botocore.exceptions import BotoCoreError  # noqa: PLC0415
        except ImportError:
            self.botocore_missing = True
            self.problem = (
                "botocore is not installed on the host (the model_fetch role installs python3-botocore)"
            )
            self.region = region or model_sources.DEFAULT_S3_REGION
            return
        self._auth, self._request, self._error = S3SigV4Auth, AWSRequest, BotoCoreError
        session = botocore.session.get_session()
        try:
            self.credentials = session.get_credentials()
            region = region or session.get_config_variable("region")
        except BotoCoreError as error:
            raise FetchError(f"botocore cannot read the host's AWS configuration: {error}") from error
        if not region and self.credentials is not None and self.credentials.method == "iam-role":
            region = instance_region()
        self.region = region or model_sources.DEFAULT_S3_REGION

    def frozen(self):
        try:  # instance-profile credentials rotate: botocore refreshes them here when they near expiry
            return self.credentials.get_frozen_credentials()
        except self._error as error:
            raise FetchError(f"cannot refresh the AWS credentials from {self.where()}: {error}") from error

    def where(self) -> str:
        method = getattr(self.credentials, "method", "")
        return CREDENTIAL_SOURCES.get(method, method or "botocore's credential chain")

    def describe(self) -> str:
        """Which credentials sign (never the secret), or why the requests are unsigned."""
        if self.credentials is None:
            return f"unsigned: {self.problem}"
        return f"access key {self.frozen().access_key} from {self.where()}, region {self.region}"

    def headers(self, method: str, url: str, headers: dict) -> dict:
        if self.credentials is None:
            return headers
        request = self._request(method=method, url=url, headers=headers)
        self._auth(self.frozen(), "s3", self.region).add_auth(request)
        return dict(request.headers.items())

    def refusal(self, source, code: int, body: bytes, url: str, bucket_region: str = "") -> str:
        """The message for an S3 error: which credentials were used, and what to change. A bucket in
        another region is named by S3 in the x-amz-bucket-region header (301) or the error body (400)."""
        what = model_sources.canonical(source)
        error = model_sources.s3_error(body)
        detail = ": ".join(part for part in (error.get("Code"), error.get("Message")) if part)
        status = f"HTTP {code}" + (f" {detail}" if detail else "")
        region = bucket_region or error.get("Region")
        if region and region != self.region:
            return (
                f"{what}: the bucket is in region {region}, not {self.region} ({status}); "
                f"set model_fetch_s3_region: {region}"
            )
        if code in (401, 403):
            resource = f"arn:aws:s3:::{source.location}/{source.prefix}*"
            if self.credentials is None:
                return (
                    f"{what}: access denied ({status}) for {url}: the request was unsigned because "
                    f"{self.problem}. Give the host an instance profile (or credentials) allowed "
                    f"s3:GetObject on {resource}, or make the objects public"
                )
            return (
                f"{what}: access denied ({status}) for {url} with {self.describe()}: allow that identity "
                f"s3:GetObject on {resource}, or check the key (S3 also answers 403 for a missing object "
                "when the identity may not list the bucket: check the prefix)"
            )
        if code == 404:
            manifest = model_sources.MANIFEST_NAME
            return f"{what}: not found ({status}) at {url}; check the bucket, the prefix and {manifest}"
        return f"{what}: {status} from {url}"


def instance_region() -> str:
    """The EC2 instance's region from its metadata service (botocore's fetcher), '' when unavailable."""
    try:
        from botocore.utils import InstanceMetadataRegionFetcher  # noqa: PLC0415
    except ImportError:  # older botocore
        return ""
    return InstanceMetadataRegionFetcher().retrieve_region() or ""


class Client:
    """HTTP for one source: auth headers (S3: SigV4), request counting, errors turned into clear messages."""

    def __init__(self, source, endpoint: str, token: str, timeout: int, signer: S3Signer | None = None):
        self.source, self.endpoint, self.token, self.timeout = source, endpoint, token, timeout
        self.signer = signer
        self.requests = 0
        self._lock = threading.Lock()

    def open(self, url: str, method: str = "GET", start: int = 0):
        headers = {"Range": f"bytes={start}-"} if start else {}
        if self.signer is not None:
            headers = self.signer.headers(method, url, headers)  # the Range header is signed too
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
            if self.source.scheme == "modelscope":
                headers["Cookie"] = f"m_session_id={self.token}"
        request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310 - http(s) only, from model_sources.parse_source
        with self._lock:
            self.requests += 1
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310
        except urllib.error.HTTPError as error:
            raise FetchError(self.describe_http_error(error, url)) from error
        except (urllib.error.URLError, OSError) as error:
            raise FetchError(f"cannot reach {url}: {getattr(error, 'reason', error)}") from error

    def describe_http_error(self, error: urllib.error.HTTPError, url: str) -> str:
        body = error.read()
        if self.signer is not None:
            region = (error.headers or {}).get("x-amz-bucket-region", "")
            return self.signer.refusal(self.source, error.code, body, url, region)
        detail = model_sources.hub_error_message(body) or error.reason
        what = model_sources.canonical(self.source)
        if error.code == 404:
            return f"{what}: not found (HTTP 404: {detail}); check the model id and revision ({url})"
        if error.code in (401, 403):
            return f"{what}: access denied (HTTP {error.code}: {detail}); set the token or check permissions"
        return f"{what}: HTTP {error.code} from {url}: {detail}"

    def read(self, url: str) -> bytes:
        with self.open(url) as reply:
            return reply.read()


# --- listings ---------------------------------------------------------------------------------------


def list_files(
    client: Client, parallel: int, modelscope_client: str
) -> tuple[list[model_sources.RemoteFile], str]:
    """(files with size and digest, revision to record) for the source."""
    source = client.source
    if source.scheme == "modelscope":
        return modelscope_listing(client, modelscope_client), source.revision
    if source.scheme == "hf":
        return model_sources.hf_files(
            json.loads(client.read(model_sources.listing_url(source, client.endpoint)))
        ), source.revision
    manifest = client.read(model_sources.listing_url(source, client.endpoint))
    digests = model_sources.parse_manifest(manifest.decode())
    with ThreadPoolExecutor(max_workers=parallel) as pool:  # a manifest has no sizes: HEAD each file
        sizes = list(pool.map(lambda path: head_size(client, path), digests))
    files = [
        model_sources.RemoteFile(path, size, digest)
        for (path, digest), size in zip(digests.items(), sizes, strict=True)
    ]
    return files, "manifest-sha256:" + hashlib.sha256(manifest).hexdigest()


def head_size(client: Client, path: str) -> int:
    with client.open(model_sources.file_url(client.source, client.endpoint, path), method="HEAD") as reply:
        length = reply.headers.get("Content-Length")
    if length is None:
        raise FetchError(f"the mirror sends no Content-Length for {path}; cannot check disk space")
    return int(length)


def modelscope_listing(client: Client, mode: str) -> list[model_sources.RemoteFile]:
    """The official SDK's listing when available (the code path ModelScope maintains); else the same
    REST call in stdlib, for hosts without the SDK."""
    try:
        from modelscope_hub import HubApi  # noqa: PLC0415 - optional dependency
        from modelscope_hub.errors import HubError  # noqa: PLC0415
    except ImportError:
        if mode == "sdk":
            raise FetchError(
                "modelscope_client=sdk but the modelscope SDK is not installed on the host"
            ) from None
        mode = "rest"
    if mode == "rest":
        payload = json.loads(client.read(model_sources.listing_url(client.source, client.endpoint)))
        return model_sources.modelscope_files((payload.get("Data") or {}).get("Files") or [])
    api = HubApi(endpoint=client.endpoint, token=client.token or None)
    client.requests += 1
    try:
        entries = api.list_repo_files(client.source.location, "model", revision=client.source.revision)
    except HubError as error:
        first_line = str(error).splitlines()[0]
        raise FetchError(
            f"{model_sources.canonical(client.source)}: ModelScope refused the listing ({first_line}); "
            "check the model id and revision"
        ) from error
    return model_sources.modelscope_files(
        [
            {"Path": e.path, "Type": "tree" if e.is_dir else "blob", "Size": e.size, "Sha256": e.sha256}
            for e in entries
        ]
    )


# --- progress -----------------------------------------------------------------------------------------


class Progress:
    """Bytes done / total and rate, appended to a file every few seconds by a background thread."""

    def __init__(self, path: Path | None, total: int, files: int, interval: float = 2.0):
        self.path, self.total, self.files, self.interval = path, total, files, interval
        self.done = self.received = self.files_done = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, received: int = 0, resumed: int = 0, file_done: bool = False) -> None:
        with self._lock:
            self.done += received + resumed
            self.received += received
            self.files_done += int(file_done)

    def undo(self, count: int) -> None:
        """A file that failed verification is fetched again; its bytes no longer count as done."""
        with self._lock:
            self.done -= count

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.received / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta != float("inf") else "--:--:--"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {self.done}/{self.total} bytes "
            f"({percent:.1f}%) {rate / 2**20:.1f} MiB/s ETA {eta_text} files {self.files_done}/{self.files}"
        )

    def write(self) -> None:
        if self.path is not None:
            with self.path.open("a") as handle:
                handle.write(self.line() + "\n")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.write()

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.write()


# --- transfer ---------------------------------------------------------------------------------------


def hash_existing(path: Path, hasher) -> None:
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            hasher.update(block)


def download_once(client: Client, entry: model_sources.RemoteFile, partial: Path, progress: Progress) -> str:
    """Bring `partial` to the full file, resuming from its current length; return the digest."""
    have = partial.stat().st_size if partial.exists() else 0
    if entry.size >= 0 and have > entry.size:
        partial.unlink()
        have = 0
    hasher = model_verify.new_hasher(entry.sha256)
    if entry.sha256.startswith("gitsha1:"):
        model_verify.start_git_blob(hasher, entry.size)
    if have:
        hash_existing(partial, hasher)
    progress.add(resumed=have)
    if entry.size < 0 or have < entry.size:
        with client.open(
            model_sources.file_url(client.source, client.endpoint, entry.path), start=have
        ) as reply:
            if have and reply.status != 206:  # the server ignored Range: start over
                progress.undo(have)
                have = 0
                hasher = model_verify.new_hasher(entry.sha256)
                if entry.sha256.startswith("gitsha1:"):
                    model_verify.start_git_blob(hasher, entry.size)
            with partial.open("ab" if have else "wb") as handle:
                while block := reply.read(_CHUNK):
                    handle.write(block)
                    hasher.update(block)
                    progress.add(received=len(block))
                handle.flush()
                os.fsync(handle.fileno())
        got = partial.stat().st_size
        if entry.size >= 0 and got < entry.size:  # the server closed early; keep the bytes for a resume
            raise ConnectionError(f"connection closed after {got} of {entry.size} bytes")
    return model_verify.hexdigest(hasher, entry.sha256)


@dataclass
class Transfer:
    """What every file download of one run shares."""

    client: Client
    dest: Path
    retries: int
    progress: Progress
    refetched: list = field(default_factory=list)


def fetch_file(transfer: Transfer, entry: model_sources.RemoteFile) -> None:
    """Download one file with bounded retries; only a verified file takes its final name."""
    client, dest, retries, progress = transfer.client, transfer.dest, transfer.retries, transfer.progress
    final = dest / entry.path
    partial = final.with_name(final.name + model_verify.PARTIAL_SUFFIX)
    final.parent.mkdir(parents=True, exist_ok=True)
    problem = ""
    for _attempt in range(retries + 1):
        try:
            digest = download_once(client, entry, partial, progress)
        except (FetchError, OSError, http.client.HTTPException) as error:
            problem = f"transfer broke: {error}"  # the partial file stays; the next attempt resumes it
            progress.undo(partial.stat().st_size if partial.exists() else 0)
            continue
        if digest == entry.sha256:
            partial.chmod(0o644)
            os.replace(partial, final)
            progress.add(file_done=True)
            return
        problem = f"sha256 {digest} does not match the listing's {entry.sha256}"
        progress.undo(partial.stat().st_size)
        partial.unlink()
        transfer.refetched.append(entry.path)
    raise FetchError(f"{entry.path}: {problem} after {retries + 1} attempts; nothing was marked complete")


def marker_entry(dest: Path, entry: model_sources.RemoteFile) -> dict:
    """The marker records a sha256 for every file, so a seeder can publish a MANIFEST.sha256 from it;
    files a hub lists by git blob id (small HF files) are hashed again once verified."""
    if not entry.sha256.startswith("gitsha1:"):
        return {"path": entry.path, "size": entry.size, "sha256": entry.sha256}
    sha = model_verify.file_digest(dest / entry.path, "")
    return {"path": entry.path, "size": entry.size, "sha256": sha, "source_digest": entry.sha256}


def resolve_source(params: dict):
    """(Source, prequantized) from `source`, or from model + precision + hub + revision."""
    if params["source"]:
        return model_sources.parse_source(params["source"]), False
    repo, prequantized = model_sources.prequantized_repo(params["model"], params["precision"])
    return model_sources.parse_source(f"{params['hub']}:{repo}@{params['revision']}"), prequantized


def identity_of(source, params: dict) -> str:
    """What the completion marker must name for this request: the source and the file selection."""
    identity = model_sources.canonical(source) + "".join(f" +{p}" for p in params["include"])
    return identity + "".join(f" -{p}" for p in params["exclude"])


def free_space(params: dict, lay) -> tuple[Path, int]:
    """(nearest existing directory of the staging area, its filesystem's free bytes), writability checked."""
    existing = next(p for p in (lay.staging.parent, *lay.staging.parent.parents) if p.exists())
    model_verify.preflight_writable(existing, lay.dest)
    free = params["assume_free_bytes"]
    return existing, model_verify.free_bytes(existing) if free is None else free


def run(module: AnsibleModule) -> dict:
    params = module.params
    source, prequantized = resolve_source(params)
    if source.scheme == "controller":
        return run_controller(module, source)
    if params["step"] != "fetch":
        raise FetchError(
            f"step={params['step']} is for controller: sources; {source.scheme} sources are fetched"
        )
    if not params["dest"]:
        raise FetchError("dest is required: the directory on the host that receives the model")
    lay = model_stage.layout(Path(params["dest"]))
    dest = lay.dest
    recovered = not module.check_mode and model_stage.recover(lay)
    identity_result = {"source": model_sources.canonical(source), "prequantized": prequantized}
    identity = identity_of(source, params)
    if dest.is_dir() and model_verify.check_marker(dest, identity, params["rehash"]).complete:
        return {
            "changed": recovered,
            "fetched": [],
            "bytes_downloaded": 0,
            "network_requests": 0,
            "msg": "complete",
        }

    model_stage.refuse_unusable_dest(lay)  # a local fact: before any request
    signer, endpoint = None, params["endpoint"] or model_sources.DEFAULT_ENDPOINTS.get(source.scheme, "")
    if source.scheme == "s3":
        signer = S3Signer(params["s3_region"])
        endpoint = params["endpoint"] or model_sources.s3_endpoint(signer.region)
        identity_result["s3_credentials"] = signer.describe()
        if module.check_mode and signer.botocore_missing:  # the role installs it on the real run
            note = f"{signer.problem}; the bucket is listed on the real run"
            return {**identity_result, "changed": True, "fetched": [], "network_requests": 0, "msg": note}
    client = Client(source, endpoint, params["token"], params["timeout"], signer)
    listed, revision = list_files(client, params["parallel"], params["modelscope_client"])
    files = model_sources.select(listed, params["include"], params["exclude"])
    if not files:
        raise FetchError(
            f"{model_sources.canonical(source)}: no file matches include {params['include']} / exclude"
        )
    total = sum(f.size for f in files)
    work = model_stage.plan(lay, files, identity)
    result = {
        **identity_result,
        "revision": revision,
        "bytes_total": total,
        "fetched": [f.path for f in work.todo],
        "refetched": [],
    }
    if module.check_mode:
        return {**result, "changed": True, "bytes_downloaded": 0, "network_requests": client.requests}

    _existing, free = free_space(params, lay)
    model_verify.preflight_space(work.needed, free, dest)  # before anything on the host changes
    try:
        model_stage.prepare(lay, files, identity, work)
        dest.mkdir(mode=0o755, parents=True, exist_ok=True)  # the progress file's documented place
        progress_path = Path(params["progress_file"] or dest / PROGRESS_NAME)
        with Progress(progress_path, total, len(files)) as progress:
            progress.add(resumed=total - sum(f.size for f in work.todo))
            transfer = Transfer(client, lay.staging, params["retries"], progress, result["refetched"])
            with ThreadPoolExecutor(max_workers=max(1, params["parallel"])) as pool:
                for job in [pool.submit(fetch_file, transfer, f) for f in work.todo]:
                    job.result()
        entries = [marker_entry(lay.staging, f) for f in files]
        model_stage.commit(lay, files, model_verify.marker_payload(identity, revision, entries))
    except OSError as error:
        raise FetchError(model_verify.describe_os_error(error, dest)) from error
    elapsed = time.monotonic() - progress.started
    return {
        **result,
        "changed": True,
        "bytes_downloaded": progress.received,
        "network_requests": client.requests,
        "elapsed_s": round(elapsed, 2),
        "rate_mib_s": round(progress.received / 2**20 / max(elapsed, 1e-6), 1),
        "progress_file": str(progress_path),
    }


# --- controller: sources (the role copies between stage and commit) -----------------------------------


def controller_complete(dest: Path, identity: str, files: list, rehash: bool) -> bool:
    """dest's marker names this source and exactly these files (a changed controller file is a change)."""
    if not dest.is_dir() or not model_verify.check_marker(dest, identity, rehash).complete:
        return False
    marker = model_verify.read_marker(dest) or {}
    recorded = {(f.get("path"), f.get("size"), f.get("sha256")) for f in marker.get("files", [])}
    return recorded == {(f.path, f.size, f.sha256) for f in files}


def run_controller(module: AnsibleModule, source) -> dict:
    params, step = module.params, module.params["step"]
    canonical = model_sources.canonical(source)
    if step == "fetch":
        raise FetchError(
            f"{canonical}: controller sources are copied by the model_fetch role (steps list, stage, "
            "commit around ansible.builtin.copy), not downloaded by this module"
        )
    if step == "list":  # runs on the controller
        root = Path(source.location)
        if not (root / "config.json").is_file():
            raise FetchError(
                f"{root}/config.json does not exist on the controller: point the source at a model directory"
            )
        listed = model_stage.directory_listing(root)
        return {
            "changed": False,
            "source": canonical,
            "files": [asdict(f) for f in listed],
            "bytes_total": sum(f.size for f in listed),
        }
    if not params["dest"]:
        raise FetchError(f"dest is required with step={step}")
    files = model_sources.select(
        model_sources.listed_files(params["files"]), params["include"], params["exclude"]
    )
    if not files:
        raise FetchError(f"{canonical}: no file matches include {params['include']} / exclude")
    identity = identity_of(source, params)
    revision = "tree-sha256:" + hashlib.sha256(model_stage.manifest_text(files).encode()).hexdigest()
    lay = model_stage.layout(Path(params["dest"]))
    result = {
        "source": canonical,
        "revision": revision,
        "bytes_total": sum(f.size for f in files),
        "staging": str(lay.staging),
        "transfer": str(lay.transfer),
        "to_copy": [],
        "complete": False,
    }
    recovered = not module.check_mode and model_stage.recover(lay)
    if controller_complete(lay.dest, identity, files, params["rehash"]):
        return {**result, "changed": recovered, "complete": True, "msg": "complete"}
    model_stage.refuse_unusable_dest(lay)
    try:
        if step == "stage":
            return stage_controller_copy(module, lay, files, identity, result)
        if module.check_mode:
            return {**result, "changed": True}
        model_stage.verify_staged(lay, files)
        entries = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files]
        model_stage.commit(lay, files, model_verify.marker_payload(identity, revision, entries))
    except OSError as error:
        raise FetchError(model_verify.describe_os_error(error, lay.dest)) from error
    return {**result, "changed": True}


def stage_controller_copy(module: AnsibleModule, lay, files: list, identity: str, result: dict) -> dict:
    """Free space first, then the staging directory with what the host already holds; returns to_copy."""
    work = model_stage.plan(lay, files, identity)
    result = {**result, "to_copy": [f.path for f in work.todo], "bytes_needed": work.needed}
    if module.check_mode:
        return {**result, "changed": True}
    if lay.transfer.exists():  # an interrupted copy's half-sent file: its space is free again
        shutil.rmtree(lay.transfer)
    _existing, free = free_space(module.params, lay)
    model_verify.preflight_space(work.needed, free, lay.dest, what="copy")
    model_stage.prepare(lay, files, identity, work)
    # Ansible creates its tmp directory as the login user even under become (an `ubuntu` SSH user
    # becoming root), so the transfer area is writable by all and sticky, like /tmp: each transfer goes
    # to a 0700 directory of its own, and what lands in staging is checked against the sha256 anyway.
    lay.transfer.mkdir()
    lay.transfer.chmod(0o1777)
    return {**result, "changed": True}


def main():
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "str"},
            "model": {"type": "str"},
            "precision": {"type": "str", "default": "bf16", "choices": ["bf16", "awq", "gptq", "fp8"]},
            "hub": {"type": "str", "default": "modelscope", "choices": ["modelscope", "hf"]},
            "revision": {"type": "str", "default": ""},
            "dest": {"type": "path"},
            "step": {"type": "str", "default": "fetch", "choices": ["fetch", "list", "stage", "commit"]},
            "files": {"type": "list", "elements": "dict", "default": []},
            "endpoint": {"type": "str", "default": ""},
            "s3_region": {"type": "str", "default": ""},
            "token": {"type": "str", "default": "", "no_log": True},
            "include": {"type": "list", "elements": "str", "default": []},
            "exclude": {"type": "list", "elements": "str", "default": []},
            "parallel": {"type": "int", "default": 4},
            "retries": {"type": "int", "default": 3},
            "rehash": {"type": "bool", "default": False},
            "progress_file": {"type": "path", "default": ""},
            "assume_free_bytes": {"type": "int"},
            "modelscope_client": {"type": "str", "default": "auto", "choices": ["auto", "sdk", "rest"]},
            "timeout": {"type": "int", "default": 60},
        },
        required_one_of=[["source", "model"]],
        mutually_exclusive=[["source", "model"]],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except (model_sources.SourceError, FetchError, model_verify.VerifyError) as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
