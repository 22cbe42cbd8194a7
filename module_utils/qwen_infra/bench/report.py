"""The summary for people (a table), for programs (JSON), over time (a PNG plot), and next to the
sizing engine's prediction for the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .client import RequestRecord


def table(summary: dict[str, Any], target: str) -> str:
    req, tput = summary["requests"], summary["throughput"]
    failed = ", ".join(f"{status}: {count}" for status, count in req["failed_by_status"].items()) or "none"
    lines = [
        f"bench of {target}",
        f"  requests      sent {req['sent']}, succeeded {req['succeeded']}, "
        f"failed {req['failed']} ({failed})",
        f"  throughput    {_num(tput['output_tokens_per_s'])} output tokens/s, "
        f"{_num(tput['requests_per_s'])} requests/s over {tput['duration_s']} s",
        "",
        f"  {'latency (ms)':<26}{'median':>10}{'P90':>10}{'P99':>10}",
    ]
    for label, key in (
        ("time to first token", "time_to_first_token"),
        ("inter-token latency", "inter_token_latency"),
        ("end-to-end latency", "end_to_end_latency"),
    ):
        row = summary[key]
        lines.append(
            f"  {label:<26}{_num(row['p50_ms']):>10}{_num(row['p90_ms']):>10}{_num(row['p99_ms']):>10}"
        )
    if "prediction" in summary:
        p = summary["prediction"]
        lines += [
            "",
            f"  sizing engine ({p['model']} on {p['gpus']} x {p['gpu']}): {p['kv_cache_tokens']:,} KV "
            f"tokens, room for {p['concurrency_at_request_length']:g} requests of {p['request_tokens']:,} "
            f"tokens at once (this run kept {p['concurrency_used']} in flight)",
        ]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def plot(records: list[RequestRecord], path: Path, title: str) -> None:
    """Latency per request over time (successes as dots, failures as red crosses) and output
    throughput per second, on one shared time axis."""
    import matplotlib  # noqa: PLC0415 - a heavy import, only for --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, (latency_axis, throughput_axis) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    latency_axis.scatter([r.started for r in ok], [r.latency for r in ok], s=8, label="end-to-end")
    latency_axis.scatter([r.started for r in ok], [r.ttft for r in ok], s=8, label="time to first token")
    if failed:
        latency_axis.scatter(
            [r.started for r in failed], [r.latency or 0 for r in failed], marker="x", color="red",
            label=f"failed ({len(failed)})",
        )  # fmt: skip
    latency_axis.set_ylabel("seconds")
    latency_axis.legend(loc="upper left")
    latency_axis.set_title(title)
    end = max((r.finished for r in records), default=0.0)
    buckets = [0.0] * (int(end) + 1)
    for r in ok:
        buckets[min(int(r.finished), len(buckets) - 1)] += r.output_tokens
    throughput_axis.step(range(len(buckets)), buckets, where="post")
    for r in failed:
        throughput_axis.axvline(r.finished, color="red", alpha=0.3)
    throughput_axis.set_ylabel("output tokens / s")
    throughput_axis.set_xlabel("seconds since the start")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
