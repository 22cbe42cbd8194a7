"""Print the predicted-vs-logged table of docs/sizing.md from the regression cases.

    .venv/bin/python tools/sizing_report.py > /tmp/table.md

Every row is one published vLLM start-up (qwen_infra.sizing_cases); errors are (predicted - logged) /
logged. The bar (issue 3): weights per rank within 2 %, KV cache tokens within 10 %.
"""

from __future__ import annotations

import sys

from qwen_infra.sizing_cases import CASES, KV_TOKENS_TOLERANCE, WEIGHTS_TOLERANCE, Case, relative_error


def _layout(case: Case) -> str:
    plan = case.plan
    parts = [f"TP{plan.get('tensor_parallel_size', 1)}"]
    if plan.get("pipeline_parallel_size", 1) > 1:
        parts.append(f"PP{plan['pipeline_parallel_size']}")
    if "gpu_memory_utilization" in plan:
        parts.append(f"util {plan['gpu_memory_utilization']:g}")
    if "max_model_len" in plan:
        parts.append(f"len {plan['max_model_len']}")
    if "max_num_batched_tokens" in plan:
        parts.append(f"batch {plan['max_num_batched_tokens']}/{plan.get('max_num_seqs', '-')}")
    return ", ".join(parts)


def _cell(predicted: float, logged: float | None, tolerance: float, fmt: str) -> tuple[str, bool | None]:
    if logged is None:
        return "-", None
    error = relative_error(predicted, logged)
    ok = abs(error) <= tolerance
    return f"{predicted:{fmt}} / {logged:{fmt}} ({error:+.1%})", ok


def rows() -> list[str]:
    lines = [
        "| case | model | GPU | vLLM | arguments | weights GiB/rank: predicted / logged (error) "
        "| KV tokens: predicted / logged (error) | fits (vLLM) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in CASES:
        result = case.predict()
        weights, weights_ok = _cell(
            result.weights_gib_per_rank, case.logged_weights_gib, WEIGHTS_TOLERANCE, ".2f"
        )
        tokens, tokens_ok = _cell(result.kv_cache_tokens, case.logged_kv_tokens, KV_TOKENS_TOLERANCE, ",")
        fits_ok = result.fits is case.expect_fits
        checks = [ok for ok in (weights_ok, tokens_ok, fits_ok) if ok is not None]
        verdict = "meets the bar" if all(checks) else "**misses** (see below)"
        model = case.model_label or str(case.model)
        gpu = case.gpu if isinstance(case.gpu, str) else case.gpu_label
        fits = f"{'yes' if result.fits else 'no'} ({'yes' if case.expect_fits else 'no'})"
        lines.append(
            f"| {case.key} | {model} | {gpu} | {case.vllm_version} | {_layout(case)} | {weights} | {tokens} "
            f"| {fits} | {verdict} |"
        )
    return lines


def sources() -> list[str]:
    return [f"- `{case.key}`: {case.source}" for case in CASES]


def misses() -> list[str]:
    return [f"- `{case.key}`: {case.kv_known_miss}" for case in CASES if case.kv_known_miss]


def report() -> str:
    """The markdown that docs/sizing.md carries between its sizing_report markers."""
    parts = [
        "\n".join(rows()),
        "Known misses (strict xfail in tests/test_sizing_regression.py):",
        "\n".join(misses()) or "- none",
        "Sources:",
        "\n".join(sources()),
    ]
    return "\n\n".join(parts)


def main() -> int:
    print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
