"""The engine's fitted constant is the one its procedure (qwen_infra.sizing_fit) fits on the fit set, and
its error on the starts held out of the fit is within the regression bar (issue 12)."""

from qwen_infra.sizing import vllm_rules
from qwen_infra.sizing_cases import CASES, H200_CASES, KV_TOKENS_TOLERANCE
from qwen_infra.sizing_fit import GRID, GRID_STEP, fit, fit_report, kv_cases, kv_errors, split


def keys(cases):
    return [c.key for c in cases]


def test_the_split_holds_out_starts_the_fit_never_sees():
    fit_set, held_out = split()
    assert fit_set and held_out
    assert not set(keys(fit_set)) & set(keys(held_out))
    assert sorted(keys(fit_set) + keys(held_out)) == sorted(keys(kv_cases()))
    # Our own H200 starts, measured after the constant was chosen, and published logs are both held out.
    assert {c.key for c in H200_CASES if c.logged_kv_tokens} <= set(keys(held_out))
    assert set(keys(held_out)) & {c.key for c in CASES}


def test_the_engine_constant_is_the_value_fitted_on_the_fit_set():
    fitted = fit(split()[0])
    assert fitted == vllm_rules.PROFILE_WORKSPACE_BYTES, (
        f"PROFILE_WORKSPACE_BYTES is {vllm_rules.PROFILE_WORKSPACE_BYTES / GRID_STEP:g}/32 GiB, its fit "
        f"{fitted / GRID_STEP:g}/32 GiB: run `python -m qwen_infra.sizing_fit` and set the fitted value"
    )
    # ... and the release the engine models by default charges it.
    pinned = vllm_rules.release_rules(vllm_rules.DEFAULT_VLLM_RELEASE)
    assert pinned.non_torch_profile_bytes == vllm_rules.CUBLAS_WORKSPACE_BYTES + fitted


def test_the_fit_goes_through_the_engine():
    # More non-torch memory leaves less KV cache in every start: the candidate reaches the accounting.
    low, high = kv_errors(kv_cases(), GRID[0]), kv_errors(kv_cases(), GRID[-1])
    assert all(a > b for a, b in zip(low, high, strict=True))


def test_in_sample_and_held_out_errors_are_within_the_bar():
    report = fit_report()
    assert report.fitted_bytes == fit(split()[0])
    assert report.in_sample.cases == len(split()[0]) and report.held_out.cases == len(split()[1])
    assert report.in_sample.max_abs <= KV_TOKENS_TOLERANCE
    assert report.held_out.max_abs <= KV_TOKENS_TOLERANCE
