"""Readiness verdicts: wait while loading, fail fast on a dead or restarted unit, ready on real answers."""

import pytest
from qwen_infra import service_readiness as ready

from tests.paths import REPO

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
        # no answer fails here, where /v1/models already answered (models_verdict waits on it)
        pytest.param(None, None, ready.FAILED, id="no-answer"),
    ],
)
def test_completion_verdict(status, body, verdict):
    assert ready.completion_verdict(status, body)[0] == verdict


VLLM_FAILURES = REPO / "tests" / "fixtures" / "vllm"


@pytest.mark.parametrize(
    ("log", "cause"),
    [
        (
            "cpu-0.32.0-max-model-len-8192.log",
            "User-specified max_model_len (8192) is greater than the derived",
        ),
        (
            "cpu-0.32.0-tensor-parallel-3.log",
            "Total number of attention heads (2) must be divisible by tensor",
        ),
    ],
)
def test_a_real_failed_start_is_explained_by_vllms_own_lines_first(log, cause):
    lines = (VLLM_FAILURES / log).read_text().splitlines()
    errors = ready.error_lines(lines)
    assert errors[0].startswith("pydantic_core._pydantic_core.ValidationError: 1 validation error")
    assert cause in errors[1]
    assert not any("WARNING" in line or line.lstrip().startswith("File ") for line in errors)
    report = ready.failure_report("the unit failed (exit-code)", lines).splitlines()
    assert report[0] == "the unit failed (exit-code)"
    assert report.index("Error lines of this start:") < report.index("Last lines of this start:")
    assert cause in "\n".join(report[: report.index("Last lines of this start:")])


def test_vllm_error_records_behind_a_process_prefix_are_picked():
    lines = [
        "(EngineCore_DP0 pid=42) INFO 12-02 10:00:00 [core.py:90] starting",
        "(EngineCore_DP0 pid=42) ERROR 12-02 10:00:01 [core.py:708] EngineCore failed to start.",
        "(EngineCore_DP0 pid=42) ERROR 12-02 10:00:01 [core.py:708] EngineCore failed to start.",
        "ValueError: To serve at least one request with the model's max seq len (40960), 10.00 GiB KV cache",
    ]
    assert ready.error_lines(lines) == [lines[1], lines[3]]


def test_the_wait_grows_with_the_weights_in_the_model_directory(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model-00001.safetensors").write_bytes(b"\0" * 3000)
    (model / "pytorch_model.bin").write_bytes(b"\0" * 1000)
    (model / "config.json").write_text("{}")  # not a weight file
    (model / ".hidden.safetensors").write_bytes(b"\0" * 500)  # hidden, as find leaves it out
    (model / "linked.safetensors").symlink_to(model / "model-00001.safetensors")  # a link, not a file
    (tmp_path / "current").symlink_to(model)
    assert ready.weights_bytes(str(tmp_path / "current")) == 4000
    assert ready.weights_bytes(str(tmp_path / "absent")) == 0
    assert ready.readiness_timeout(600, 20, 0) == 600
    assert ready.readiness_timeout(600, 20, 16 * ready.GIB + ready.GIB // 2) == 930


# Entries as `journalctl --output json` gives them; the untagged line is what journald writes when the
# process exited before journald looked its unit up (8 and 4 of 200, then 6 of 100 instant crashes on
# the lab: tools/journal_untagged_lines.sh).
THIS_START, EARLIER_START = "a" * 32, "b" * 32


def entry(message, pid, at_us, invocation=None):
    fields = {"MESSAGE": message, "_PID": pid, "__MONOTONIC_TIMESTAMP": str(at_us)}
    return fields | ({"_SYSTEMD_INVOCATION_ID": invocation} if invocation else {})


def test_a_start_keeps_its_untagged_last_line_and_no_line_of_another_start():
    entries = [
        entry("earlier start, same pid reused", "218", 1_000, None),
        entry("earlier start, tagged", "77", 2_000, EARLIER_START),
        entry("loading", "218", 5_000, THIS_START),
        entry("ValueError: the cause", "218", 6_000, None),
        entry("another process of the unit, untagged", "300", 6_500, None),
    ]
    assert ready.invocation_lines(entries, THIS_START, "218", since_us=4_000) == [
        "loading",
        "ValueError: the cause",
    ]


def test_without_a_main_pid_only_tagged_lines_count():
    entries = [entry("tagged", "218", 5_000, THIS_START), entry("untagged", "218", 6_000)]
    assert ready.invocation_lines(entries, THIS_START, "", since_us=0) == ["tagged"]


def test_a_message_journald_gives_as_bytes_is_decoded():
    coloured = list("\x1b[31mERROR\x1b[0m caf\u00e9".encode())
    assert ready.journal_text(coloured) == "\x1b[31mERROR\x1b[0m caf\u00e9"
    assert ready.journal_text(None) == ""
