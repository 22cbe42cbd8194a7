"""Readiness verdicts: wait while loading, fail fast on a dead or restarted unit, ready on real answers."""

import pytest
from qwen_infra import service_readiness as ready

SHOW_OUTPUT = "ActiveState=active\nResult=success\nNRestarts=0\n"


def test_parse_systemctl_show():
    expected = {"ActiveState": "active", "Result": "success", "NRestarts": "0"}
    assert ready.parse_systemctl_show(SHOW_OUTPUT) == expected


@pytest.mark.parametrize(
    ("unit", "restarts_at_start", "verdict", "words"),
    [
        ({"ActiveState": "active", "NRestarts": "0"}, 0, ready.WAIT, "active"),
        ({"ActiveState": "activating", "NRestarts": "2"}, 2, ready.WAIT, "activating"),
        ({"ActiveState": "failed", "Result": "exit-code", "NRestarts": "0"}, 0, ready.FAILED, "exit-code"),
        ({"ActiveState": "inactive", "NRestarts": "0"}, 0, ready.FAILED, "inactive"),
        ({"ActiveState": "activating", "NRestarts": "1"}, 0, ready.FAILED, "restarted it (1 times)"),
    ],
)
def test_unit_verdict(unit, restarts_at_start, verdict, words):
    got, reason = ready.unit_verdict(unit, restarts_at_start)
    assert got == verdict
    assert words in reason


@pytest.mark.parametrize(
    ("status", "body", "verdict", "words"),
    [
        (None, None, ready.WAIT, "no answer"),
        (503, None, ready.WAIT, "HTTP 503"),
        (401, None, ready.FAILED, "API key"),
        (200, {"data": [{"id": "other"}]}, ready.FAILED, "not 'qwen3-tiny'"),
        (200, {"data": [{"id": "qwen3-tiny"}]}, ready.READY, "listed"),
    ],
)
def test_models_verdict(status, body, verdict, words):
    got, reason = ready.models_verdict(status, body, "qwen3-tiny")
    assert got == verdict
    assert words in reason


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, {"choices": [{"text": "x"}]}, ready.READY),
        (200, {"choices": []}, ready.FAILED),
        (500, None, ready.FAILED),
        (None, None, ready.FAILED),
    ],
)
def test_completion_verdict(status, body, verdict):
    assert ready.completion_verdict(status, body)[0] == verdict
