#!/usr/bin/env python3
"""Run every panel query of the Grafana dashboards against a Prometheus and require data from each.

Standard library only: playbooks/check_dashboards.yml runs it on the monitoring host (the one host
allowed to reach Prometheus) after a load run through the front door.

    python3 check_dashboards.py --prometheus http://10.0.1.30:9090 DASHBOARD.json [...] \\
        [--skip-metric-prefix DCGM_] [--rate-interval 2m] [--timeout 60]

A query has data when Prometheus answers it with at least one series whose value is a number (a rate
over a window without traffic makes a latency quantile NaN: no data). Grafana's variables become what
its "All" would select (`.+`), `$__rate_interval` the given window. Queries without data are asked
again until --timeout (the next scrape may bring it). Queries reading a metric with a skipped prefix
(DCGM_ where the inventory has no GPU hosts) are listed as skipped. Exit status: 0 every query had
data, 1 some had none, 2 bad arguments or Prometheus unreachable.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# `$name` or `${name}` (Grafana's two spellings); `$__rate_interval` is handled first.
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def all_panels(dashboard: dict) -> list[dict]:
    """Every panel, rows' nested panels included."""
    found = []
    waiting = list(dashboard.get("panels", []))
    while waiting:
        panel = waiting.pop(0)
        waiting.extend(panel.get("panels", []))
        found.append(panel)
    return found


def panel_queries(dashboard: dict) -> list[PanelQuery]:
    """Every Prometheus query of every panel."""
    title = dashboard.get("title", dashboard.get("uid", "?"))
    return [
        PanelQuery(title, panel.get("title", "?"), target.get("refId", "?"), target["expr"])
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def instantiate(expr: str, rate_interval: str) -> str:
    """The query as Grafana sends it with every variable on "All"."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("${__rate_interval}", rate_interval)
    return VARIABLE.sub(".+", expr)


def has_data(answer: dict) -> bool:
    """A vector or matrix answer with at least one numeric (not NaN) value."""
    data = answer.get("data", {})
    values = []
    for series in data.get("result", []) if data.get("resultType") in ("vector", "matrix") else []:
        values += [series["value"]] if "value" in series else series.get("values", [])
    if data.get("resultType") == "scalar":
        values = [data["result"]]
    return any(not math.isnan(float(value)) for _, value in values)


def query(prometheus: str, expr: str) -> dict:
    url = f"{prometheus.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the URL is the operator's)
        return json.load(response)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus's base URL (http://host:9090)")
    parser.add_argument("dashboards", nargs="+", type=Path, help="Grafana dashboard JSON files")
    parser.add_argument("--rate-interval", default="2m", help="what $__rate_interval becomes (default 2m)")
    parser.add_argument(
        "--skip-metric-prefix", action="append", default=[], help="skip queries reading these"
    )
    parser.add_argument("--timeout", type=float, default=60, help="seconds to keep asking for missing data")
    args = parser.parse_args(argv)

    queries = []
    for path in args.dashboards:
        try:
            queries += panel_queries(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            print(f"cannot read dashboard {path}: {error}", file=sys.stderr)
            return 2
    skipped = [
        q for q in queries if any(re.search(rf"\b{re.escape(p)}", q.expr) for p in args.skip_metric_prefix)
    ]
    waiting = [q for q in queries if q not in skipped]
    deadline = time.monotonic() + args.timeout
    while True:
        missing = []
        for panel_query in waiting:
            try:
                answer = query(args.prometheus, instantiate(panel_query.expr, args.rate_interval))
            except urllib.error.HTTPError as error:  # Prometheus refused the query itself
                print(
                    f"REFUSED  {panel_query.name}: {error.read().decode(errors='replace')}", file=sys.stderr
                )
                return 1
            except OSError as error:
                print(f"cannot reach Prometheus at {args.prometheus}: {error}", file=sys.stderr)
                return 2
            if has_data(answer):
                print(f"data     {panel_query.name}")
            else:
                missing.append(panel_query)
        if not missing or time.monotonic() >= deadline:
            break
        waiting = missing
        time.sleep(5)
    for panel_query in skipped:
        print(f"skipped  {panel_query.name} (reads {', '.join(args.skip_metric_prefix)})")
    for panel_query in missing:
        print(f"NO DATA  {panel_query.name}: {instantiate(panel_query.expr, args.rate_interval)}")
    checked = len(queries) - len(skipped)
    print(f"{checked - len(missing)} of {checked} queries returned data; {len(skipped)} skipped")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
