"""Verify the monitoring stage from this machine and from the scenario's hosts: Prometheus scrapes every
target the inventory names (the vLLM stand-in only with its key), the rules are loaded, the key is
readable by Prometheus only, the exporters admit the monitoring host alone, and an alert fires and
resolves at the lab's receiver when the serving host's vLLM stops and starts again; Prometheus and
Alertmanager answer the monitoring host alone; every host's journal arrives at the monitoring host over
TLS, and the receiver admits the inventory's hosts only."""

import json
import socket
import subprocess
import time
import urllib.parse

import pytest
import testinfra

testinfra_hosts = ["molecule-mon-prom"]

NETWORK = "molecule-monitoring"
NODE, LB, PROM = "molecule-mon-node", "molecule-mon-lb", "molecule-mon-prom"
# What the inventory implies: node_exporter on all three, vLLM on the node, HAProxy's metrics and its TLS
# (through the blackbox exporter) on the load balancer, and Prometheus and Alertmanager themselves.
EXPECTED_TARGETS = {
    ("node", NODE), ("node", LB), ("node", PROM), ("vllm", NODE), ("haproxy", LB),
    ("front_door_tls", LB), ("prometheus", PROM), ("alertmanager", PROM),
}  # fmt: skip

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


def api(path, **query):
    """Prometheus's HTTP API at its private address, from the monitoring host itself (where an
    operator's SSH tunnel arrives: its firewall admits no one else)."""
    url = f"http://{PROM}:9090{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
    return json.loads(docker(PROM).check_output("python3 -c %s %s", FETCH, url))["data"]


FETCH = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=10).read().decode())"


def received():
    """Every notification the lab's receiver on the monitoring host recorded."""
    return json.loads(docker(PROM).check_output("python3 -c %s", RECEIVED))


RECEIVED = (
    "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9095/alerts').read().decode())"
)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"waited {timeout} s for {what}")


def targets():
    return {(t["labels"]["job"], t["labels"]["host"]): t for t in api("/api/v1/targets")["activeTargets"]}


def probe(source, target, port):
    return docker(source).check_output("python3 -c %s %s %s", PROBE, address(target), str(port))


def test_every_target_the_inventory_names_is_scraped_and_up():
    found = wait_for(
        lambda: (t := targets()) and all(x["health"] == "up" for x in t.values()) and t,
        90, "every target up",
    )  # fmt: skip
    assert set(found) == EXPECTED_TARGETS
    # vLLM is scraped at the address it listens on, the exporters at each host's private address.
    assert found[("vllm", NODE)]["scrapeUrl"] == f"http://{NODE}:8000/metrics"
    assert found[("node", LB)]["scrapeUrl"] == f"http://{LB}:9100/metrics"
    assert found[("haproxy", LB)]["scrapeUrl"] == f"http://{LB}:8405/metrics"


def test_vllm_and_haproxy_metrics_arrive_with_their_labels():
    kv = api("/api/v1/query", query="vllm:kv_cache_usage_perc")["result"]
    assert [(r["metric"]["host"], r["metric"]["model_name"]) for r in kv] == [(NODE, "qwen3-tiny")]
    active = api("/api/v1/query", query='haproxy_backend_active_servers{proxy=~"be_.+"}')["result"]
    assert [(r["metric"]["host"], r["value"][1]) for r in active] == [(LB, "1")]


def test_the_front_doors_certificate_is_verified_and_its_expiry_known():
    """The probe verifies the certificate against the scenario's CA (prepare.yml signs it for 825 days)."""
    success = api("/api/v1/query", query='probe_success{job="front_door_tls"}')["result"]
    assert [(r["metric"]["host"], r["value"][1]) for r in success] == [(LB, "1")]
    days = api(
        "/api/v1/query", query='(probe_ssl_earliest_cert_expiry{job="front_door_tls"} - time()) / 86400'
    )
    assert 800 < float(days["result"][0]["value"][1]) <= 825


def test_the_alert_rules_are_loaded_and_quiet():
    rules = [rule for group in api("/api/v1/rules")["groups"] for rule in group["rules"]]
    names = {rule["name"] for rule in rules}
    assert {
        "QwenVllmServerDown",
        "QwenExporterDown",
        "QwenFrontDoorNoHealthyServer",
        "QwenKvCacheNearlyFull",
    } <= names
    assert all(rule["health"] == "ok" for rule in rules)
    # Nothing pending or firing, and nothing was sent since the first install: the targets of the
    # package's default configuration (scraped at its first start) ended with the reload.
    assert api("/api/v1/alerts")["alerts"] == []
    assert received() == []


def test_alertmanager_is_up_and_prometheus_sends_to_it():
    assert api("/api/v1/alertmanagers")["activeAlertmanagers"] == [
        {"url": f"http://{PROM}:9093/api/v2/alerts"}
    ]
    prom = docker(PROM)
    assert prom.service("prometheus-alertmanager").is_running
    # One Alertmanager: its cluster (gossip) port is closed.
    assert ":9094" not in prom.check_output("ss -ltnu")


def test_the_key_is_readable_by_prometheus_only_and_nowhere_else():
    key = docker(NODE).check_output("cat /opt/standin/key")
    prom = docker(PROM)
    credentials = prom.file(f"/etc/prometheus/credentials/vllm-{NODE}")
    assert (credentials.user, credentials.group, credentials.mode) == ("root", "prometheus", 0o640)
    assert credentials.content_string == key
    for path in ("/etc/prometheus/prometheus.yml", "/etc/default/prometheus"):
        assert key not in prom.file(path).content_string
    assert key not in prom.check_output("ps -eo args")
    assert key not in prom.check_output("journalctl --no-pager -o cat")


def test_a_scrape_without_the_key_is_refused_by_the_standin():
    """The stand-in refuses a scrape without the key, so the vLLM target being up proves the key is sent."""
    assert probe(PROM, NODE, 8000) == "open"
    answer = docker(PROM).run(
        "python3 -c %s", f"import urllib.request; urllib.request.urlopen('http://{NODE}:8000/metrics')"
    )
    assert answer.rc != 0
    assert "401" in answer.stderr


@pytest.mark.parametrize(("target", "port"), [(NODE, 9100), (LB, 9100), (LB, 8405), (PROM, 9100)])
def test_only_the_monitoring_host_reaches_the_exporters(target, port):
    assert probe(PROM, target, port) == "open"
    for source in {NODE, LB} - {target}:
        assert probe(source, target, port) == "ConnectionRefusedError", f"{source} -> {target}:{port}"


@pytest.mark.parametrize("port", [9090, 9093])
def test_prometheus_and_alertmanager_admit_the_monitoring_host_alone(port):
    """They answer without authentication: no other host, and not this machine, reaches them."""
    assert probe(PROM, PROM, port) == "open"
    for source in (NODE, LB):
        assert probe(source, PROM, port) == "ConnectionRefusedError", f"{source} -> {PROM}:{port}"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address(PROM), port), timeout=5).close()


@pytest.mark.parametrize("host", [NODE, LB, PROM])
def test_node_exporter_listens_on_the_private_address_only(host):
    lines = docker(host).check_output("ss -ltnH 'sport = :9100'").splitlines()
    # Columns: state, receive queue, send queue, local address:port, peer address:port.
    assert [line.split()[3] for line in lines] == [f"{address(host)}:9100"]


def test_an_alert_fires_and_resolves_at_the_receiver_when_vllm_stops_and_starts():
    node = docker(NODE)
    before = len(received())
    node.check_output("systemctl stop vllm")
    try:
        fired = wait_for(
            lambda: [n for n in received()[before:] if n["status"] == "firing"
                     and any(a["labels"]["alertname"] == "QwenVllmServerDown" for a in n["alerts"])],
            120, "QwenVllmServerDown at the receiver",
        )  # fmt: skip
        alert = next(a for a in fired[0]["alerts"] if a["labels"]["alertname"] == "QwenVllmServerDown")
        assert alert["labels"]["host"] == NODE
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["summary"] == f"vLLM on {NODE} does not answer"
    finally:
        node.check_output("systemctl start vllm")
    wait_for(
        lambda: [n for n in received()[before:] if n["status"] == "resolved"
                 and any(a["labels"]["alertname"] == "QwenVllmServerDown" for a in n["alerts"])],
        120, "QwenVllmServerDown resolved at the receiver",
    )  # fmt: skip


# Runs on a host: a request to the journal receiver, over TLS verified against the journal CA or in
# plain HTTP, and the first line of the answer (or what ended it).
JOURNAL_PROBE = """
import socket, ssl, sys
host, port, tls = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "tls"
request = b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"
try:
    with socket.create_connection((host, port), timeout=10) as raw:
        if tls:
            context = ssl.create_default_context(cafile="/etc/qwen-infra/journal/ca.pem")
            raw = context.wrap_socket(raw, server_hostname=host)
        raw.sendall(request)
        answer = raw.recv(200)
    print(answer.split(b"\\r\\n")[0].decode(errors="replace") if answer else "closed")
except OSError as error:
    print(type(error).__name__)
"""


def remote_journal(*args):
    """Entries of the journals the monitoring host received, as JSON objects."""
    lines = docker(PROM).check_output(
        "journalctl --directory=/var/log/journal/remote --no-pager -o json " + " ".join(args)
    )
    return [json.loads(line) for line in lines.splitlines()]


@pytest.mark.parametrize("host", [NODE, LB])
def test_each_hosts_journal_arrives_at_the_monitoring_host_under_its_name(host):
    token = f"qwen-journal-test-{time.time_ns()}"
    docker(host).check_output(f"logger -t qwen-journal-test {token}")
    found = wait_for(
        lambda: [e for e in remote_journal("-t qwen-journal-test") if e["MESSAGE"] == token],
        60, f"{token} from {host} on {PROM}",
    )  # fmt: skip
    assert [e["_HOSTNAME"] for e in found] == [host]


def test_a_sender_keeps_trying_while_the_receiver_is_away_and_catches_up():
    """A sender started while the receiver is down (a host booting before the monitoring host) waits and
    tries again instead of giving up for good after systemd's start limit; what it logged meanwhile
    arrives once the receiver is back."""
    node, prom = docker(NODE), docker(PROM)
    prom.check_output("systemctl stop systemd-journal-remote.socket systemd-journal-remote.service")
    try:
        node.check_output("systemctl restart systemd-journal-upload.service")
        token = f"qwen-journal-away-{time.time_ns()}"
        node.check_output(f"logger -t qwen-journal-test {token}")
        # Debian's unit alone would have failed five times in its first second and stopped for good.
        sub_state = "systemctl show -P SubState systemd-journal-upload"
        wait_for(lambda: node.check_output(sub_state) in ("auto-restart", "failed"),
                 30, f"systemd-journal-upload on {NODE} to fail to send")  # fmt: skip
        time.sleep(2)
        state = node.check_output("systemctl show -P ActiveState systemd-journal-upload")
        assert state != "failed", f"systemd-journal-upload on {NODE} gave up while the receiver was away"
    finally:
        prom.check_output("systemctl start systemd-journal-remote.socket")
    found = wait_for(
        lambda: [e for e in remote_journal("-t qwen-journal-test") if e["MESSAGE"] == token],
        90, f"{token}, logged on {NODE} while {PROM} received nothing",
    )  # fmt: skip
    assert [e["_HOSTNAME"] for e in found] == [NODE]


def test_the_journal_receiver_speaks_tls_with_a_certificate_from_the_ca():
    """The CA check passes (a verification failure would be an SSLError), and plain HTTP gets no answer."""
    probe_journal = "python3 -c %s %s 19532 %s"
    assert docker(LB).check_output(probe_journal, JOURNAL_PROBE, PROM, "tls").startswith("HTTP/1.1 ")
    plain = docker(LB).check_output(probe_journal, JOURNAL_PROBE, PROM, "plain")
    assert not plain.startswith("HTTP/"), plain


def test_the_journal_receiver_listens_on_its_private_address_for_the_inventory_only():
    lines = docker(PROM).check_output("ss -ltnH 'sport = :19532'").splitlines()
    assert [line.split()[3] for line in lines] == [f"{address(PROM)}:19532"]
    # This machine is not in the inventory: the host firewall refuses it.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address(PROM), 19532), timeout=5).close()


@pytest.mark.parametrize(
    ("host", "service_user"),
    [(PROM, "systemd-journal-remote"), (NODE, "systemd-journal-upload"), (LB, "systemd-journal-upload")],
)
def test_each_hosts_journal_key_is_readable_by_its_service_alone(host, service_user):
    key = docker(host).file("/etc/qwen-infra/journal/host.key")
    assert (key.user, key.group, key.mode) == ("root", service_user, 0o640)


def test_the_received_journals_are_vacuumed_on_a_timer():
    prom = docker(PROM)
    assert prom.service("qwen-journal-remote-vacuum.timer").is_enabled
    assert prom.service("qwen-journal-remote-vacuum.timer").is_running
    prom.check_output("systemctl start qwen-journal-remote-vacuum.service")
    assert prom.check_output("systemctl show -P Result qwen-journal-remote-vacuum.service") == "success"
