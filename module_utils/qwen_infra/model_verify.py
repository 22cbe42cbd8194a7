"""Is what is on disk the model that was asked for: file digests, the completion marker, disk preflight.

Stdlib only. The marker is written last, after every file was verified, so its presence means "complete";
a re-run trusts it (no network) as long as each file still has the size and mtime it recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MARKER_NAME = ".qwen-infra-complete.json"
PARTIAL_SUFFIX = ".partial"
_CHUNK = 1 << 20


class VerifyError(Exception):
    """Disk state that stops a fetch (not enough space, cannot write); the message says what to do."""


class Hasher(Protocol):
    """What the digest helpers need of a hashlib object (sha256 or sha1)."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def new_hasher(expected: str) -> Hasher:
    """A hash object matching how the source states its digest: sha256, or a git blob id (`gitsha1:`)."""
    return hashlib.sha1(usedforsecurity=False) if expected.startswith("gitsha1:") else hashlib.sha256()


def start_git_blob(hasher: Hasher, size: int) -> None:
    """A git blob id is sha1 over 'blob <size>\\0' followed by the content."""
    hasher.update(f"blob {size}\0".encode())


def hexdigest(hasher: Hasher, expected: str) -> str:
    return ("gitsha1:" if expected.startswith("gitsha1:") else "") + hasher.hexdigest()


def file_digest(path: Path, expected: str) -> str:
    """Digest of a file on disk, in the same form as `expected` (sha256 hex or gitsha1:hex)."""
    hasher = new_hasher(expected)
    if expected.startswith("gitsha1:"):
        start_git_blob(hasher, path.stat().st_size)
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            hasher.update(block)
    return hexdigest(hasher, expected)


# --- completion marker ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkerCheck:
    complete: bool
    reason: str  # why not complete ("" when complete)


def marker_payload(source: str, revision: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """files: [{path, size, sha256}]; each gets the mtime_ns it has on disk now, to detect later edits."""
    return {"source": source, "revision": revision, "files": files}


def write_marker(dest: Path, payload: dict[str, Any]) -> None:
    """Write atomically (temp file, fsync, rename): a crash leaves either no marker or a whole one."""
    for entry in payload["files"]:
        entry["mtime_ns"] = (dest / entry["path"]).stat().st_mtime_ns
    temporary = dest / (MARKER_NAME + ".tmp")
    with temporary.open("w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.chmod(0o644)
    os.replace(temporary, dest / MARKER_NAME)


def read_marker(dest: Path) -> dict[str, Any] | None:
    try:
        marker: dict[str, Any] = json.loads((dest / MARKER_NAME).read_text())
        return marker
    except (OSError, ValueError):
        return None


def remove_marker(dest: Path) -> None:
    """Called before anything in dest changes, so an interrupted fetch is never taken as complete."""
    (dest / MARKER_NAME).unlink(missing_ok=True)


def check_marker(dest: Path, source: str, rehash: bool = False) -> MarkerCheck:
    """Whether dest holds a verified copy of `source`, without any network work.

    Files whose size and mtime match the marker are trusted (re-hashing 100+ GB on every run would take
    minutes); `rehash` re-hashes them all. A changed mtime triggers a re-hash, so an edit is caught."""
    marker = read_marker(dest)
    if marker is None:
        return MarkerCheck(False, "no completion marker")
    if marker.get("source") != source:
        return MarkerCheck(False, f"the marker records {marker.get('source')!r}, not {source!r}")
    for entry in marker.get("files", []):
        path = dest / entry["path"]
        try:
            stat = path.stat()
        except OSError:
            return MarkerCheck(False, f"{entry['path']} is missing")
        if stat.st_size != entry["size"]:
            return MarkerCheck(False, f"{entry['path']} has {stat.st_size} bytes, not {entry['size']}")
        unchanged = stat.st_mtime_ns == entry.get("mtime_ns")
        if (rehash or not unchanged) and file_digest(path, entry["sha256"]) != entry["sha256"]:
            return MarkerCheck(False, f"{entry['path']} does not match its sha256")
    return MarkerCheck(True, "")


# --- disk --------------------------------------------------------------------------------------------


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding `path`."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def preflight_writable(existing: Path, dest: Path) -> None:
    """Refuse a read-only or unwritable destination before anything is downloaded."""
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise VerifyError(f"{dest} is on a read-only filesystem; choose a writable model_fetch_dest")
    if not os.access(existing, os.W_OK):
        raise VerifyError(f"cannot write to {existing}; run with become or choose another model_fetch_dest")


def preflight_space(needed: int, free: int, dest: Path, what: str = "download") -> None:
    """`what` is "download" or "copy" (from the controller); the message names it."""
    if needed > free:
        done = "copied" if what == "copy" else "downloaded"
        raise VerifyError(
            f"not enough disk space in {dest}: the {what} needs {needed} bytes "
            f"({needed / 2**30:.2f} GiB) and {free} bytes ({free / 2**30:.2f} GiB) are free; "
            f"free space or choose another model_fetch_dest. Nothing was {done}."
        )


def describe_os_error(error: OSError, dest: Path) -> str:
    """Turn ENOSPC / EROFS / EACCES into a message that says what to do."""
    if error.errno == 28:
        return f"{dest} is full ({error}); free space and re-run: partial files are kept and resumed"
    if error.errno == 30:
        return f"{dest} is on a read-only filesystem ({error}); choose a writable model_fetch_dest"
    if error.errno == 13:
        return f"cannot write to {dest} ({error}); run with become or choose another model_fetch_dest"
    return f"cannot write to {dest}: {error}"
