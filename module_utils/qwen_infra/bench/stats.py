"""The run's numbers: percentiles, and the summary the table, JSON and comparison are made from."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from .client import RequestRecord

PERCENTILES = (50, 90, 99)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile with linear interpolation between ranks (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(values: list[float]) -> dict[str, float | None]:
    """Median, P90 and P99 (and the mean), in milliseconds."""
    result: dict[str, float | None] = {f"p{q}_ms": _ms(percentile(values, q)) for q in PERCENTILES}
    result["mean_ms"] = _ms(sum(values) / len(values)) if values else None
    return result


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def summarize(records: list[RequestRecord], wall_s: float) -> dict[str, Any]:
    """Counts by outcome, the latency distributions of the successful requests, and throughput."""
    ok = [r for r in records if r.ok]
    by_status = Counter(str(r.status) if r.status else "no response" for r in records if not r.ok)
    output_tokens = sum(r.output_tokens for r in ok)
    return {
        "requests": {
            "sent": len(records),
            "succeeded": len(ok),
            "failed": len(records) - len(ok),
            "failed_by_status": dict(sorted(by_status.items())),
        },
        "time_to_first_token": distribution([r.ttft for r in ok if r.ttft is not None]),
        "inter_token_latency": distribution([gap for r in ok for gap in r.token_gaps]),
        "end_to_end_latency": distribution([r.latency for r in ok if r.latency is not None]),
        "throughput": {
            "duration_s": round(wall_s, 2),
            "output_tokens": output_tokens,
            "output_tokens_per_s": round(output_tokens / wall_s, 2) if wall_s > 0 else None,
            "requests_per_s": round(len(ok) / wall_s, 3) if wall_s > 0 else None,
        },
    }
