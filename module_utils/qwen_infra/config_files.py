"""Bring a role's directories and files to their declared content, owner, group and mode in one pass.

Why one pass: every Ansible module run on a host starts Python and imports ansible-core's module_utils
(about 0.3 s on the lab's hosts), and a `template` task is two runs (a stat, then the copy or a file
check), so a role that writes six files pays twelve starts on every re-run with nothing to change
(docs/converge.md). The `config_files` module runs this once per role step instead.

Stdlib only: it runs on the managed host inside the module. A file is replaced by rename from a
temporary file in its own directory that already has its final owner and mode, so no reader ever sees
a half-written file or one with wider permissions than declared.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ConfigFilesError(Exception):
    """A declared entry cannot be applied as given; the message says which path and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.changed_paths: list[str] = []  # the entries changed before this one (apply sets it)


@dataclass(frozen=True)
class Entry:
    path: str
    state: str
    mode: int
    owner: str
    group: str
    content: str | None = None
    validate: str | None = None


@dataclass
class Outcome:
    changed_paths: list[str] = field(default_factory=list)
    existed: list[str] = field(default_factory=list)
    checksums: dict[str, str] = field(default_factory=dict)
    diffs: list[dict[str, Any]] = field(default_factory=list)


def entry(spec: dict[str, Any]) -> Entry:
    """One entry of the module's `files` option (its argument spec has already applied the defaults and
    the state's choices), checked for what the spec cannot say: an absolute path, an octal mode, and
    content exactly when the entry is a file."""
    path, state = spec["path"], spec["state"]
    if not os.path.isabs(path):
        raise ConfigFilesError(f"{path}: give an absolute path")
    try:
        mode = int(str(spec["mode"]), 8)
    except (KeyError, TypeError, ValueError):
        raise ConfigFilesError(
            f"{path}: mode {spec.get('mode')!r} is not an octal mode such as '0644'"
        ) from None
    if mode > 0o7777:
        raise ConfigFilesError(f"{path}: mode {spec['mode']!r} is out of range")
    content, validate = spec.get("content"), spec.get("validate")
    if state == "file" and content is None:
        raise ConfigFilesError(f"{path}: a file needs its content")
    if state == "directory" and (content is not None or validate):
        raise ConfigFilesError(f"{path}: a directory takes no content or validate")
    if validate and "%s" not in validate:
        raise ConfigFilesError(f"{path}: validate must name the candidate file as %s")
    return Entry(path, state, mode, spec["owner"], spec["group"], content, validate)


def _ids(item: Entry) -> tuple[int, int]:
    try:
        uid = pwd.getpwnam(item.owner).pw_uid
    except KeyError:
        raise ConfigFilesError(f"{item.path}: no user {item.owner!r} on this host") from None
    try:
        gid = grp.getgrnam(item.group).gr_gid
    except KeyError:
        raise ConfigFilesError(f"{item.path}: no group {item.group!r} on this host") from None
    return uid, gid


def _attributes(mode: int, owner: str, group: str) -> dict[str, str]:
    return {"mode": f"{mode:04o}", "owner": owner, "group": group}


def _current_attributes(status: os.stat_result) -> dict[str, str]:
    def name(lookup: Callable[[int], Any], number: int) -> str:
        try:
            return str(lookup(number)[0])
        except KeyError:
            return str(number)

    owner, group = name(pwd.getpwuid, status.st_uid), name(grp.getgrgid, status.st_gid)
    return _attributes(stat.S_IMODE(status.st_mode), owner, group)


def _read_text(path: str) -> str:
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


def _write_candidate(item: Entry, directory: str, uid: int, gid: int, name: str | None = None) -> str:
    """The new content in a file of `directory` with the target's owner and mode already: under `name`,
    or a temporary name beside the target (then renamed over it)."""
    if name is None:
        handle, candidate = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(item.path)}.")
    else:
        candidate = os.path.join(directory, name)
        handle = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write((item.content or "").encode("utf-8"))
            out.flush()
            os.fchown(out.fileno(), uid, gid)
            os.fchmod(out.fileno(), item.mode)
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(candidate)
        raise
    return candidate


def apply(
    items: list[Entry],
    *,
    check_mode: bool,
    want_diff: bool,
    run_validate: Callable[[str], tuple[int, str]],
) -> Outcome:
    """Apply the entries in order (a directory before the files in it). `run_validate(command)` runs a
    validate command and returns (exit status, what it printed); a candidate it refuses is removed and
    the target left as it was. In check mode nothing is written and validate does not run."""
    # Owners and groups are resolved for every entry before the first is written, so a name the host
    # lacks changes nothing. A check run may declare an owner the same run would create first: there
    # the names are not looked up, and a name the host lacks never matches what is there.
    resolved = [(item, (-1, -1) if check_mode else _ids(item)) for item in items]
    outcome = Outcome()
    for item, (uid, gid) in resolved:
        try:
            _apply_one(
                item, uid, gid, outcome, check_mode=check_mode, want_diff=want_diff, run_validate=run_validate
            )
        except OSError as error:  # named by the entry, like the module's own refusals
            failure = ConfigFilesError(f"{item.path}: {error.strerror or error}")
            failure.changed_paths = outcome.changed_paths
            raise failure from error
        except ConfigFilesError as error:
            error.changed_paths = outcome.changed_paths  # what was done before it stays done, and is reported
            raise
    return outcome


def _apply_one(
    item: Entry,
    uid: int,
    gid: int,
    outcome: Outcome,
    *,
    check_mode: bool,
    want_diff: bool,
    run_validate: Callable[[str], tuple[int, str]],
) -> None:
    if item.content is not None:  # what the file holds after this run (in check mode: would hold)
        outcome.checksums[item.path] = hashlib.sha256(item.content.encode("utf-8")).hexdigest()
    wanted = _attributes(item.mode, item.owner, item.group)
    try:
        status = os.lstat(item.path)
    except FileNotFoundError:
        status = None
    if status is not None:
        outcome.existed.append(item.path)
        kind = (
            "directory" if stat.S_ISDIR(status.st_mode) else "file" if stat.S_ISREG(status.st_mode) else None
        )
        if kind != item.state:
            raise ConfigFilesError(
                f"{item.path} exists as {kind or 'something else (a link or a device)'}, not a {item.state}:"
                " move it away, then run again"
            )
    before = _current_attributes(status) if status else None
    old_text = _read_text(item.path) if status and item.state == "file" else None
    content_differs = item.state == "file" and old_text != item.content
    attributes_differ = before != wanted
    if not (status is None or content_differs or attributes_differ):
        return
    if not check_mode:
        _write(
            item, uid, gid, created=status is None, content_differs=content_differs, run_validate=run_validate
        )
    outcome.changed_paths.append(item.path)
    if want_diff:
        outcome.diffs += _diffs(item, before, wanted, old_text)


def _write(
    item: Entry,
    uid: int,
    gid: int,
    *,
    created: bool,
    content_differs: bool,
    run_validate: Callable[[str], tuple[int, str]],
) -> None:
    if item.state == "directory":
        if created:
            # Missing parents as ansible.builtin.file makes them: root's, 0755 (the umask aside).
            os.makedirs(os.path.dirname(item.path), mode=0o755, exist_ok=True)
            os.mkdir(item.path, item.mode)
        os.chown(item.path, uid, gid)
        os.chmod(item.path, item.mode)  # mkdir's mode passes through the umask
        return
    if not content_differs and not created:
        os.chown(item.path, uid, gid)
        os.chmod(item.path, item.mode)
        return
    if item.validate:
        _validate(item, item.validate, uid, gid, run_validate)
    os.replace(_write_candidate(item, os.path.dirname(item.path), uid, gid), item.path)


def _validate(
    item: Entry, command: str, uid: int, gid: int, run_validate: Callable[[str], tuple[int, str]]
) -> None:
    """Run the validate command on a copy under the target's own name in a private directory: checkers
    that judge a file by its name see the real one (systemd-analyze verify refuses a unit named like a
    temporary file), and no candidate sits in a directory a service reads (a unit directory at a
    daemon-reload)."""
    private = tempfile.mkdtemp(prefix="qwen-infra-validate-")
    try:
        candidate = _write_candidate(item, private, uid, gid, name=os.path.basename(item.path))
        returncode, said = run_validate(command % candidate)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    if returncode != 0:
        raise ConfigFilesError(
            f"{item.path}: the new content failed to validate ({command}, exit {returncode}),"
            f" so the file was left as it was: {said.strip()}"
        )


def _diffs(
    item: Entry, before: dict[str, str] | None, wanted: dict[str, str], old_text: str | None
) -> list[dict[str, Any]]:
    """What changes, as Ansible's diff callback shows it: the content, and the owner, group and mode."""
    header: dict[str, Any] = {"before_header": item.path, "after_header": item.path}
    diffs: list[dict[str, Any]] = []
    if item.state == "file" and old_text != item.content:
        diffs.append({**header, "before": old_text or "", "after": item.content})
    if before is None or before != wanted:
        describe = {"path": item.path, "state": item.state}
        was = {**describe, **before} if before else {"path": item.path, "state": "absent"}
        diffs.append({**header, "before": was, "after": {**describe, **wanted}})
    return diffs


# Defaults of the module's argument spec for an entry, for entries judged before the module runs.
ENTRY_DEFAULTS = {"state": "file", "owner": "root", "group": "root"}


def confirmed_by(specs: list[dict[str, Any]], known: dict[str, Any]) -> dict[str, Any] | None:
    """The module's result for `specs` when `known` (what host_facts read of the host earlier in the run:
    its `paths` and `checksums`) shows every entry already as declared, so no module needs to run; None
    when any entry is missing from `known`, differs from it, or cannot be judged (then the module runs
    and decides, with every check and refusal of its own)."""
    paths, checksums = known.get("paths") or {}, known.get("checksums") or {}
    result: dict[str, Any] = {"changed_paths": [], "existed": [], "checksums": {}}
    for spec in specs:
        try:
            item = entry({**ENTRY_DEFAULTS, **{k: v for k, v in spec.items() if v is not None}})
        except ConfigFilesError:
            return None
        seen = paths.get(item.path)
        if not seen or not seen.get("exists") or seen.get("islnk"):
            return None
        if bool(seen.get("isdir")) != (item.state == "directory"):
            return None
        if [seen.get("owner"), seen.get("group"), seen.get("mode")] != [
            item.owner,
            item.group,
            f"{item.mode:04o}",
        ]:
            return None
        if item.content is not None:
            checksum = hashlib.sha256(item.content.encode("utf-8")).hexdigest()
            if checksums.get(item.path) != checksum:
                return None
            result["checksums"][item.path] = checksum
        result["existed"].append(item.path)
    return result
