"""The front door, tested from this machine as a client would use it: the official openai client over TLS
to a real HAProxy in front of two real vLLM servers (one model each), plus the host firewall on both.

Runs after converge and idempotence (molecule verify). The tests are ordered: the last ones revoke a
client and stop a server.
"""

import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
import testinfra

# Molecule's own `host` fixture runs each test once per host; these tests reach every host themselves.
testinfra_hosts = ["molecule-front-door-lb"]

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
CA_FILE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "tls" / "ca.pem"
NETWORK = "molecule-" + os.environ["MOLECULE_SCENARIO_NAME"]
LB, NODE_A, NODE_B = "molecule-front-door-lb", "molecule-front-door-a", "molecule-front-door-b"
MODEL_A, MODEL_B = "qwen3-tiny", "qwen3-tiny-b"
BIN = Path(sys.executable).parent
ANSIBLE_ENV = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")}
# vLLM routes the front door must never forward (its SageMaker, tokenizer, metrics, admin and docs
# routes; other OpenAI routes it does not serve), and near misses of the forwarded ones.
NOT_FORWARDED = [
    "/tokenize",
    "/detokenize",
    "/metrics",
    "/health",
    "/ping",
    "/version",
    "/invocations",
    "/docs",
    "/openapi.json",
    "/pooling",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/load_lora_adapter",
    "/v1/models/qwen3-tiny",
    "/v1/chat/completions/",
    "//v1/chat/completions",
    "/v1/chat%2Fcompletions",
]


def docker(name):
    return testinfra.get_host(f"docker://{name}")


def address(name):
    return subprocess.run(
        ["docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}', name],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def ansible_playbook(*args):
    return subprocess.run(
        [BIN / "ansible-playbook", "-i", INVENTORY, *args],
        cwd=PROJECT, env=ANSIBLE_ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip


class Secrets(dict):
    """Keys by name; shown as a placeholder, so a failing test's report never prints one."""

    def __repr__(self):
        return "<secrets>"


@pytest.fixture(scope="module")
def secrets():
    """The clients' and the backends' keys, as Ansible decrypts them from the scenario's inventory."""
    template = "{{ {'clients': hostvars[groups.load_balancers[0]].qwen_clients | items2dict('name', 'key'), "
    template += "'backends': dict(groups.vllm_servers | zip(groups.vllm_servers "
    template += "| map('extract', hostvars, 'vllm_api_key')))} | to_json }}"
    done = subprocess.run(
        [BIN / "ansible", "localhost", "-i", INVENTORY, "-m", "ansible.builtin.debug",
         "-a", f"msg={template}"],
        cwd=PROJECT, env={**ANSIBLE_ENV, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                          "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    result = result if isinstance(result, dict) else json.loads(result)
    return Secrets({name: Secrets(keys) for name, keys in result.items()})


@pytest.fixture(scope="module")
def base_url():
    return f"https://{address(LB)}"


def client(base_url, key, **options):
    return openai.OpenAI(
        base_url=base_url + "/v1",
        api_key=key,
        http_client=httpx.Client(verify=str(CA_FILE), **options),
        max_retries=0,  # the SDK would retry 429 and 503 itself
        timeout=120,
    )


def chat(openai_client, model, **extra):
    return openai_client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}], **{"max_tokens": 8, **extra}
    )


def long_generation(tokens):
    """Arguments that make vLLM generate exactly `tokens` tokens (the lab model would stop anywhere)."""
    return {"max_tokens": tokens, "extra_body": {"min_tokens": tokens, "ignore_eos": True}}


def audit_line(request_id, timeout=10.0):
    """The LB's journal line for this request (HAProxy writes it when the request ends)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = docker(LB).check_output("journalctl -t haproxy -o cat --no-pager -n 500").splitlines()
        found = [line for line in lines if f"id={request_id} " in line]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"no single audit line for {request_id}"
            return dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', found[0]))
        time.sleep(0.5)


class HeldStream:
    """A streamed request the test ends itself: its first chunk has arrived (it is at the server) and it
    stays in flight, holding its place at the front door and its server slot, until the test leaves the
    `with` block, however fast the model generates. Nothing is read after the first chunk; a small
    receive buffer stops the server at a few kilobytes, and n x tokens is far more than every buffer
    between holds."""

    def __init__(self, openai_client, model):
        self.stream = openai_client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            n=4,
            **long_generation(3000),
        )
        next(iter(self.stream))

    def ended(self):
        """Whether the front door has ended it (HAProxy writes its audit line when a request ends)."""
        request_id = self.stream.response.headers["x-request-id"]
        lines = docker(LB).check_output("journalctl -t haproxy -o cat --no-pager -n 500")
        return f"id={request_id} " in lines


@contextlib.contextmanager
def held_stream(openai_client, model):
    held = HeldStream(openai_client, model)
    try:
        yield held
    finally:
        held.stream.close()  # the client hangs up: HAProxy closes the server's connection, freeing its slot


def slow_reader(base_url, key):
    """A client whose streams the server can fill in a few kilobytes (see HeldStream)."""
    transport = httpx.HTTPTransport(
        verify=str(CA_FILE), socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]
    )
    return client(base_url, key, transport=transport)


def error_of(response):
    body = response.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"]), body
    return body["error"]


def queue_timeout_ms():
    """How long HAProxy lets a request wait for a server slot, as the LB's configuration says."""
    config = docker(LB).check_output("cat /etc/haproxy/haproxy.cfg")
    return int(re.search(r"^\s*timeout queue (\d+)s$", config, re.MULTILINE)[1]) * 1000


def stats():
    """HAProxy's view of every proxy and server (its CSV state page on the LB's loopback)."""
    script = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8404/stats;csv').read().decode())"
    text = docker(LB).check_output(f'python3 -c "{script}"').lstrip("# ")
    header, *rows = [line.split(",") for line in text.splitlines() if line]
    return [dict(zip(header, row, strict=False)) for row in rows]


def wait_until_queued(model, timeout=30.0):
    """Until HAProxy holds a request for `model` in a queue (its backend's or a server's)."""
    deadline = time.monotonic() + timeout
    while True:
        queued = sum(int(row["qcur"] or 0) for row in stats() if row["pxname"].endswith("_" + model))
        if queued or time.monotonic() > deadline:
            assert queued, f"no request for {model} waited at the front door within {timeout} s"
            return
        time.sleep(0.2)


# --- the way in -------------------------------------------------------------------------------------


def test_chat_completion_through_the_front_door_whole_and_streamed(base_url, secrets):
    full = client(base_url, secrets["clients"]["full"])
    whole = chat(full, MODEL_A).parse()
    assert whole.model == MODEL_A
    assert whole.usage.completion_tokens >= 1
    stream = full.chat.completions.create(
        model=MODEL_A,
        messages=[{"role": "user", "content": "Say hello."}],
        stream=True,
        **long_generation(32),
    )
    chunks = list(stream)
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content is not None) >= 16
    assert chunks[-1].choices[0].finish_reason == "length"


def test_stream_reaches_the_client_token_by_token(base_url, secrets):
    """Unbuffered: the first chunk arrives long before the last one is generated."""
    full = client(base_url, secrets["clients"]["full"])
    started = time.monotonic()
    arrivals = []
    for _ in full.chat.completions.create(
        model=MODEL_A, messages=[{"role": "user", "content": "Hi"}], stream=True, **long_generation(1500)
    ):
        arrivals.append(time.monotonic() - started)
    assert len(arrivals) > 1000
    assert arrivals[-1] > 1.0, "the generation was too fast to tell buffering apart"
    assert arrivals[0] < arrivals[-1] / 4, f"first chunk at {arrivals[0]:.2f} s, last at {arrivals[-1]:.2f} s"


@pytest.mark.parametrize(("model", "host"), [(MODEL_A, NODE_A), (MODEL_B, NODE_B)])
def test_the_model_field_picks_the_backend(base_url, secrets, model, host):
    raw = chat(client(base_url, secrets["clients"]["full"]), model)
    assert raw.parse().model == model
    line = audit_line(raw.headers["x-request-id"])
    assert line["server"].endswith("/" + host), line


def test_models_lists_what_each_client_may_use(base_url, secrets):
    listed = {
        name: sorted(m.id for m in client(base_url, secrets["clients"][name]).models.list())
        for name in ("full", "narrow")
    }
    assert listed == {"full": [MODEL_A, MODEL_B], "narrow": [MODEL_A]}


# --- refusals, in OpenAI's shape -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["wrong-key-0123456789abcdef0123456789abcdef", "backend"])
def test_an_unknown_key_is_401(base_url, secrets, key):
    # A backend key is not a client key: backend keys never work from outside.
    key = secrets["backends"][NODE_A] if key == "backend" else key
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(client(base_url, key), MODEL_A)
    assert refused.value.status_code == 401
    assert refused.value.code == "invalid_api_key"


def test_no_key_is_401(base_url):
    with httpx.Client(verify=str(CA_FILE)) as http:
        response = http.post(base_url + "/v1/chat/completions", json={"model": MODEL_A, "messages": []})
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"


def test_a_model_not_allowed_for_the_client_is_403(base_url, secrets):
    time.sleep(1.1)  # a fresh second for the narrow client's rate limit
    with pytest.raises(openai.PermissionDeniedError) as refused:
        chat(client(base_url, secrets["clients"]["narrow"]), MODEL_B)
    assert refused.value.code == "model_not_allowed"
    assert MODEL_B in refused.value.message


def test_a_request_without_a_model_is_400(base_url, secrets):
    with httpx.Client(verify=str(CA_FILE)) as http:
        response = http.post(
            base_url + "/v1/completions",
            json={"prompt": "x", "max_tokens": 1},
            headers={"Authorization": f"Bearer {secrets['clients']['full']}"},
        )
    assert response.status_code == 400
    assert error_of(response)["code"] == "model_required"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_request_too_large_is_413(base_url, secrets, framing):
    body = json.dumps({"model": MODEL_A, "prompt": "x" * 400_000, "max_tokens": 1}).encode()
    content = (
        body if framing == "content-length" else iter([body[i : i + 8192] for i in range(0, len(body), 8192)])
    )
    with httpx.Client(verify=str(CA_FILE)) as http:
        response = http.post(
            base_url + "/v1/completions",
            content=content,
            headers={
                "Authorization": f"Bearer {secrets['clients']['full']}",
                "Content-Type": "application/json",
            },
        )
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"


def test_over_the_rate_limit_is_429_with_retry_after(base_url, secrets):
    narrow = client(base_url, secrets["clients"]["narrow"])
    time.sleep(1.1)
    outcomes = []
    for _ in range(6):
        try:
            narrow.models.list()
            outcomes.append(200)
        except openai.RateLimitError as refused:
            outcomes.append((429, refused.code, refused.response.headers.get("retry-after")))
    assert outcomes[0] == 200
    assert (429, "rate_limit_exceeded", "1") in outcomes, outcomes
    time.sleep(2.1)
    narrow.models.list()  # the limit is per second: a later second is allowed again


def test_over_the_concurrency_limit_is_429(base_url, secrets):
    narrow = client(base_url, secrets["clients"]["narrow"])
    time.sleep(1.1)
    with held_stream(slow_reader(base_url, secrets["clients"]["narrow"]), MODEL_A) as first:
        time.sleep(1.1)  # a fresh second for the rate limit
        with pytest.raises(openai.RateLimitError) as refused:
            chat(narrow, MODEL_A)
        assert not first.ended(), "the first request had ended: the test proves nothing"
    assert refused.value.code == "concurrency_limit_exceeded"
    assert refused.value.response.headers["retry-after"] == "1"


# --- no way around it ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOT_FORWARDED)
def test_no_other_route_is_forwarded_with_or_without_a_key(base_url, secrets, path):
    keys = [None, secrets["clients"]["full"], secrets["backends"][NODE_A]]
    with httpx.Client(verify=str(CA_FILE)) as http:
        for key in keys:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            for method in ("GET", "POST"):
                response = http.request(method, base_url + path, headers=headers, json={"model": MODEL_A})
                assert response.status_code == 404, (method, path, key is not None)
                assert error_of(response)["code"] == "unknown_url"


def test_vllm_itself_answers_the_routes_the_front_door_hides(secrets):
    """Control for the test above: those routes exist on vLLM, and some answer without any key."""
    node_a = address(NODE_A)
    for path, key in [("/tokenize", None), ("/metrics", None), ("/v1/models", secrets["backends"][NODE_A])]:
        status = fetch_from(
            LB, f"http://{node_a}:8000{path}", key, body='{"prompt": "hi"}' if path == "/tokenize" else None
        )
        assert status == "200", (path, status)


def fetch_from(host, url, key=None, body=None):
    """HTTP status (or the error's name) of a request made on `host`, with Python's standard library."""
    script = (
        "import sys, urllib.request, urllib.error\n"
        "url, key, body = sys.argv[1], sys.argv[2], sys.argv[3]\n"
        "headers = {'Content-Type': 'application/json'}\n"
        "if key: headers['Authorization'] = 'Bearer ' + key\n"
        "request = urllib.request.Request(url, body.encode() if body else None, headers)\n"
        "try:\n"
        "    print(urllib.request.urlopen(request, timeout=10).status)\n"
        "except urllib.error.HTTPError as error:\n"
        "    print(error.code)\n"
        "except OSError as error:\n"
        "    print(type(error.reason if hasattr(error, 'reason') else error).__name__)\n"
    )
    return docker(host).check_output("python3 -c %s %s %s %s", script, url, key or "", body or "")


@pytest.mark.parametrize(("source", "target"), [(NODE_B, NODE_A), (NODE_A, NODE_B)])
def test_a_serving_host_cannot_reach_another_ones_vllm(secrets, source, target):
    url = f"http://{address(target)}:8000/v1/models"
    assert fetch_from(source, url, secrets["backends"][target]) == "ConnectionRefusedError"
    assert fetch_from(LB, url, secrets["backends"][target]) == "200"  # the front door may


def test_this_machine_cannot_reach_vllm_directly():
    with pytest.raises(ConnectionRefusedError), socket.create_connection((address(NODE_A), 8000), timeout=10):
        pass


@pytest.mark.parametrize("node", [NODE_A, NODE_B])
def test_vllm_listens_on_the_private_address_only(node):
    listeners = docker(node).check_output("ss --no-header --listening --tcp --numeric sport = :8000").split()
    assert f"{address(node)}:8000" in listeners
    assert "0.0.0.0:8000" not in listeners and "*:8000" not in listeners


# --- TLS ---------------------------------------------------------------------------------------------


def handshake(host, **context_options):
    context = ssl.create_default_context(cafile=str(CA_FILE))
    context.check_hostname = False
    for name, value in context_options.items():
        if name == "ciphers":
            context.set_ciphers(value)
        else:
            setattr(context, name, value)
    with socket.create_connection((host, 443), timeout=10) as raw, context.wrap_socket(raw) as tls:
        return tls.version(), tls.cipher()[0]


def test_tls_offers_modern_versions_and_ciphers_only():
    lb = address(LB)
    assert handshake(lb)[0] == "TLSv1.3"
    version, cipher = handshake(lb, maximum_version=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    # These clients would accept anything (security level 0): the refusal is the server's alert.
    old_versions = {
        "minimum_version": ssl.TLSVersion.TLSv1,
        "maximum_version": ssl.TLSVersion.TLSv1_1,
        "ciphers": "ALL:@SECLEVEL=0",
    }
    with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):
        handshake(lb, **old_versions)
    cbc_ciphers = {"maximum_version": ssl.TLSVersion.TLSv1_2, "ciphers": "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"}
    with pytest.raises(ssl.SSLError, match="ALERT_HANDSHAKE_FAILURE"):
        handshake(lb, **cbc_ciphers)


def test_https_sends_hsts_and_http_only_redirects(base_url, secrets):
    with httpx.Client(verify=str(CA_FILE)) as http:
        response = http.get(
            base_url + "/v1/models", headers={"Authorization": f"Bearer {secrets['clients']['full']}"}
        )
        assert response.status_code == 200
        assert int(re.search(r"max-age=(\d+)", response.headers["strict-transport-security"])[1]) >= 31536000
        plain = http.post(f"http://{address(LB)}/v1/chat/completions", json={"model": MODEL_A})
    assert plain.status_code == 308
    assert plain.headers["location"] == base_url + "/v1/chat/completions"


# --- what the front door keeps ---------------------------------------------------------------------


def test_audit_line_has_the_facts_and_no_secret(base_url, secrets):
    marker = f"prompt-marker-{time.time_ns()}"
    full = client(base_url, secrets["clients"]["full"])
    raw = full.chat.completions.with_raw_response.create(
        model=MODEL_A, messages=[{"role": "user", "content": marker}], **long_generation(24)
    )
    answer = raw.parse().choices[0].message.content
    assert len(answer) >= 8
    line = audit_line(raw.headers["x-request-id"])
    assert line["client"] == '"full"' and line["model"] == f'"{MODEL_A}"' and line["status"] == "200"
    assert int(line["bytes_in"]) > len(marker) and int(line["bytes_out"]) > 0
    assert int(line["queue_ms"]) >= 0 and 0 <= int(line["ttfb_ms"]) <= int(line["total_ms"])
    assert line["server"] in (f"be_1_{MODEL_A}/{NODE_A}",)
    # The completion as it is and as JSON writes it; the prompt; every client and backend key.
    never = [
        marker,
        answer,
        json.dumps(answer)[1:-1],
        *secrets["clients"].values(),
        *secrets["backends"].values(),
    ]
    for host in (LB, NODE_A, NODE_B):
        journal = docker(host).check_output("journalctl --no-pager -o cat")
        assert marker not in journal or host != LB, "the prompt is in the front door's journal"
        for secret in never:
            assert secret not in journal, f"{host}'s journal holds a prompt, completion or key"


def test_the_lb_stores_key_hashes_not_keys(secrets):
    lb = docker(LB)
    stored = lb.check_output("cat /etc/haproxy/qwen-infra/client-keys.map")
    for name, key in secrets["clients"].items():
        assert f"{hashlib.sha256(key.encode()).hexdigest()} {name}" in stored
        assert lb.run("grep -rlF %s /etc /var/lib/haproxy", key).stdout == ""


def test_health_checks_ask_with_the_backend_key():
    servers = {row["svname"]: row for row in stats() if row["pxname"].startswith("be_")}
    assert servers[NODE_A]["status"] == servers[NODE_B]["status"] == "UP"
    assert servers[NODE_A]["check_status"] == "L7OK"
    access_log = docker(NODE_A).check_output("journalctl -u vllm -o cat --no-pager -n 300")
    assert re.search(rf'{re.escape(address(LB))}:\d+ - "GET /v1/models HTTP/1.1" 200', access_log)


def test_each_server_takes_its_connection_limit():
    limits = {row["svname"]: row["slim"] for row in stats() if row["svname"] in (NODE_A, NODE_B)}
    assert limits == {NODE_A: "2", NODE_B: "1"}  # front_door_server_maxconn in the scenario's inventory


def test_requests_beyond_a_servers_limit_wait_at_the_front_door(base_url, secrets):
    """B takes one request at once: a second one waits at the front door until the first ends, then is
    served."""
    full = client(base_url, secrets["clients"]["full"])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with held_stream(slow_reader(base_url, secrets["clients"]["full"]), MODEL_B):
            waiting = pool.submit(chat, full, MODEL_B)
            # Timed from when HAProxy queued it: the client's TLS handshake may take a while on a
            # loaded machine, and the lower bound below is HAProxy's measure of the wait.
            wait_until_queued(MODEL_B)
            time.sleep(1.5)  # well within the wait the front door allows
            assert not waiting.done(), "the second request did not wait for B's only slot"
        line = audit_line(waiting.result().headers["x-request-id"])
    assert line["status"] == "200" and line["server"].endswith("/" + NODE_B), line
    assert 1000 <= int(line["queue_ms"]) < queue_timeout_ms(), line


def test_the_wait_at_the_front_door_is_bounded(base_url, secrets):
    """A request that waits longer than front_door_queue_timeout_s gets 503 while the server is still
    busy, rather than waiting for it."""
    full = client(base_url, secrets["clients"]["full"])
    with held_stream(slow_reader(base_url, secrets["clients"]["full"]), MODEL_B) as busy:
        with pytest.raises(openai.InternalServerError) as refused:
            chat(full, MODEL_B)
        assert not busy.ended()
    assert refused.value.status_code == 503
    assert refused.value.code == "service_unavailable"
    assert refused.value.response.headers["retry-after"] == "5"
    # HAProxy's own measure of the wait: the client's clock also counts the TLS handshake and whatever
    # else a loaded machine delays.
    line = audit_line(refused.value.response.headers["x-request-id"])
    assert line["status"] == "503" and line["term"].startswith("sQ"), line
    assert queue_timeout_ms() <= int(line["queue_ms"]) <= queue_timeout_ms() + 1000, line


# --- changes -----------------------------------------------------------------------------------------


def test_a_configuration_haproxy_refuses_leaves_the_old_one_serving(base_url, secrets):
    lb = docker(LB)
    before = lb.check_output("sha256sum /etc/haproxy/haproxy.cfg")
    done = ansible_playbook(
        str(PROJECT / "playbooks" / "front_door.yml"),
        "-e",
        '{"front_door_global_options": ["no-such-keyword 1"]}',
    )
    assert done.returncode != 0
    assert "failed to validate" in done.stdout, done.stdout[-3000:]
    assert lb.check_output("sha256sum /etc/haproxy/haproxy.cfg") == before
    assert chat(client(base_url, secrets["clients"]["full"]), MODEL_A).parse().model == MODEL_A


def master_cli(command):
    script = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect('/run/haproxy-master.sock')\n"
        "s.sendall(sys.argv[1].encode() + b'; quit\\n')\n"
        "print(b''.join(iter(lambda: s.recv(65536), b'')).decode())\n"
    )
    return docker(LB).check_output("python3 -c %s %s", script, command)


def test_revoking_a_client_by_a_rerun_keeps_another_clients_stream(base_url, secrets):
    leaving = client(base_url, secrets["clients"]["leaving"])
    assert leaving.models.list().data  # allowed before
    # A small receive buffer and a pause in reading hold the stream open, with vLLM still sending,
    # for as long as the re-run takes.
    full = client(base_url, secrets["clients"]["full"], transport=httpx.HTTPTransport(
        verify=str(CA_FILE), socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]))  # fmt: skip
    try:
        stream = full.chat.completions.create(
            model=MODEL_A, messages=[{"role": "user", "content": "Hi"}], stream=True, n=4,
            stream_options={"include_usage": True}, **long_generation(3000),
        )  # fmt: skip
        chunks = iter(stream)
        first = next(chunks)
        done = ansible_playbook(
            str(PROJECT / "playbooks" / "front_door.yml"), "-e", f"@{SCENARIO / 'vars' / 'revoked.yml'}"
        )
        assert done.returncode == 0, done.stdout[-3000:]
        # The old process still serves the stream while the new one serves everything else.
        assert re.search(r"# old workers\n\d+", master_cli("show proc")), (
            "no old worker: nothing was in flight"
        )
        with pytest.raises(openai.AuthenticationError):
            leaving.models.list()
        assert chat(full, MODEL_A).parse().model == MODEL_A  # the new process serves the others
        rest = list(chunks)
        usage = [c.usage for c in rest if c.usage]
        finished = [
            c.choices[0].finish_reason for c in [first, *rest] if c.choices and c.choices[0].finish_reason
        ]
        assert usage and usage[-1].completion_tokens == 4 * 3000
        assert finished == ["length"] * 4
    finally:
        restored = ansible_playbook(str(PROJECT / "playbooks" / "front_door.yml"))
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert leaving.models.list().data  # a re-run with the client back admits it again


def test_no_healthy_server_is_503_while_the_other_model_serves(base_url, secrets):
    """Last: stops vLLM on one host."""
    full = client(base_url, secrets["clients"]["full"])
    node_b = docker(NODE_B)
    node_b.check_output("systemctl stop vllm")
    try:
        with pytest.raises(openai.InternalServerError) as refused:
            chat(full, MODEL_B)
        assert refused.value.status_code == 503
        assert refused.value.code == "service_unavailable"
        assert refused.value.response.headers["retry-after"] == "5"
        assert chat(full, MODEL_A).parse().model == MODEL_A
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = {r["svname"]: r["status"] for r in stats() if r["pxname"].startswith("be_")}
            if rows[NODE_B].startswith("DOWN"):
                break
            time.sleep(1)
        assert rows[NODE_B].startswith("DOWN") and rows[NODE_A] == "UP", rows
    finally:
        with contextlib.suppress(AssertionError):
            node_b.check_output("systemctl start vllm")
