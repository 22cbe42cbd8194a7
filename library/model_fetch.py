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
  - Downloads in parallel threads into C(<file>.partial) and resumes those with HTTP Range, so bytes
    already on disk are not fetched again; verifies every file and re-fetches a corrupt one (bounded).
  - Writes C(.qwen-infra-complete.json) only after every file verified; a re-run that finds it matching
    does no network work and reports no change.
  - Appends progress lines (bytes done / total, rate, ETA) to I(progress_file) every few seconds; a
    module cannot stream to the operator's terminal, so C(tail -f) that file on the host.
  - Check mode reads the listing and reports what would be fetched; it writes nothing.
options:
  source:
    description: modelscope:ORG/NAME@REVISION, hf:ORG/NAME@REVISION, https://mirror/path/ or s3://bucket/prefix.
      Give either I(source) or I(model).
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
    description: Directory that receives the files.
    type: path
    required: true
  endpoint:
    description: Hub or S3 endpoint URL (a private ModelScope, an HF mirror, MinIO); empty for the default.
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
"""

import hashlib
import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import model_sources, model_verify
except ImportError:  # this repository: ansible.cfg points module_utils at module_utils/
    from ansible.module_utils.qwen_infra import model_sources, model_verify

_CHUNK = 1 << 20
PROGRESS_NAME = ".qwen-infra-fetch.progress"


class FetchError(Exception):
    """A fetch that cannot complete; the message is the task's error."""


class Client:
    """HTTP for one source: auth headers, request counting, hub errors turned into clear messages."""

    def __init__(self, source, endpoint: str, token: str, timeout: int):
        self.source, self.endpoint, self.token, self.timeout = source, endpoint, token, timeout
        self.requests = 0
        self._lock = threading.Lock()

    def open(self, url: str, method: str = "GET", start: int = 0):
        request = urllib.request.Request(url, method=method)  # noqa: S310 - http(s) only, from model_sources.parse_source
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
            if self.source.scheme == "modelscope":
                request.add_header("Cookie", f"m_session_id={self.token}")
        if start:
            request.add_header("Range", f"bytes={start}-")
        with self._lock:
            self.requests += 1
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310
        except urllib.error.HTTPError as error:
            raise FetchError(self.describe_http_error(error, url)) from error
        except (urllib.error.URLError, OSError) as error:
            raise FetchError(f"cannot reach {url}: {getattr(error, 'reason', error)}") from error

    def describe_http_error(self, error: urllib.error.HTTPError, url: str) -> str:
        detail = model_sources.hub_error_message(error.read()) or error.reason
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


def plan(dest: Path, files: list[model_sources.RemoteFile]) -> tuple[list[model_sources.RemoteFile], int]:
    """(files still to fetch, bytes still needed): verified final files are kept, partials counted."""
    todo, needed = [], 0
    for entry in files:
        final = dest / entry.path
        if (
            final.is_file()
            and final.stat().st_size == entry.size
            and model_verify.file_digest(final, entry.sha256) == entry.sha256
        ):
            continue
        partial = final.with_name(final.name + model_verify.PARTIAL_SUFFIX)
        have = partial.stat().st_size if partial.is_file() else 0
        todo.append(entry)
        needed += max(entry.size - have, 0)
    return todo, needed


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


def run(module: AnsibleModule) -> dict:
    params = module.params
    source, prequantized = resolve_source(params)
    if source.scheme == "controller":
        raise FetchError("controller: sources are copied by the model_fetch role, not by this module")
    dest = Path(params["dest"])
    endpoint = params["endpoint"] or model_sources.DEFAULT_ENDPOINTS.get(source.scheme, "")
    identity_result = {"source": model_sources.canonical(source), "prequantized": prequantized}
    identity = model_sources.canonical(source) + "".join(f" +{p}" for p in params["include"])
    identity += "".join(f" -{p}" for p in params["exclude"])
    if dest.is_dir() and model_verify.check_marker(dest, identity, params["rehash"]).complete:
        return {
            "changed": False,
            "fetched": [],
            "bytes_downloaded": 0,
            "network_requests": 0,
            "msg": "complete",
        }

    client = Client(source, endpoint, params["token"], params["timeout"])
    listed, revision = list_files(client, params["parallel"], params["modelscope_client"])
    files = model_sources.select(listed, params["include"], params["exclude"])
    if not files:
        raise FetchError(
            f"{model_sources.canonical(source)}: no file matches include {params['include']} / exclude"
        )
    total = sum(f.size for f in files)
    todo, needed = plan(dest, files) if dest.is_dir() else (files, total)
    result = {
        **identity_result,
        "revision": revision,
        "bytes_total": total,
        "fetched": [f.path for f in todo],
        "refetched": [],
    }
    if module.check_mode:
        return {**result, "changed": True, "bytes_downloaded": 0, "network_requests": client.requests}

    existing = next(p for p in (dest, *dest.parents) if p.exists())
    model_verify.preflight_writable(existing, dest)
    free = params["assume_free_bytes"]
    if free is None:
        free = model_verify.free_bytes(existing)
    model_verify.preflight_space(needed, free, dest)  # before anything in dest changes
    try:
        dest.mkdir(parents=True, exist_ok=True)
        model_verify.remove_marker(dest)  # from here on dest is "incomplete" until the new marker lands
        progress_path = Path(params["progress_file"] or dest / PROGRESS_NAME)
        with Progress(progress_path, total, len(files)) as progress:
            progress.add(resumed=total - sum(f.size for f in todo))
            transfer = Transfer(client, dest, params["retries"], progress, result["refetched"])
            with ThreadPoolExecutor(max_workers=max(1, params["parallel"])) as pool:
                for job in [pool.submit(fetch_file, transfer, f) for f in todo]:
                    job.result()
        files_entries = [marker_entry(dest, f) for f in files]
        model_verify.write_marker(dest, model_verify.marker_payload(identity, revision, files_entries))
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


def main():
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "str"},
            "model": {"type": "str"},
            "precision": {"type": "str", "default": "bf16", "choices": ["bf16", "awq", "gptq", "fp8"]},
            "hub": {"type": "str", "default": "modelscope", "choices": ["modelscope", "hf"]},
            "revision": {"type": "str", "default": ""},
            "dest": {"type": "path", "required": True},
            "endpoint": {"type": "str", "default": ""},
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
