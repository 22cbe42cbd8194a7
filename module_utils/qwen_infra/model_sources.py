"""Where model files come from: the one source syntax, per-source file listings and download URLs.

Stdlib only (the model_fetch module imports it on the host; tests import it directly).

    controller:/abs/dir                 a directory on the Ansible controller (the role copies it)
    modelscope:ORG/NAME@REVISION        ModelScope; REVISION is a branch, tag or commit, required
    hf:ORG/NAME@REVISION                Hugging Face; REVISION required
    https://mirror/path/  (or http://)  a plain HTTP(S) mirror holding the files and MANIFEST.sha256
    s3://bucket/prefix                  an S3-compatible bucket laid out like the HTTP mirror

A pinned revision is required for the hubs: "main" today is different bytes tomorrow, and the completion
marker must name what was verified. A mirror's manifest is its revision (its sha256 is recorded).
"""

from __future__ import annotations

import fnmatch
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

MANIFEST_NAME = "MANIFEST.sha256"
DEFAULT_ENDPOINTS = {
    "modelscope": "https://www.modelscope.cn",
    "hf": "https://huggingface.co",
}
DEFAULT_S3_REGION = "us-east-1"
SCHEMES = ("controller", "modelscope", "hf", "http", "https", "s3")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_REVISION = re.compile(r"^[\w][\w./-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class SourceError(ValueError):
    """The source string, or what the source answered, cannot be used; the message says why."""


@dataclass(frozen=True)
class Source:
    scheme: str  # controller | modelscope | hf | http (http and https) | s3
    location: str  # directory, repo id, base URL (ending in /) or bucket
    revision: str = ""  # hubs only
    prefix: str = ""  # s3 only: key prefix, "" or ending in /


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative, POSIX separators
    size: int  # bytes; -1 when the source does not say (a mirror file not yet HEADed)
    sha256: str


def parse_source(text: str) -> Source:
    """Parse SCHEME:LOCATION into a Source, or raise SourceError naming what to write instead."""
    text = (text or "").strip()
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SCHEMES:
        raise SourceError(
            f"model source {text!r} has an unsupported scheme {scheme!r}: use one of "
            "controller:/dir, modelscope:ORG/NAME@REVISION, hf:ORG/NAME@REVISION, "
            "https://mirror/path/, s3://bucket/prefix"
        )
    if scheme == "controller":
        if not rest.startswith("/"):
            raise SourceError(f"controller source {text!r} needs an absolute directory: controller:/dir")
        return Source("controller", rest.rstrip("/") or "/")
    if scheme in ("modelscope", "hf"):
        return _parse_hub(scheme, rest, text)
    if scheme in ("http", "https"):
        parts = urllib.parse.urlsplit(text)
        if not parts.netloc or parts.query or parts.fragment:
            raise SourceError(f"mirror source {text!r} must be a plain URL: https://host/path/")
        return Source("http", text if text.endswith("/") else text + "/")
    return _parse_s3(rest, text)


def _parse_hub(scheme: str, rest: str, text: str) -> Source:
    repo_id, at, revision = rest.partition("@")
    if not _REPO_ID.match(repo_id):
        raise SourceError(f"{scheme} source {text!r}: the model id must be ORG/NAME (e.g. Qwen/Qwen3-8B)")
    if not at or not revision:
        raise SourceError(
            f"{scheme} source {text!r} has no revision: pin one as {scheme}:{repo_id}@REVISION "
            "(a commit id, tag or branch), so every host gets the same verified bytes"
        )
    if not _REVISION.match(revision) or ".." in revision:
        raise SourceError(f"{scheme} source {text!r}: revision {revision!r} is not a branch, tag or commit")
    return Source(scheme, repo_id, revision=revision)


def _parse_s3(rest: str, text: str) -> Source:
    if not rest.startswith("//"):
        raise SourceError(f"S3 source {text!r} must look like s3://bucket/prefix")
    bucket, _, prefix = rest[2:].partition("/")
    if not _BUCKET.match(bucket):
        raise SourceError(f"S3 source {text!r}: {bucket!r} is not a valid bucket name")
    prefix = prefix.strip("/")
    return Source("s3", bucket, prefix=prefix + "/" if prefix else "")


def canonical(source: Source) -> str:
    """The source as recorded in the completion marker; equal strings mean the same bytes were asked for."""
    if source.scheme in ("modelscope", "hf"):
        return f"{source.scheme}:{source.location}@{source.revision}"
    if source.scheme == "s3":
        return f"s3://{source.location}/{source.prefix}"
    if source.scheme == "controller":
        return f"controller:{source.location}"
    return source.location


def select(files: list[RemoteFile], include: list[str], exclude: list[str]) -> list[RemoteFile]:
    """Keep files matching any include glob (all when none is given) and no exclude glob."""
    chosen = [f for f in files if not include or any(fnmatch.fnmatch(f.path, p) for p in include)]
    return [f for f in chosen if not any(fnmatch.fnmatch(f.path, p) for p in exclude)]


def safe_relative_path(path: str) -> str:
    """Refuse listing entries that would write outside dest (absolute paths, `..`)."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise SourceError(f"the source lists an unsafe file path {path!r}; refusing to write it")
    return path


# --- listings ---------------------------------------------------------------------------------------


def parse_manifest(text: str) -> dict[str, str]:
    """MANIFEST.sha256 in `sha256sum` format ("<64 hex>  <path>", `*` marker allowed) -> {path: sha}."""
    entries = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        name = name.lstrip(" ").removeprefix("*").removeprefix("./")
        if not _SHA256.match(digest.lower()) or not name:
            raise SourceError(f"{MANIFEST_NAME} line {number} is not '<sha256>  <path>': {line[:80]!r}")
        entries[safe_relative_path(name)] = digest.lower()
    if not entries:
        raise SourceError(f"{MANIFEST_NAME} lists no files")
    return entries


def modelscope_files(entries: list[dict[str, Any]]) -> list[RemoteFile]:
    """ModelScope's repo/files entries (Path, Type, Size, Sha256) -> files; directories dropped."""
    files = []
    for entry in entries:
        if (entry.get("Type") or entry.get("type") or "blob") == "tree":
            continue
        path: str = entry.get("Path") or entry.get("path") or entry.get("Name") or ""
        digest = (entry.get("Sha256") or entry.get("sha256") or "").lower()
        if not _SHA256.match(digest):
            raise SourceError(f"ModelScope lists {path!r} without a sha256; cannot verify it")
        files.append(RemoteFile(safe_relative_path(path), int(entry.get("Size") or entry["size"]), digest))
    return files


def hf_files(tree: list[dict[str, Any]]) -> list[RemoteFile]:
    """Hugging Face tree entries -> files. LFS files carry sha256 (lfs.oid); small git files only a git
    blob id, recorded as `gitsha1:<oid>` and verified as a git blob (model_verify.file_digest)."""
    files = []
    for entry in tree:
        if entry.get("type") != "file":
            continue
        lfs = entry.get("lfs") or {}
        digest = lfs.get("oid") or lfs.get("sha256") or f"gitsha1:{entry.get('oid', '')}"
        files.append(RemoteFile(safe_relative_path(entry["path"]), int(entry.get("size", -1)), digest))
    return files


def listing_url(source: Source, endpoint: str) -> str:
    """Where the file listing (or the manifest) of a source is read from."""
    base = endpoint.rstrip("/")
    if source.scheme == "modelscope":
        query = urllib.parse.urlencode({"Revision": source.revision, "Recursive": "True"})
        return f"{base}/api/v1/models/{source.location}/repo/files?{query}"
    if source.scheme == "hf":
        revision = urllib.parse.quote(source.revision, safe="")
        return f"{base}/api/models/{source.location}/tree/{revision}?recursive=true"
    return file_url(source, endpoint, MANIFEST_NAME)


def file_url(source: Source, endpoint: str, path: str) -> str:
    """Where one file's bytes are read from (supports HTTP Range on every source)."""
    base, quoted = endpoint.rstrip("/"), urllib.parse.quote(path)
    if source.scheme == "modelscope":
        query = urllib.parse.urlencode({"Revision": source.revision, "FilePath": path})
        return f"{base}/api/v1/models/{source.location}/repo?{query}"
    if source.scheme == "hf":
        return f"{base}/{source.location}/resolve/{urllib.parse.quote(source.revision, safe='')}/{quoted}"
    if source.scheme == "s3":  # path-style addressing works on every S3-compatible store
        return f"{base}/{source.location}/{urllib.parse.quote(source.prefix)}{quoted}"
    return source.location + quoted


def s3_endpoint(region: str) -> str:
    """AWS S3's regional endpoint: path-style requests there reach a bucket of that region directly
    (the global endpoint answers 301 PermanentRedirect for buckets elsewhere)."""
    region = region or DEFAULT_S3_REGION
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://s3.{region}.{domain}"


def s3_error(body: bytes) -> dict[str, str]:
    """Code, Message and Region of an S3 XML error body (those present); {} for anything else.

    A regular expression, not an XML parser: the body comes from the network, and these three plain
    elements are all that is read."""
    text = (body or b"").decode("utf-8", "replace")
    if "<Error>" not in text:
        return {}
    found = {}
    for name in ("Code", "Message", "Region"):
        match = re.search(rf"<{name}>([^<]{{0,300}})</{name}>", text)
        if match:
            found[name] = match.group(1)
    return found


def listed_files(entries: list[Any]) -> list[RemoteFile]:
    """A listing given as data (the controller's, passed to the host): every entry checked, since a bad
    path would write outside dest and a bad digest could never verify."""
    files = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise SourceError(f"a listing entry must be {{path, size, sha256}}, not {entry!r}")
        path, size, digest = entry.get("path"), entry.get("size"), str(entry.get("sha256") or "").lower()
        if not isinstance(path, str):
            raise SourceError(f"listing entry {entry!r} has no path")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise SourceError(f"listing entry {path!r} has no size in bytes ({size!r})")
        if not _SHA256.match(digest):
            raise SourceError(f"listing entry {path!r} has no sha256 ({digest!r}); cannot verify it")
        files.append(RemoteFile(safe_relative_path(path), size, digest))
    if not files:
        raise SourceError("the listing is empty: the source directory holds no files")
    return files


def hub_error_message(body: bytes) -> str:
    """The Message of a hub's JSON error body, or ''."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return ""
    if isinstance(payload, dict):
        return str(payload.get("Message") or payload.get("error") or payload.get("message") or "")
    return ""


# --- official pre-quantized checkpoints ---------------------------------------------------------------

PRECISION_SUFFIXES = {"awq": "-AWQ", "gptq": "-GPTQ-Int4", "fp8": "-FP8"}
# Official Qwen checkpoints published pre-quantized (same names on ModelScope and Hugging Face).
# A fact list, checked by hand against the Qwen organisation pages; add a name when Qwen publishes one.
OFFICIAL_PREQUANTIZED = frozenset(
    [f"Qwen/Qwen3-{size}-FP8" for size in ("0.6B", "1.7B", "4B", "8B", "14B", "32B", "30B-A3B", "235B-A22B")]
    + [f"Qwen/Qwen3-{size}-AWQ" for size in ("4B", "8B", "14B", "32B")]
    + [f"Qwen/Qwen3-{size}-GPTQ-Int4" for size in ("30B-A3B", "235B-A22B")]
    + [
        f"Qwen/Qwen2.5-{size}-Instruct{suffix}"
        for size in ("0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B")
        for suffix in ("-AWQ", "-GPTQ-Int4")
    ]
    + ["Qwen/QwQ-32B-AWQ"]
)


def prequantized_repo(model: str, precision: str) -> tuple[str, bool]:
    """(repo id to fetch, whether it is an official pre-quantized checkpoint) for MODEL at PRECISION.

    bf16 (or an unknown combination) returns the model itself; the caller then serves it unquantized or
    quantizes it (the quantization role) and says so."""
    repo = model if "/" in model else f"Qwen/{model}"
    if precision in ("", "bf16", "auto"):
        return repo, False
    if precision not in PRECISION_SUFFIXES:
        raise SourceError(f"precision {precision!r} is not one of bf16, {', '.join(PRECISION_SUFFIXES)}")
    by_lower = {name.lower(): name for name in OFFICIAL_PREQUANTIZED}
    wanted = (repo + PRECISION_SUFFIXES[precision]).lower()
    return (by_lower[wanted], True) if wanted in by_lower else (repo, False)
