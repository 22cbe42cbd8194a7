"""No tracebacks: the qwen-infra command, infra/plan.py and the sizing entry points answer any value
with a result or a usage error (exit status 2), never an exception. Property-based (hypothesis)."""

import math

import plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qwen_infra import cli
from qwen_infra.sizing.architecture import resolve_model
from qwen_infra.sizing.devices import Device
from qwen_infra.sizing.errors import SizingError
from qwen_infra.sizing.layout import Plan
from qwen_infra.sizing.memory import size

NUMBERS = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-1", "1e309", "nan", "inf", "-inf", "", "x", "1_000", "0x10", " 8 "]),
    st.text(max_size=8),
)
NUMERIC_FLAGS = [
    "--tensor-parallel-size", "--pipeline-parallel-size", "--data-parallel-size", "--max-model-len",
    "--max-num-seqs", "--max-num-batched-tokens", "--gpu-memory-utilization", "--port",
]  # fmt: skip
MODELS = st.sampled_from(["Qwen/Qwen3-8B", "Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-32B-AWQ", "nope", ""])
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def answers(argv, main=cli.main) -> int:
    """The program's exit status, argparse's SystemExit included; any other exception fails the test."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


@PROPERTY
@given(model=MODELS, flags=st.lists(st.tuples(st.sampled_from(NUMERIC_FLAGS), NUMBERS), max_size=3))
def test_size_answers_every_value(capsys, model, flags):
    argv = ["size", model, *[part for pair in flags for part in pair], "--json"]
    assert answers(argv) in (0, 1, 2)
    capsys.readouterr()


@PROPERTY
@given(gib=NUMBERS)
def test_gpu_memory_answers_every_value(capsys, gib):
    assert answers(["size", "Qwen/Qwen3-8B", "--gpu-memory-gib", gib]) in (0, 1, 2)
    capsys.readouterr()


@PROPERTY
@given(
    max_len=NUMBERS,
    concurrency=NUMBERS,
    max_gpus=NUMBERS,
    gpu=st.sampled_from(["L4", "H200", "B300", ""]),
)
def test_recommend_answers_every_value(capsys, max_len, concurrency, max_gpus, gpu):
    argv = ["recommend", "Qwen/Qwen3-8B", "--max-model-len", max_len, "--concurrency", concurrency]
    assert answers([*argv, "--max-gpus", max_gpus, "--gpu", gpu, "--json"]) in (0, 1, 2)
    capsys.readouterr()


@PROPERTY
@given(flag=st.sampled_from(NUMERIC_FLAGS), value=NUMBERS, extra=st.text(max_size=12))
def test_command_answers_every_value(capsys, flag, value, extra):
    assert answers(["command", "/srv/m", flag, value, f"--extra-arg={extra}"]) in (0, 2)
    capsys.readouterr()


@PROPERTY
@given(stack=st.text(max_size=20))
def test_plan_answers_every_stack_name(capsys, stack):
    assert answers(["--stack", stack], main=plan.main) in (0, 1, 2)
    capsys.readouterr()


INTS = st.one_of(st.none(), st.integers(min_value=-5, max_value=10**9))
PLANS = st.builds(
    Plan,
    tensor_parallel_size=st.integers(min_value=-2, max_value=4096),
    pipeline_parallel_size=st.integers(min_value=-2, max_value=512),
    data_parallel_size=st.integers(min_value=-2, max_value=64),
    enable_expert_parallel=st.booleans(),
    max_model_len=INTS,
    max_num_seqs=INTS,
    max_num_batched_tokens=INTS,
    gpu_memory_utilization=st.floats(allow_nan=True, allow_infinity=True),
    kv_cache_dtype=st.sampled_from(["auto", "fp8", "bfloat16", "fp4", ""]),
)


@PROPERTY
@given(candidate=PLANS, usable=st.integers(min_value=-(2**40), max_value=2**50))
def test_the_engine_sizes_or_refuses_every_plan(candidate, usable):
    arch = resolve_model("Qwen/Qwen3-30B-A3B")[0]
    try:
        result = size(arch, Device("gpu", usable), candidate)
    except SizingError:
        return
    assert result.fits in (True, False)
    assert math.isfinite(result.max_concurrency)


def test_examples_of_values_that_once_escaped(capsys):
    """Specific values hypothesis found before they were handled (kept so they stay handled)."""
    for argv in (
        ["size", "Qwen/Qwen3-8B", "--gpu-memory-gib", "inf"],
        ["size", "Qwen/Qwen3-8B", "--gpu-memory-utilization", "nan"],
        ["recommend", "Qwen/Qwen3-8B", "--max-gpus", "100000000"],
    ):
        assert answers(argv) == 2, argv
    capsys.readouterr()
