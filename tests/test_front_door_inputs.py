"""playbooks/validate.yml refuses bad front door inputs before any host changes, naming what to fix and
never printing a key. Runs the real playbook against an inventory of local hosts (nothing is changed on
them: the validate play only reads variables and, on the controller, the certificate)."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO
from tests.tls import self_signed_pem

BIN = Path(sys.executable).parent
# ansible.cfg loads no vault password: the lab's is given the way an operator gives prod's.
ENV = {
    **os.environ,
    "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
    "ANSIBLE_VAULT_IDENTITY_LIST": f"lab@{REPO / 'inventories' / 'lab' / 'vault-password.txt'}",
}
# Ansible patches the interpreter when imported (sys.intern), which breaks torch in later tests of the
# same pytest process: encrypt in a child process instead.
ENCRYPT = """
import sys
from pathlib import Path
from ansible.parsing.vault import VaultLib, VaultSecret
vault = VaultLib([("lab", VaultSecret(Path(sys.argv[1]).read_bytes().strip()))])
sys.stdout.write(vault.encrypt(sys.stdin.read(), vault_id="lab").decode())
"""


@functools.cache
def encrypted(secret: str) -> str:
    """`secret` encrypted with the lab vault id."""
    return subprocess.run(
        [sys.executable, "-c", ENCRYPT, REPO / "inventories/lab/vault-password.txt"],
        input=secret, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


BACKEND_KEY = "backend-key-" + "b" * 24
KEYS = {"alice": "a" * 40, "bob": "0123456789abcdef" * 3}


class Vaulted(str):
    """A string written to YAML as `!vault |` (encrypted with the lab vault id)."""


yaml.SafeDumper.add_representer(
    Vaulted,
    lambda dumper, value: dumper.represent_scalar("!vault", encrypted(str(value)), style="|"),
)


CERT, CERT_KEY = self_signed_pem()


def client(name, **changes):
    return {
        "name": name,
        "key": Vaulted(KEYS[name]),
        "requests_per_second": 5,
        "concurrent_requests": 2,
        "allowed_models": ["qwen3-tiny"],
        **changes,
    }


def inventory(tmp_path, clients=None, lb=None, server=None):
    """A site with two serving hosts and one load balancer, all on this machine (connection local)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    lb_vars = {
        **local,
        "qwen_private_address": "127.0.0.1",
        "front_door_tls_certificate": CERT,
        "front_door_tls_private_key": Vaulted(CERT_KEY),
        "qwen_clients": [client("alice"), client("bob")] if clients is None else clients,
        **(lb or {}),
    }
    server_vars = {
        **local,
        "vllm_model_path": "/srv/models/qwen3-tiny",
        "vllm_served_model_name": "qwen3-tiny",
        "vllm_host": "10.0.0.11",
        "vllm_port": 8000,
        "vllm_api_key": Vaulted(BACKEND_KEY),
        "front_door_server_maxconn": 4,
        "model_fetch_model": "Qwen/Qwen3-0.6B",
        "model_fetch_revision": "master",
        "model_fetch_dest": "/srv/models/qwen3-tiny",
        **(server or {}),
    }
    document = {
        "all": {
            "children": {
                "vllm_servers": {
                    "hosts": {"srv1": server_vars, "srv2": {**server_vars, "vllm_host": "10.0.0.12"}}
                },
                "load_balancers": {"hosts": {"lb1": lb_vars}},
            }
        }
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def validate(path):
    done = subprocess.run(
        [BIN / "ansible-playbook", "playbooks/validate.yml", "-i", path],
        cwd=REPO, env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_good_inputs_pass(tmp_path):
    rc, output = validate(inventory(tmp_path))
    assert rc == 0, output
    assert "front_door : Refuse bad inputs" in output


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            {"clients": [client("alice", allowed_models=["qwen3-tiny", "qwen3-huge"])]},
            'client alice: unknown model "qwen3-huge" in allowed_models (served here: qwen3-tiny)',
        ),
        (
            {"clients": [client("alice"), {**client("bob"), "key": Vaulted(KEYS["alice"])}]},
            "client bob: another client has the same key",
        ),
        (
            {"clients": [{**client("alice"), "key": Vaulted("short-key")}]},
            "client alice: the key must be at least 32 characters",
        ),
        (
            {"clients": [client("alice", requests_per_second=0)]},
            "client alice: requests_per_second must be a positive",
        ),
        (
            {"clients": [client("alice", concurrent_requests=-2)]},
            "client alice: concurrent_requests must be a positive",
        ),
        # refused by the role's argument spec (type int), before the problems template
        pytest.param(
            {"clients": [client("alice", requests_per_second="many")]},
            "argument 'requests_per_second' is of type str",
            id="limit-not-an-integer-argument-spec",
        ),
        ({"clients": [client("alice"), client("alice")]}, "client name alice is used more than once"),
        ({"clients": [{**client("alice"), "name": "Alice Smith"}]}, 'client name "Alice Smith" must match'),
        ({"clients": [client("alice", allowed_models=[])]}, "client alice: allowed_models is empty"),
        ({"clients": [{**client("alice"), "key": KEYS["alice"]}]}, "client alice: the key is in plain text"),
        (
            {
                "clients": [{**client("alice"), "key": Vaulted(BACKEND_KEY + "x" * 10)}],
                "server": {"vllm_api_key": Vaulted(BACKEND_KEY + "x" * 10)},
            },
            "client alice: the key is a backend key (vllm_api_key)",
        ),
        ({"server": {"vllm_host": "0.0.0.0"}}, "vLLM on srv1 listens on every address"),  # noqa: S104
        ({"lb": {"front_door_tls_private_key": Vaulted(self_signed_pem()[1])}}, "is not the key of"),
        ({"lb": {"front_door_tls_private_key": CERT_KEY}}, "front_door_tls_private_key is in plain text"),
        (
            {"lb": {"front_door_tls_certificate": ""}},
            "front_door_tls_certificate must hold a PEM certificate",
        ),
        ({"lb": {"front_door_tls_private_key": Vaulted("not a key")}}, "must hold a PEM private key"),
        ({"lb": {"front_door_queue_timeout_s": 0}}, "front_door_queue_timeout_s must be a positive number"),
        ({"lb": {"front_door_http_port": 443}}, "must differ"),
    ],
    ids=lambda value: None if isinstance(value, (dict, type(None))) else value[:40],
)
def test_bad_inputs_are_refused_with_what_to_fix(tmp_path, case, expected):
    rc, output = validate(inventory(tmp_path, **case))
    assert rc != 0
    assert expected in output, output[-4000:]
    # The message names clients, never their keys.
    for secret in [*KEYS.values(), BACKEND_KEY]:
        assert secret not in output


def test_an_expired_certificate_is_refused(tmp_path):
    cert, key = self_signed_pem(days=-1)
    rc, output = validate(
        inventory(
            tmp_path, lb={"front_door_tls_certificate": cert, "front_door_tls_private_key": Vaulted(key)}
        )
    )
    assert rc != 0
    assert "front_door_tls_certificate has expired" in output


def test_one_bad_host_stops_the_run_for_every_host(tmp_path):
    """site.yml's stages after validate.yml run for no host once one host's inputs are bad (here: a
    playbook that imports validate.yml, then a stage that must not run)."""
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        yaml.safe_dump([
            {"name": "Validate", "ansible.builtin.import_playbook": str(REPO / "playbooks" / "validate.yml")},
            {"name": "Next stage", "hosts": "all", "gather_facts": False,
             "tasks": [{"name": "Mark", "ansible.builtin.debug": {"msg": "NEXT STAGE RAN"}}]},
        ])
    )  # fmt: skip
    hosts = inventory(tmp_path, clients=[client("alice", requests_per_second=0)])
    done = subprocess.run(
        [BIN / "ansible-playbook", playbook, "-i", hosts],
        cwd=REPO, env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "requests_per_second must be a positive" in done.stdout
    assert "NEXT STAGE RAN" not in done.stdout
