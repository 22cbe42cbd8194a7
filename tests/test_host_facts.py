"""The host_facts module, run through ansible-core on this machine: its answers are what the roles' gates
read (a wrong "installed" or "already linked" would skip a task a host needs), so each is compared with
what the system's own tools say. Units are read in the lab's systemd containers (molecule): this machine's
PID 1 is not systemd, which the last test uses to check the refusal."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible_module import run_ansible_module


def facts(tmp_path: Path, **questions) -> dict:
    return run_ansible_module(tmp_path, "host_facts", json.dumps(questions))


def dpkg_installed(name: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${db:Status-Status}", name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode == 0 and done.stdout == "installed"


def test_paths_as_stat_sees_them(tmp_path):
    release = tmp_path / "releases" / "v1"
    release.mkdir(parents=True)
    (tmp_path / "current").symlink_to(release)
    (tmp_path / "plain").write_text("x")
    (tmp_path / "plain").chmod(0o640)
    paths = [str(tmp_path / name) for name in ("current", "plain", "absent")]
    answer = facts(tmp_path, paths=paths)["paths"]
    current, plain, absent = (answer[path] for path in paths)
    assert current["islnk"] and current["isdir"] and current["lnk_target"] == str(release)
    assert current["lnk_source"] == str(release.resolve())
    assert current["uid"] == os.getuid()
    assert plain["owner"] == pwd.getpwuid(os.getuid()).pw_name
    assert not plain["islnk"] and not plain["isdir"] and plain["mode"] == "0640"
    assert plain["lnk_target"] is None
    assert absent == {
        "exists": False, "isdir": False, "islnk": False, "lnk_source": None, "lnk_target": None,
        "uid": None, "gid": None, "owner": None, "group": None, "mode": None,
    }  # fmt: skip


def test_packages_missing_agrees_with_dpkg(tmp_path):
    names = ["dpkg", "iproute2", "qwen-infra-no-such-package", "nginx", "cowsay"]
    answer = facts(tmp_path, packages=names)["packages_missing"]
    assert answer == [name for name in names if not dpkg_installed(name)]
    assert "dpkg" not in answer and "qwen-infra-no-such-package" in answer


def test_filesystem_size_agrees_with_df(tmp_path):
    shm = "/dev/shm"  # noqa: S108 - read, not written: the filesystem vLLM's queues use
    answer = facts(tmp_path, filesystems=[shm])["filesystems"][shm]
    df = subprocess.run(
        ["df", "--output=size", "--block-size=1M", shm], capture_output=True, text=True, check=True
    )
    assert answer["size_mib"] == int(df.stdout.splitlines()[-1])
    assert 0 <= answer["free_mib"] <= answer["size_mib"]


def test_port_holders_name_the_listening_process(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        holders = facts(tmp_path, ports=[port])["port_holders"]
    assert [holder["pid"] for holder in holders] == [os.getpid()]
    with open(f"/proc/{os.getpid()}/cgroup", encoding="utf-8") as own:
        assert holders[0]["cgroup"] == own.read()
    assert facts(tmp_path, ports=[port])["port_holders"] == []  # closed: nobody holds it


def test_accounts_and_groups(tmp_path):
    answer = facts(tmp_path, users=["root", "qwen-no-such-user"], groups=["root", "qwen-no-such-group"])
    root = pwd.getpwnam("root")
    assert answer["users"]["root"] == {
        "uid": 0, "group": "root", "home": root.pw_dir, "shell": root.pw_shell, "comment": root.pw_gecos
    }  # fmt: skip
    assert answer["users"]["qwen-no-such-user"] is None
    assert answer["groups"] == {"root": {"gid": 0}, "qwen-no-such-group": None}


def test_names_resolve_as_getent_does(tmp_path):
    answer = facts(tmp_path, resolve=["localhost", "qwen-infra-no-such-host.invalid"])["addresses"]
    getent = subprocess.run(
        ["getent", "ahosts", "localhost"], capture_output=True, text=True, check=True
    ).stdout
    assert answer["localhost"] == sorted({line.split()[0] for line in getent.splitlines()})
    assert answer["qwen-infra-no-such-host.invalid"] is None


def test_read_returns_a_file_s_text(tmp_path):
    certificate = tmp_path / "host.pem"
    certificate.write_text("-----BEGIN CERTIFICATE-----\n")
    answer = facts(tmp_path, read=[str(certificate), str(tmp_path / "none.pem")])["contents"]
    assert answer == {str(certificate): "-----BEGIN CERTIFICATE-----\n", str(tmp_path / "none.pem"): None}


def test_nothing_asked_nothing_answered_and_nothing_changed(tmp_path):
    answer = facts(tmp_path, paths=[])  # `ansible -a '{}'` would be a raw parameter
    assert answer["changed"] is False
    assert [answer[key] for key in ("paths", "packages_missing", "port_holders", "units")] == [{}, [], [], {}]


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd runs here: units can be read")
def test_units_without_systemd_fail_with_the_reason(tmp_path):
    assert shutil.which("systemctl"), "systemctl is installed on this machine (without systemd as PID 1)"
    answer = facts(tmp_path, units=["ssh.service"], paths=["/"])
    assert answer.get("failed") is True
    assert answer["msg"].startswith("cannot read the host's state: systemctl show failed")


def test_public_keys_agree_with_openssl_and_never_show_the_key(tmp_path):
    key = tmp_path / "host.key"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key)],
        check=True, capture_output=True,
    )  # fmt: skip
    not_a_key = tmp_path / "host.pem"
    not_a_key.write_text("-----BEGIN CERTIFICATE-----\n")
    absent = tmp_path / "absent.key"
    paths = [str(key), str(not_a_key), str(absent)]
    answer = facts(tmp_path, public_keys=paths)
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert answer["public_keys"] == {str(key): public, str(not_a_key): None, str(absent): None}
    assert "PRIVATE" not in json.dumps(answer)


def test_virtualenvs_read_as_the_virtualenv_s_own_python_reads_them(tmp_path):
    """The answers the vllm role used to get by starting the virtualenv's Python (its version gate and
    the launcher's directory), checked against that Python on this repository's own virtualenv."""
    venv = Path(sys.prefix)  # the tests run in this repository's virtualenv
    names = ["ansible-core", "pyyaml", "PyYAML", "qwen-infra-no-such-dist"]
    probe = (
        "import importlib.metadata as m, json, sys, sysconfig;"
        "v = {n: next((d.version for d in m.distributions(name=n)), None) for n in sys.argv[1:]};"
        "print(json.dumps({'purelib': sysconfig.get_path('purelib'), 'distributions': v}))"
    )
    expected = json.loads(
        subprocess.run([str(venv / "bin" / "python"), "-c", probe, *names], check=True, capture_output=True,
                       text=True).stdout
    )  # fmt: skip
    broken = tmp_path / "broken"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(broken)], check=True)
    (broken / "bin" / "python").unlink()
    (broken / "bin" / "python").symlink_to(tmp_path / "no-such-python")
    dirs = [str(venv), str(broken), str(tmp_path)]
    answer = facts(tmp_path, virtualenvs=dirs, distributions=names)["virtualenvs"]
    assert answer[str(venv)]["purelib"] == expected["purelib"]
    assert answer[str(venv)]["distributions"] == expected["distributions"]
    assert expected["distributions"]["ansible-core"] is not None
    assert answer[str(broken)] is None and answer[str(tmp_path)] is None


def test_files_in_a_virtualenv_are_answered_under_their_full_paths(tmp_path):
    """The launcher the vllm role puts in a release's import directory, whose path depends on the Python
    version inside it: answered like any other path and checksum, and nothing for a directory without a
    working virtualenv."""
    venv = tmp_path / "release"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = next((venv / "lib").glob("python3.*/site-packages"))
    (purelib / "launcher.py").write_text("print('hello')\n")
    answer = facts(tmp_path, virtualenvs=[str(venv), str(tmp_path / "none")],
                   virtualenv_files=["launcher.py", "absent.py"])  # fmt: skip
    launcher, absent = str(purelib / "launcher.py"), str(purelib / "absent.py")
    assert set(answer["paths"]) == set(answer["checksums"]) == {launcher, absent}
    assert answer["paths"][launcher]["exists"] is True and answer["paths"][absent]["exists"] is False
    expected = subprocess.run(
        ["sha256sum", launcher], check=True, capture_output=True, text=True
    ).stdout.split()[0]
    assert answer["checksums"][launcher] == expected and answer["checksums"][absent] is None


def test_checksums_agree_with_sha256sum(tmp_path):
    config = tmp_path / "qwen.conf"
    config.write_text("listen 10.0.0.1\n")
    (tmp_path / "link.conf").symlink_to(config)
    paths = [str(config), str(tmp_path / "link.conf"), str(tmp_path), str(tmp_path / "absent.conf")]
    answer = facts(tmp_path, checksums=paths)["checksums"]
    sha256sum = subprocess.run(["sha256sum", str(config)], check=True, capture_output=True, text=True)
    assert answer == {paths[0]: sha256sum.stdout.split()[0], paths[1]: None, paths[2]: None, paths[3]: None}
