"""The lab reaches its hosts over SSH (lab/tasks/ssh.yml), with a real container, sshd and ssh client:
lab/up.yml on an inventory of one lab host gives it a host key of its own and this machine's key; the
lab inventory's connection settings then reach it over SSH; a host key other than the one written down
is refused; a second lab/up.yml changes nothing; lab/down.yml removes the host and its entries. Needs
Docker and the lab's base image, which `make test` sets up first (`make setup`)."""

import os
import shutil
import subprocess
from pathlib import Path

from tests.paths import REPO
from tools import bench_converge

HOST = "lab-ssh-test"
NETWORK = "qwen-infra-test-ssh"
SSH_DIR = REPO / ".cache" / "lab-ssh"
BIN = REPO / ".venv" / "bin"


def ansible(tool: str, inventory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    command = [BIN / tool, "-i", inventory, "-e", f"lab_network_name={NETWORK}", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)


def on_host(inventory: Path, command: str) -> subprocess.CompletedProcess[str]:
    return ansible("ansible", inventory, HOST, "-m", "ansible.builtin.raw", "-a", command)


def lab_inventory() -> Path:
    """One lab host, in an inventory beside the lab's group_vars at the lab inventory's depth (they derive
    this machine's paths from inventory_dir), as the converge benchmark writes its own, under build/."""
    return bench_converge.write_inventory({"ssh_test": [HOST]}, None, REPO / "build" / "test-lab-ssh")


def refused_with_another_key(inventory: Path, other_key: Path) -> str:
    """What a connection says when the host presents a key other than the one written down for it."""
    entry = SSH_DIR / "known_hosts" / HOST
    written = entry.read_text()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other_key], check=True)
    kind, key = Path(f"{other_key}.pub").read_text().split()[:2]
    entry.write_text(f"{HOST} {kind} {key}\n")
    try:
        # A kept-open connection was checked when it opened: close it so that a new one is checked.
        reset = ansible("ansible", inventory, HOST, "-m", "ansible.builtin.meta", "-a", "reset_connection")
        assert reset.returncode == 0, reset.stdout + reset.stderr
        done = on_host(inventory, "true")
        assert done.returncode != 0, "the host was reached with another key written down for it"
        return done.stdout + done.stderr
    finally:
        entry.write_text(written)


# One test, in order: the steps share one container, and pytest-xdist may run a module's tests in
# different workers.
def test_lab_hosts_are_reached_over_ssh_with_their_own_host_key(tmp_path):
    assert shutil.which("docker"), "docker is missing: make setup installs and starts it"
    inventory = lab_inventory()
    try:
        up = ansible("ansible-playbook", inventory, "lab/up.yml")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]

        # sshd sets SSH_CONNECTION ("client port server port") in a session; docker exec does not.
        done = on_host(inventory, "echo $SSH_CONNECTION; hostname")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f" 22\n{HOST}\n" in done.stdout.replace("\r", "")

        done = on_host(inventory, "sshd -T; cat /etc/ssh/ssh_host_ed25519_key.pub")
        effective = done.stdout.replace("\r", "").splitlines()
        assert "passwordauthentication no" in effective
        assert [line for line in effective if line.startswith("hostkey ")] == [
            "hostkey /etc/ssh/ssh_host_ed25519_key"
        ]
        written = (SSH_DIR / "known_hosts" / HOST).read_text().split()
        assert written[0] == HOST
        assert " ".join(written[1:3]) in done.stdout, "known_hosts holds another key than the host's"

        again = ansible("ansible-playbook", inventory, "lab/up.yml")
        recap = [line for line in again.stdout.splitlines() if line.startswith("localhost ")]
        assert again.returncode == 0 and recap and "changed=0 " in recap[0], again.stdout[-3000:]

        assert "Host key verification failed" in refused_with_another_key(inventory, tmp_path / "other")
        assert on_host(inventory, "true").returncode == 0, "not reached again with its own key"
    finally:
        down = ansible("ansible-playbook", inventory, "lab/down.yml")
    assert down.returncode == 0, down.stdout[-3000:]
    assert not (SSH_DIR / "hosts" / f"{HOST}.conf").exists()
    assert not (SSH_DIR / "known_hosts" / HOST).exists()
    assert (SSH_DIR / "id_ed25519").exists(), "this machine's key must stay for the next lab"
    assert subprocess.run(["docker", "inspect", HOST], capture_output=True, check=False).returncode != 0
