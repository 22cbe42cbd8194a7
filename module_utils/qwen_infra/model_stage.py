"""Where a new copy of a model is assembled before it replaces the old one: a staging directory beside it.

Stdlib only. Every source (hub, mirror, S3, the controller) writes into the staging directory, never into
`dest`, and the finished, verified copy is swapped in by renames, so an interrupted run leaves the model
that was there before untouched and whole:

    <parent>/.<name>.qwen-infra-staging/    the new copy: files of dest that already match their sha256
                                            hard-linked in (no bytes copied), new files and their
                                            `.partial` written here; it survives an interruption, so the
                                            next run resumes it
    <parent>/.<name>.qwen-infra-transfer/   Ansible's remote tmp for the controller copy (same filesystem,
                                            so a copied file is renamed into staging, never written twice)
    <parent>/.<name>.qwen-infra-old/        the previous copy, between the two renames of a swap

Beside `dest` means on dest's filesystem: the free-space preflight measures the filesystem that the bytes
land on, and the swap is a rename, which cannot cross filesystems (so a mount point is refused as dest).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import model_verify
from .model_sources import RemoteFile

STAGED_NAME = ".qwen-infra-staged.json"
PROGRESS_NAME = ".qwen-infra-fetch.progress"


@dataclass(frozen=True)
class Layout:
    dest: Path
    staging: Path
    transfer: Path
    old: Path


def layout(dest: Path) -> Layout:
    """The paths beside dest; symlinks in dest are resolved, so the copy lands where the model lives."""
    real = Path(os.path.realpath(dest))
    parent, name = real.parent, real.name
    return Layout(
        real,
        parent / f".{name}.qwen-infra-staging",
        parent / f".{name}.qwen-infra-transfer",
        parent / f".{name}.qwen-infra-old",
    )


def refuse_unusable_dest(lay: Layout) -> None:
    """A dest that is not a directory, or is a mount point, cannot be replaced by a rename."""
    if lay.dest.exists() and not lay.dest.is_dir():
        raise model_verify.VerifyError(f"{lay.dest} exists and is not a directory; choose model_fetch_dest")
    if lay.dest.is_dir() and os.path.ismount(lay.dest):
        raise model_verify.VerifyError(
            f"{lay.dest} is a mount point: a new copy is assembled beside it (in {lay.dest.parent}, another "
            "filesystem) and swapped in by a rename, which cannot cross filesystems; set model_fetch_dest "
            f"to a directory inside it, e.g. {lay.dest}/<model-name>"
        )


def recover(lay: Layout) -> bool:
    """Finish what a swap interrupted between its renames: dest back from .old, or .old removed.
    Whether dest changed (it came back)."""
    if not lay.old.exists():
        return False
    if lay.dest.exists():
        shutil.rmtree(lay.old)
        return False
    os.rename(lay.old, lay.dest)
    return True


# --- plan --------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a fetch or copy has to do, decided without writing anything (check mode shows it)."""

    keep: list[RemoteFile] = field(default_factory=list)  # already in staging, verified
    link: list[RemoteFile] = field(default_factory=list)  # in dest, verified: hard-linked into staging
    todo: list[RemoteFile] = field(default_factory=list)  # to fetch or copy
    needed: int = 0  # bytes still to write: todo sizes minus what their .partial already holds
    stale: bool = False  # staging was started for another source: start it afresh


def read_staged(lay: Layout) -> dict[str, Any]:
    try:
        record = json.loads((lay.staging / STAGED_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _trusted(record: dict[str, Any], path: Path, entry: RemoteFile) -> bool:
    """Verified by the stage step of this copy and unchanged since (size and mtime, like the marker)."""
    seen = (record.get("verified") or {}).get(entry.path)
    if not seen:
        return False
    stat = path.stat()
    return bool(seen == [stat.st_size, stat.st_mtime_ns, entry.sha256])


def _verified(path: Path, entry: RemoteFile, record: dict[str, Any]) -> bool:
    if not path.is_file() or (entry.size >= 0 and path.stat().st_size != entry.size):
        return False
    return _trusted(record, path, entry) or model_verify.file_digest(path, entry.sha256) == entry.sha256


def plan(lay: Layout, files: list[RemoteFile], identity: str) -> Plan:
    """Which files are already staged, which dest already holds (linked), which must come from the source."""
    record = read_staged(lay) if lay.staging.is_dir() else {}
    result = Plan(stale=bool(record) and record.get("identity") != identity)
    if result.stale:
        record = {}
    for entry in files:
        staged, current = lay.staging / entry.path, lay.dest / entry.path
        if not result.stale and _verified(staged, entry, record):
            result.keep.append(entry)
        elif _verified(current, entry, {}):
            result.link.append(entry)
        else:
            partial = staged.with_name(staged.name + model_verify.PARTIAL_SUFFIX)
            have = partial.stat().st_size if not result.stale and partial.is_file() else 0
            result.todo.append(entry)
            result.needed += max(entry.size - have, 0)
    return result


# --- apply -------------------------------------------------------------------------------------------


def prepare(lay: Layout, files: list[RemoteFile], identity: str, work: Plan) -> None:
    """Create staging, hard-link the files dest already holds, and record what is verified there."""
    if work.stale:
        shutil.rmtree(lay.staging)
    lay.staging.mkdir(mode=0o755, parents=True, exist_ok=True)
    for entry in work.link:
        target = lay.staging / entry.path
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(lay.dest / entry.path, target)
        except OSError as error:  # a filesystem without hard links: copy, after checking the space
            if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            model_verify.preflight_space(entry.size, model_verify.free_bytes(lay.staging), lay.dest)
            shutil.copy2(lay.dest / entry.path, target)
    for entry in work.todo:
        (lay.staging / entry.path).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    verified: dict[str, list[Any]] = {}
    for entry in [*work.keep, *work.link]:
        stat = (lay.staging / entry.path).stat()
        verified[entry.path] = [stat.st_size, stat.st_mtime_ns, entry.sha256]
    write_json(lay.staging / STAGED_NAME, {"identity": identity, "verified": verified})


def write_json(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def verify_staged(lay: Layout, files: list[RemoteFile]) -> None:
    """Every listed file in staging has its sha256 (files the stage step verified are trusted while their
    size and mtime are unchanged); a bad one is deleted, so the next run copies it again."""
    record = read_staged(lay)
    for entry in files:
        path = lay.staging / entry.path
        if not path.is_file():
            raise model_verify.VerifyError(f"{entry.path} is missing from the staged copy; re-run to copy it")
        if path.stat().st_size != entry.size:
            size = path.stat().st_size
            path.unlink()
            raise model_verify.VerifyError(
                f"{entry.path}: the staged copy has {size} bytes, the source {entry.size}; it was "
                f"deleted and the model in {lay.dest} left as it was: re-run to copy it again"
            )
        if _trusted(record, path, entry):
            continue
        digest = model_verify.file_digest(path, entry.sha256)
        if digest != entry.sha256:
            path.unlink()
            raise model_verify.VerifyError(
                f"{entry.path}: sha256 {digest} of the staged copy does not match the source's "
                f"{entry.sha256}; it was deleted and the model in {lay.dest} left as it was: re-run to "
                "copy it again"
            )


def commit(lay: Layout, files: list[RemoteFile], marker: dict[str, Any]) -> None:
    """Write the completion marker into staging and swap staging in for dest.

    Staging is first reduced to exactly the listed files (leftovers of an earlier, different copy go);
    dest's progress file moves along so it stays readable. The swap is two renames: dest -> .old, staging
    -> dest; a crash between them is repaired by `recover` on the next run (the old copy comes back)."""
    listed = {entry.path for entry in files}
    for path in sorted(lay.staging.rglob("*"), reverse=True):  # children before their directories
        relative = path.relative_to(lay.staging).as_posix()
        if path.is_dir() and not path.is_symlink():
            if not any(name.startswith(relative + "/") for name in listed):
                shutil.rmtree(path, ignore_errors=True)
        elif relative not in listed:
            path.unlink()
    model_verify.write_marker(lay.staging, marker)
    progress = lay.dest / PROGRESS_NAME
    if progress.is_file():
        os.replace(progress, lay.staging / PROGRESS_NAME)
    lay.staging.chmod(0o755)
    if lay.dest.exists():
        os.rename(lay.dest, lay.old)
    os.rename(lay.staging, lay.dest)
    _fsync_directory(lay.dest.parent)
    shutil.rmtree(lay.old, ignore_errors=True)
    shutil.rmtree(lay.transfer, ignore_errors=True)


def _fsync_directory(path: Path) -> None:
    """Make the renames durable: a power cut after the task returned must not bring the old copy back."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- the controller's listing ------------------------------------------------------------------------


def directory_listing(root: Path) -> list[RemoteFile]:
    """Every regular file under root (symlinks followed) with its size and sha256, sorted by path.

    Hidden files and directories are left out: `.git` (which can hold a second copy of every weight),
    `.cache` (hub client metadata) and this project's own markers are not part of the model."""
    files = []
    for directory, subdirectories, names in os.walk(root, followlinks=True):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(names):
            path = Path(directory) / name
            if name.startswith(".") or name.endswith(model_verify.PARTIAL_SUFFIX) or not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            files.append(RemoteFile(relative, path.stat().st_size, model_verify.file_digest(path, "")))
    return sorted(files, key=lambda entry: entry.path)


def manifest_text(files: list[RemoteFile]) -> str:
    """The files as `sha256sum` prints them: `sha256sum -c` on the host checks a copy with it."""
    return "".join(f"{entry.sha256}  {entry.path}\n" for entry in sorted(files, key=lambda f: f.path))
