"""The front door benchmark's statistics (tools/bench_front_door.py): the figures in the README come
from these functions."""

import pytest

from tools import bench_front_door as bench


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.99, 99), (1.0, 100), (0.01, 1), (0.0, 1)],
    ids=["a-rank-inside", "the-last-rank", "the-first-rank", "below-the-first-rank"],
)
def test_percentile_is_nearest_rank(fraction, expected):
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert bench.percentile(values, fraction) == expected


def test_p99_of_few_samples_is_the_largest():
    assert bench.percentile([0.3, 0.1, 0.2], 0.99) == 0.3


def test_summary_is_in_milliseconds():
    summary = bench.summary_ms([0.010, 0.020, 0.030, 1.0])
    assert summary == {"median_ms": 25.0, "p99_ms": 1000.0, "mean_ms": 265.0, "n": 4}


def test_requests_ask_for_exactly_the_tokens_measured():
    body = bench.request_body("m", 64, stream=True)
    assert [body[k] for k in ("max_tokens", "min_tokens", "ignore_eos", "stream")] == [64, 64, True, True]


def test_keys_come_from_the_environment_only(monkeypatch, capsys):
    monkeypatch.delenv("FRONT_DOOR_KEY", raising=False)
    monkeypatch.delenv("BACKEND_KEY", raising=False)
    assert bench.main(["--front-door", "https://lb", "--direct", "http://s:8000", "--model", "m"]) == 2
    assert "FRONT_DOOR_KEY" in capsys.readouterr().err
