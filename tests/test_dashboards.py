"""The Grafana dashboards (roles/grafana/files/dashboards): every query is PromQL that promtool accepts,
reads metrics real exporters serve, through the one data source the role provisions; and
tools/check_dashboards.py, which `make lab` runs against the lab's Prometheus after a load run, tells a
query with data from one without, against a real Prometheus."""

import json
import re
import shutil
import socket
import subprocess
import time

import pytest
import yaml

from tests.metric_captures import CAPTURES, DCGM_DEFAULT_COUNTERS, METRIC, metric_names
from tests.paths import REPO
from tests.role_template import render_role_template
from tools import check_dashboards

DASHBOARDS = sorted((REPO / "roles" / "grafana" / "files" / "dashboards").glob("*.json"))
RULES_TEMPLATE = REPO / "roles" / "prometheus_server" / "templates" / "qwen-infra.rules.yml.j2"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


def load(path):
    return json.loads(path.read_text())


def test_there_is_a_service_and_a_host_dashboard():
    assert {load(path)["uid"] for path in DASHBOARDS} == {"qwen-infra-service", "qwen-infra-host"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_panel_reads_the_provisioned_data_source(path, tmp_path):
    rendered = render_role_template("grafana", "datasource.yml.j2", tmp_path / "datasource.yml")
    (source,) = yaml.safe_load(rendered.read_text())["datasources"]
    panels = check_dashboards.all_panels(load(path))
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids repeat"
    for panel in panels:
        for item in [panel, *panel["targets"]]:
            assert item["datasource"] == {"type": source["type"], "uid": source["uid"]}, panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_query_is_promql_that_promtool_accepts(path, tmp_path):
    """Each query, with Grafana's variables as the checker sets them, as a recording rule."""
    assert PROMTOOL, "promtool is missing: apt-get install prometheus (make setup does)"
    queries = check_dashboards.panel_queries(load(path))
    assert queries
    rules = [
        {"record": f"dashboard:query_{n}", "expr": check_dashboards.instantiate(q.expr, "2m")}
        for n, q in enumerate(queries)
    ]
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": path.stem, "rules": rules}]}))
    done = subprocess.run(
        [PROMTOOL, "check", "rules", "queries.yml"], check=False, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_metric_a_panel_reads_is_served_by_a_real_exporter(path):
    served = (
        set().union(*(metric_names(capture) for capture in CAPTURES.values()))
        | DCGM_DEFAULT_COUNTERS
        | {"up"}
    )
    for query in check_dashboards.panel_queries(load(path)):
        names = set(METRIC.findall(query.expr))
        assert names, f"{query.name}: no metric found in {query.expr}"
        assert names - served == set(), query.name


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_variable_a_query_uses_is_defined(path):
    dashboard = load(path)
    defined = {variable["name"] for variable in dashboard["templating"]["list"]} | {"__rate_interval"}
    for query in check_dashboards.panel_queries(dashboard):
        assert set(check_dashboards.VARIABLE.findall(query.expr)) <= defined, query.name


def test_the_alerts_the_panels_name_exist():
    alerts = set(re.findall(r"^\s*- alert: (\w+)$", RULES_TEMPLATE.read_text(), re.MULTILINE))
    named = set()
    for path in DASHBOARDS:
        for panel in check_dashboards.all_panels(load(path)):
            named |= set(re.findall(r"\bQwen[A-Z]\w+", panel["description"]))
    assert named, "no panel says which alert watches it"
    assert named - alerts == set()


def test_a_nan_quantile_is_not_data():
    """A latency quantile over a window without requests is NaN: Prometheus answers, with no data."""
    nan = {"data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "NaN"]}]}}
    number = {"data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "0.25"]}]}}
    empty = {"data": {"resultType": "vector", "result": []}}
    assert [check_dashboards.has_data(answer) for answer in (nan, number, empty)] == [False, True, False]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus (Debian's, from `make setup`) on loopback, scraping itself every second."""
    assert PROMETHEUS, "prometheus is missing: apt-get install prometheus (make setup does)"
    directory = tmp_path_factory.mktemp("prometheus")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listen = f"127.0.0.1:{port}"
    scrape = {"job_name": "self", "static_configs": [{"targets": [listen]}]}
    config = {"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]}
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    server = subprocess.Popen(
        [PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}",
         f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address={listen}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://{listen}"
    try:
        deadline = time.monotonic() + 30
        while not check_dashboards.has_data(ask(url, 'up{job="self"}')):
            assert server.poll() is None and time.monotonic() < deadline, "Prometheus did not start scraping"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def ask(url, expr):
    try:
        return check_dashboards.query(url, expr)
    except OSError:
        return {}


def dashboard_file(tmp_path, *exprs):
    panels = [
        {"id": n, "title": f"panel {n}", "targets": [{"refId": "A", "expr": e}]} for n, e in enumerate(exprs)
    ]
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps({"title": "test", "panels": panels}))
    return path


def test_the_checker_passes_queries_with_data(prometheus, tmp_path, capsys):
    path = dashboard_file(
        tmp_path, 'up{job="self"}', "rate(prometheus_http_requests_total[$__rate_interval])"
    )
    assert check_dashboards.main(["--prometheus", prometheus, "--timeout", "20", str(path)]) == 0
    assert "2 of 2 queries returned data" in capsys.readouterr().out


def test_the_checker_fails_a_query_without_data(prometheus, tmp_path, capsys):
    path = dashboard_file(tmp_path, 'up{job="self"}', "rate(vllm:generation_tokens_total[$__rate_interval])")
    assert check_dashboards.main(["--prometheus", prometheus, "--timeout", "0", str(path)]) == 1
    out = capsys.readouterr().out
    assert "NO DATA  test / panel 1 / A: rate(vllm:generation_tokens_total[2m])" in out


def test_the_checker_lists_what_it_skips(prometheus, tmp_path, capsys):
    path = dashboard_file(tmp_path, 'up{job="self"}', "DCGM_FI_DEV_GPU_UTIL")
    args = ["--prometheus", prometheus, "--timeout", "0", "--skip-metric-prefix", "DCGM_", str(path)]
    assert check_dashboards.main(args) == 0
    out = capsys.readouterr().out
    assert "skipped  test / panel 1 / A (reads DCGM_)" in out
    assert "1 of 1 queries returned data; 1 skipped" in out


def test_the_checker_reports_a_query_prometheus_refuses(prometheus, tmp_path, capsys):
    path = dashboard_file(tmp_path, "rate(up[)")
    assert check_dashboards.main(["--prometheus", prometheus, "--timeout", "0", str(path)]) == 1
    assert "REFUSED  test / panel 0 / A" in capsys.readouterr().err


def test_the_checker_says_when_prometheus_is_unreachable(tmp_path, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    assert (
        check_dashboards.main(["--prometheus", closed, "--timeout", "0", str(dashboard_file(tmp_path, "up"))])
        == 2
    )
    assert f"cannot reach Prometheus at {closed}" in capsys.readouterr().err
