"""Predicted vs logged: every published vLLM start-up in qwen_infra.sizing_cases, to the issue's bar
(weights per rank within 2 %, KV cache tokens within 10 %). Cases the engine cannot meet are xfail
(strict) with the reason, and reported in docs/sizing.md; tolerances are never loosened."""

import pytest
from qwen_infra.sizing_cases import CASES, KV_TOKENS_TOLERANCE, WEIGHTS_TOLERANCE, relative_error


def params(cases, *, kv=False):
    return [
        pytest.param(case, id=case.key, marks=pytest.mark.xfail(reason=case.kv_known_miss, strict=True))
        if kv and case.kv_known_miss
        else pytest.param(case, id=case.key)
        for case in cases
    ]


@pytest.mark.parametrize("case", params([c for c in CASES if c.logged_weights_gib]))
def test_weights_per_rank_within_2_percent(case):
    predicted = case.predict().weights_gib_per_rank
    assert abs(relative_error(predicted, case.logged_weights_gib)) <= WEIGHTS_TOLERANCE, (
        predicted,
        case.logged_weights_gib,
    )


@pytest.mark.parametrize("case", params([c for c in CASES if c.logged_kv_tokens], kv=True))
def test_kv_cache_tokens_within_10_percent(case):
    predicted = case.predict().kv_cache_tokens
    assert abs(relative_error(predicted, case.logged_kv_tokens)) <= KV_TOKENS_TOLERANCE, (
        predicted,
        case.logged_kv_tokens,
    )


@pytest.mark.parametrize("case", params(CASES))
def test_fits_as_vllm_decided(case):
    assert case.predict().fits is case.expect_fits


def test_there_are_at_least_six_kv_cases_and_all_cite_a_source():
    assert len([c for c in CASES if c.logged_kv_tokens and not c.kv_known_miss]) >= 6
    for case in CASES:
        assert case.source
        assert case.vllm_version
