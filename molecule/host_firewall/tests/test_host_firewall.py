"""Verify the host firewall from three hosts and this machine, before and after a reboot."""

import socket
import subprocess
import time

import pytest
import testinfra

testinfra_hosts = ["molecule-host-firewall-guarded"]

NETWORK = "molecule-host_firewall"
GUARDED, ALLOWED, OTHER = (f"molecule-host-firewall-{n}" for n in ("guarded", "allowed", "other"))

# Runs on a host: connect to HOST:PORT and print what happened.
PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    print("open")
except OSError as error:
    print(type(error).__name__)
"""


def docker(name):
    return testinfra.get_host(f"docker://{name}")


def address(name):
    return subprocess.run(
        ["docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}', name],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def probe(source, port):
    return docker(source).check_output("python3 -c %s %s %s", PROBE, address(GUARDED), str(port))


def from_this_machine(port):
    try:
        socket.create_connection((address(GUARDED), port), timeout=5).close()
    except OSError as error:
        return type(error).__name__
    return "open"


def check_guard():
    assert probe(ALLOWED, 8000) == "open"
    assert probe(OTHER, 8000) == "ConnectionRefusedError"
    assert from_this_machine(8000) == "ConnectionRefusedError"
    # Port 9000 admits only a network none of these hosts is in, and the host itself.
    assert probe(ALLOWED, 9000) == "ConnectionRefusedError"
    assert probe(GUARDED, 9000) == "open"
    assert probe(GUARDED, 8000) == "open"
    # An unguarded port is not this role's business.
    assert probe(OTHER, 7000) == "open"


def test_only_the_listed_sources_reach_the_guarded_ports():
    check_guard()


def test_refusals_are_counted_by_the_rule_that_made_them():
    ruleset = docker(GUARDED).check_output("nft list table inet qwen_infra")
    assert "api: not an allowed source" in ruleset
    assert address(ALLOWED) in ruleset  # the name was resolved on the host
    assert "192.0.2.0/24" in ruleset


def test_other_tables_are_left_alone():
    # Docker's own rules for its DNS live in the container's namespace; they must survive.
    tables = docker(GUARDED).check_output("nft list tables")
    assert "table inet qwen_infra" in tables
    assert "table ip nat" in tables


def test_the_guard_comes_back_after_a_reboot():
    guarded = docker(GUARDED)
    assert guarded.service("qwen-firewall").is_enabled
    subprocess.run(["docker", "restart", GUARDED], check=True, capture_output=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = guarded.run("systemctl is-system-running").stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    for port in (7000, 8000, 9000):
        guarded.check_output(f"systemctl is-active standin-{port}")
    check_guard()


@pytest.mark.parametrize("port", [8000, 9000])
def test_a_reload_keeps_the_guard(port):
    """Reloading loads the file again over the existing table (declare, delete, write in one go)."""
    guarded = docker(GUARDED)
    guarded.check_output("systemctl reload qwen-firewall")
    assert guarded.check_output("nft list tables").count("table inet qwen_infra") == 1
    assert probe(OTHER, port) == "ConnectionRefusedError"
