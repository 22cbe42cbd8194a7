"""qwen-infra bench: its statistics agree with numpy's, workloads are read or refused clearly, and a
run against an endpoint that does not answer counts every request as failed instead of crashing.
(Runs against a real vLLM, through the front door, are in the lab's day-2 test.)"""

import json
import socket

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from qwen_infra import cli
from qwen_infra.bench.client import RequestRecord, request_body
from qwen_infra.bench.stats import percentile, summarize
from qwen_infra.bench.workload import RequestShape, WorkloadError, dataset_shapes, synthetic_shapes


@given(
    st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200), st.sampled_from([50, 90, 99])
)
def test_percentiles_agree_with_numpy(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_the_summary_counts_failures_by_status_and_times_only_successes():
    records = [
        RequestRecord(started=0.0, status=200, ttft=0.1, latency=1.0, output_tokens=10, token_gaps=[0.1] * 9),
        RequestRecord(started=0.5, status=200, ttft=0.3, latency=2.0, output_tokens=10, token_gaps=[0.2] * 9),
        RequestRecord(started=1.0, status=429, error="over the limit", latency=0.01),
        RequestRecord(started=1.5, status=0, error="ConnectError", latency=0.01),
    ]
    summary = summarize(records, wall_s=4.0)
    assert summary["requests"] == {
        "sent": 4, "succeeded": 2, "failed": 2, "failed_by_status": {"429": 1, "no response": 1},
    }  # fmt: skip
    assert summary["time_to_first_token"]["p50_ms"] == pytest.approx(200.0)
    assert summary["end_to_end_latency"]["p90_ms"] == pytest.approx(1900.0)
    assert summary["throughput"]["output_tokens_per_s"] == pytest.approx(5.0)


def test_requests_ask_for_a_fixed_length_and_the_usage():
    body = request_body("m", RequestShape("hello", 32, 1), chat=True)
    assert (body["max_tokens"], body["ignore_eos"], body["stream"]) == (32, True, True)
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert request_body("m", RequestShape("hello", 32, 1), chat=False)["prompt"] == "hello"


def test_synthetic_prompts_differ_and_datasets_are_replayed(tmp_path):
    shapes = synthetic_shapes(16, 8)
    first, second = next(shapes), next(shapes)
    assert first.prompt != second.prompt and first.output_tokens == 8
    dataset = tmp_path / "prompts.jsonl"
    dataset.write_text(
        json.dumps({"prompt": "a b c", "output_tokens": 4}) + "\n" + json.dumps({"prompt": "d"}) + "\n"
    )
    replayed = dataset_shapes(dataset, default_output_tokens=7)
    assert [next(replayed).output_tokens for _ in range(3)] == [4, 7, 4]


@pytest.mark.parametrize(
    ("line", "message"),
    [("not json", "must be a JSON object with a prompt"), ('{"text": "x"}', "must be a JSON object"),
     ('{"prompt": "x", "output_tokens": 0}', "output_tokens below 1")],
    ids=["not-json", "no-prompt", "output-tokens-below-1"],
)  # fmt: skip
def test_bad_datasets_are_refused_with_the_line(tmp_path, line, message):
    dataset = tmp_path / "bad.jsonl"
    dataset.write_text(line + "\n")
    with pytest.raises(WorkloadError, match=f"bad.jsonl:1: .*{message}"):
        next(dataset_shapes(dataset, 8))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_endpoint_that_does_not_answer_fails_every_request_and_exits_1(tmp_path, capsys):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    argv = ["bench", "--base-url", url, "--model", "m", "--requests", "6", "--concurrency", "2"]
    assert cli.main([*argv, "--json", "--no-progress", "--output", str(tmp_path / "run.json")]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["requests"] == {
        "sent": 6,
        "succeeded": 0,
        "failed": 6,
        "failed_by_status": {"no response": 6},
    }
    assert len(json.loads((tmp_path / "run.json").read_text())["records"]) == 6


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--concurrency", "0"], "--concurrency must be 1-10000"), (["--rate", "nan"], "--rate must be"),
     (["--duration", "-1"], "--duration must be"), (["--output-tokens", "0"], "must be 1-1000000"),
     (["--dataset", "/no/such.jsonl"], "cannot read the dataset")],
)  # fmt: skip
def test_bad_arguments_exit_2(capsys, extra, message):
    assert cli.main(["bench", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", *extra]) == 2
    assert message in capsys.readouterr().err
