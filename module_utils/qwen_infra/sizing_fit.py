"""How the sizing engine's one fitted constant, PROFILE_WORKSPACE_BYTES (sizing/vllm_rules.py), is chosen:
fitted on part of the regression starts, tested on the rest (issue 12). The engine never imports this.

    PYTHONPATH=module_utils .venv/bin/python -m qwen_infra.sizing_fit

The starts are the KV-token regression cases (sizing_cases.CASES with a logged KV-token count and no
known miss) and the H200 starts (sizing_cases.H200_CASES). The split is by the vLLM release that logged
them: releases before HELD_OUT_FROM fit the constant, every later start is held out (the published
0.24-0.28 logs and our own H200 starts, measured after the constant was first chosen). Every start is
sized as the pinned release (DEFAULT_VLLM_RELEASE), whose non-torch memory carries the constant, with the
candidate value put into its rules. The fitted value is the grid point whose worst KV-token error over
the fit set is smallest (the bar is per start, every start within 10 %, so the fit keeps the worst fit
start as far inside it as it can; the smaller value on a tie). The report also gives what the mean
criteria would pick, for comparison. tests/test_sizing_fit.py holds the engine's constant to the fitted
value; docs/sizing.md reports the in-sample and held-out errors.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from .sizing.vllm_rules import (
    CUBLAS_WORKSPACE_BYTES,
    DEFAULT_VLLM_RELEASE,
    PROFILE_WORKSPACE_BYTES,
    release_rules,
)
from .sizing_cases import CASES, H200_CASES, H200_VLLM_VERSION, Case, relative_error
from .units import GIB

# The release from which vLLM subtracts its CUDA-graph estimate, as the pinned release does: the fit set
# is the older accounting, the held-out set the accounting the engine is used for.
HELD_OUT_FROM = (0, 21)
# 0 to 1 GiB in 1/32 GiB steps (the V0 profiler printed 0.34-0.44 GiB of non-torch memory in all).
GRID_STEP = GIB // 32
GRID = tuple(i * GRID_STEP for i in range(33))


def release_of(case: Case) -> tuple[int, int]:
    """(major, minor) of the first release a case's vllm_version names ("0.8-0.10 (...)" -> (0, 8))."""
    found = re.search(r"(\d+)\.(\d+)", case.vllm_version)
    if not found:
        raise ValueError(f"{case.key}: no vLLM release in {case.vllm_version!r}, so it cannot be split")
    return int(found[1]), int(found[2])


def kv_cases() -> list[Case]:
    """Every start with a logged KV-token count the engine is meant to meet (known misses are in neither
    set: they are reported, strict xfail, in tests/test_sizing_regression.py)."""
    return [c for c in (*CASES, *H200_CASES) if c.logged_kv_tokens and not c.kv_known_miss]


def split() -> tuple[list[Case], list[Case]]:
    """(fit set, held-out set)."""
    cases = kv_cases()
    return (
        [c for c in cases if release_of(c) < HELD_OUT_FROM],
        [c for c in cases if release_of(c) >= HELD_OUT_FROM],
    )


def kv_errors(cases: list[Case], workspace_bytes: int) -> list[float]:
    """KV-token errors, (predicted - logged) / logged, with PROFILE_WORKSPACE_BYTES = workspace_bytes."""
    rules = replace(
        release_rules(DEFAULT_VLLM_RELEASE), non_torch_profile_bytes=CUBLAS_WORKSPACE_BYTES + workspace_bytes
    )
    return [relative_error(case.predict(rules).kv_cache_tokens, case.logged_kv_tokens or 0) for case in cases]


@dataclass(frozen=True)
class Errors:
    cases: int
    mean: float
    mean_abs: float
    max_abs: float

    @classmethod
    def of(cls, errors: list[float]) -> Errors:
        return cls(
            len(errors),
            sum(errors) / len(errors),
            sum(abs(e) for e in errors) / len(errors),
            max(abs(e) for e in errors),
        )


# What a fit minimises over the fit set's KV-token errors: the first is the procedure, the others are
# reported for comparison.
CRITERIA: dict[str, Callable[[Errors], float]] = {
    "max abs": lambda e: e.max_abs,
    "mean abs": lambda e: e.mean_abs,
    "|mean|": lambda e: abs(e.mean),
}
CRITERION = "max abs"


def fit(cases: list[Case], criterion: str = CRITERION) -> int:
    """The grid value that minimises `criterion` over the KV-token errors of `cases`."""
    return min(GRID, key=lambda value: CRITERIA[criterion](Errors.of(kv_errors(cases, value))))


@dataclass(frozen=True)
class FitReport:
    fitted_bytes: int  # fitted on the fit set
    engine_bytes: int  # PROFILE_WORKSPACE_BYTES as the engine has it
    all_cases_bytes: int  # what fitting on every start, held-out ones included, would give
    by_criterion: dict[str, int]  # what each criterion would fit on the fit set
    in_sample: Errors  # the fit set, at the fitted value
    held_out: Errors  # the held-out set, at the fitted value
    # (name, errors, starts) of the in-sample set and of the held-out set's parts, at the fitted value
    rows: tuple[tuple[str, Errors, tuple[str, ...]], ...]


@cache  # the docs test and the fit test both read it; the cases do not change in a run
def fit_report() -> FitReport:
    fit_set, held_out = split()
    fitted = fit(fit_set)
    measured = {c.key for c in H200_CASES}
    since = f"v{HELD_OUT_FROM[0]}.{HELD_OUT_FROM[1]}"
    parts = (
        (f"in-sample (fit set): published, vLLM before {since}", fit_set),
        (f"held out: published, vLLM {since} on", [c for c in held_out if c.key not in measured]),
        (f"held out: our H200 starts (vLLM {H200_VLLM_VERSION})", [c for c in held_out if c.key in measured]),
    )
    return FitReport(
        fitted_bytes=fitted,
        engine_bytes=PROFILE_WORKSPACE_BYTES,
        all_cases_bytes=fit(fit_set + held_out),
        by_criterion={name: fit(fit_set, name) for name in CRITERIA},
        in_sample=Errors.of(kv_errors(fit_set, fitted)),
        held_out=Errors.of(kv_errors(held_out, fitted)),
        rows=tuple(
            (name, Errors.of(kv_errors(cases, fitted)), tuple(c.key for c in cases)) for name, cases in parts
        ),
    )


def fit_report_markdown(report: FitReport) -> str:
    """The markdown docs/sizing.md carries between its fit_report markers (tools/sizing_report.py)."""

    def row(name: str, errors: Errors, which: str) -> str:
        return (
            f"| {name} | {errors.cases} | {errors.mean:+.1%} | {errors.mean_abs:.1%} | {errors.max_abs:.1%} "
            f"| {which} |"
        )

    def listed(keys: tuple[str, ...]) -> str:
        return ", ".join(f"`{key}`" for key in keys)

    def gib(value: int) -> str:
        return f"{value / GIB:g} GiB ({value // GRID_STEP}/32)"

    others = ", ".join(
        f"{name} {gib(value)}" for name, value in report.by_criterion.items() if name != CRITERION
    )
    return "\n".join(
        [
            f"`PROFILE_WORKSPACE_BYTES` fitted on the fit set (criterion: {CRITERION}): "
            f"**{gib(report.fitted_bytes)}**; in the engine: {gib(report.engine_bytes)}. Fitted on every "
            f"start instead (held-out ones included): {gib(report.all_cases_bytes)}; on the fit set by the "
            f"other criteria: {others}.",
            "",
            f"KV-token errors at the fitted value, (predicted - logged) / logged, every start sized as "
            f"v{DEFAULT_VLLM_RELEASE}:",
            "",
            "| set | starts | mean | mean abs | max abs | which |",
            "|---|---|---|---|---|---|",
            row(report.rows[0][0], report.in_sample, listed(report.rows[0][2])),
            row("held out, all", report.held_out, "the two rows below"),
            *(row(name, errors, listed(keys)) for name, errors, keys in report.rows[1:]),
        ]
    )


def main() -> int:
    fit_set, held_out = split()
    print("GiB     fit set: mean / mean abs / max abs    held out: mean / mean abs / max abs")
    for value in GRID:
        a, b = Errors.of(kv_errors(fit_set, value)), Errors.of(kv_errors(held_out, value))
        print(
            f"{value / GIB:<7g} {a.mean:+7.2%} {a.mean_abs:6.2%} {a.max_abs:6.2%}"
            f"                {b.mean:+7.2%} {b.mean_abs:6.2%} {b.max_abs:6.2%}"
        )
    print()
    print(fit_report_markdown(fit_report()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
