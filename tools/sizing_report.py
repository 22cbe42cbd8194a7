"""Print the predicted-vs-logged table of docs/sizing.md from the regression cases.

    .venv/bin/python tools/sizing_report.py > /tmp/table.md

Every row is one published vLLM start-up (qwen_infra.sizing_cases); errors are (predicted - logged) /
logged. The bar (issue 3): weights per rank within 2 %, KV cache tokens within 10 %.
"""

from __future__ import annotations

import sys

from qwen_infra.sizing_cases import (
    CASES,
    H200_CASES,
    KV_TOKENS_TOLERANCE,
    WEIGHTS_TOLERANCE,
    Case,
    relative_error,
    with_release,
)
from qwen_infra.sizing_fit import fit_report, fit_report_markdown


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


def _pair(predicted: float, logged: float | None, fmt: str) -> str:
    if logged is None:
        return "-"
    return f"{predicted:{fmt}} / {logged:{fmt}} ({relative_error(predicted, logged):+.1%})"


def measured_rows() -> list[str]:
    """The H200 starts: the engine modelling the release that ran (0.26) against what vLLM logged, and
    the KV-token error of the engine modelling the role's pinned release instead."""
    lines = [
        "| case | vLLM | command (after `python3 -m vllm.entrypoints.openai.api_server --model DIR "
        "--served-model-name NAME --host 127.0.0.1 --port 8000`) "
        "| weights GiB | activation peak GiB | non-torch GiB | KV cache GiB | KV tokens: predicted / logged "
        "(error) | max concurrency: predicted / logged (error) | KV tokens as v0.33 | fits (vLLM) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in H200_CASES:
        result = case.predict()
        stage = result.breakdown["stages"][0]
        pinned = with_release(case, "0.33").predict()
        as_pinned = (
            f"{relative_error(pinned.kv_cache_tokens, case.logged_kv_tokens):+.1%}"
            if case.logged_kv_tokens
            else "-"
        )
        fits = f"{'yes' if result.fits else 'no'} ({'yes' if case.expect_fits else 'no, refused'})"
        command = " ".join(case.command[8:])  # after --model, --served-model-name, --host, --port
        lines.append(
            f"| {case.key} | {case.vllm_version} | `{command}` "
            f"| {_pair(result.weights_gib_per_rank, case.logged_weights_gib, '.2f')} "
            f"| {_pair(stage['activation_peak_gib'], case.logged_activation_gib, '.2f')} "
            f"| {_pair(stage['non_torch_gib'], case.logged_non_torch_gib, '.2f')} "
            f"| {_pair(result.kv_cache_gib_per_rank, case.logged_kv_gib, '.2f')} "
            f"| {_pair(result.kv_cache_tokens, case.logged_kv_tokens, ',')} "
            f"| {_pair(result.max_concurrency, case.logged_concurrency, '.2f')} | {as_pinned} | {fits} |"
        )
    return lines


def measured_report() -> str:
    """The markdown that docs/sizing.md carries between its measured_report markers."""
    return "\n".join(measured_rows())


def fitted_report() -> str:
    """The markdown that docs/sizing.md carries between its fit_report markers: the fitted constant's
    in-sample and held-out errors (qwen_infra.sizing_fit)."""
    return fit_report_markdown(fit_report())


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
    print()
    print(measured_report())
    print()
    print(fitted_report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
