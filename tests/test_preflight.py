"""The vram_check module's verdict (qwen_infra.preflight.check_server): the shape is checked on every
host, GPU or not; the cause comes first; the suggested fixes are true (re-sized by the engine)."""

import re

import pytest
from qwen_infra import lab_model
from qwen_infra.catalogs.gpus import GPUS
from qwen_infra.nvidia_smi import parse_nvidia_smi_xml
from qwen_infra.preflight import check_server, in_role_terms
from qwen_infra.server import from_settings, sizing_plan
from qwen_infra.sizing.architecture import architecture_from_config, catalog_config
from qwen_infra.sizing.devices import gpu_from_catalog
from qwen_infra.sizing.memory import size

from tests.paths import REPO

H100_XML = (REPO / "tests" / "fixtures" / "gpu" / "h100-80gb-hbm3" / "nvidia-smi-q.xml").read_text()


def model(name):
    return architecture_from_config(catalog_config(name), name=name)


def server(**settings):
    return from_settings({"model": "/srv/m", "served_model_name": "m", **settings})


def h100s(count):
    [gpu] = parse_nvidia_smi_xml(H100_XML)
    return [gpu] * count


def test_a_host_without_a_gpu_checks_the_shape_and_says_memory_was_not():
    verdict = check_server(model("Qwen/Qwen3-32B"), server(tensor_parallel_size=2, max_model_len=32768))
    assert (verdict["checked"], verdict["shape_checked"], verdict["fits"]) == (False, True, None)
    assert "GPU memory not checked" in verdict["msg"]


@pytest.mark.parametrize(
    ("name", "settings", "cause", "fix"),
    [
        ("Qwen/Qwen3-8B", {"max_model_len": 65536},
         "--max-model-len 65536 exceeds the model's 40960 positions", "fix: lower --max-model-len to 40960"),
        ("Qwen/Qwen3-32B", {"tensor_parallel_size": 3},
         "num_attention_heads (64) is not divisible by --tensor-parallel-size 3",
         "fix: lower --tensor-parallel-size to 2"),
        ("Qwen/Qwen3-30B-A3B",
         {"tensor_parallel_size": 2, "data_parallel_size": 3, "enable_expert_parallel": True},
         "128 experts cannot be spread evenly over 6 expert-parallel ranks", "fix: "),
        ("Qwen/Qwen3-32B", {"pipeline_parallel_size": 65},
         "--pipeline-parallel-size 65 exceeds the model's 64 layers", "fix: "),
    ],
)  # fmt: skip
def test_shape_problems_are_refused_without_a_gpu_cause_first(name, settings, cause, fix):
    verdict = check_server(model(name), server(**settings))
    assert verdict["fits"] is False
    assert verdict["msg"].startswith(f"{name} cannot be served as configured: {cause}")
    assert any(problem.startswith(fix) for problem in verdict["problems"])


def test_quantization_is_checked_against_the_checkpoint():
    verdict = check_server(model("Qwen/Qwen3-32B"), server(quantization="awq"))
    assert "vllm_quantization is awq but Qwen/Qwen3-32B is not a AWQ checkpoint" in verdict["msg"]
    verdict = check_server(model("Qwen/Qwen3-32B-AWQ"), server(quantization="fp8"))
    assert "is a awq checkpoint; --quantization fp8 contradicts it" in verdict["msg"]
    assert check_server(model("Qwen/Qwen3-32B-AWQ"), server(quantization="awq_marlin"))["fits"] is None
    assert check_server(model("Qwen/Qwen3-32B"), server(quantization="fp8"))["fits"] is None  # online FP8


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dtype": "bfloat16"}, "vllm_dtype is bfloat16, which a Turing GPU cannot compute: use float16"),
        ({"kv_cache_dtype": "fp8"}, "vllm_kv_cache_dtype fp8 needs an Ampere or newer GPU"),
        ({"quantization": "fp8"}, "FP8 weights need an Ampere or newer GPU"),
    ],
)
def test_the_gpu_generation_is_checked(settings, message):
    verdict = check_server(model("Qwen/Qwen3-8B"), server(**settings), architectures=["Turing"])
    assert message in verdict["msg"]
    assert check_server(model("Qwen/Qwen3-8B"), server(**settings), architectures=["Hopper"])["fits"] is None


def test_on_gpus_the_memory_is_sized_and_the_shape_still_comes_first():
    fits = check_server(
        model("Qwen/Qwen3-32B"), server(tensor_parallel_size=2, max_model_len=32768), gpus=h100s(2)
    )
    assert (fits["checked"], fits["fits"]) == (True, True)
    refused = check_server(model("Qwen/Qwen3-32B"), server(tensor_parallel_size=3), gpus=h100s(4))
    assert refused["msg"].startswith(
        "Qwen/Qwen3-32B cannot be served with these settings: num_attention_heads"
    )
    assert "GiB" not in refused["msg"].split(";")[0]
    too_few = check_server(model("Qwen/Qwen3-32B"), server(tensor_parallel_size=4), gpus=h100s(2))
    assert "tensor x pipeline x data parallel size = 4 GPUs, but 2 are available" in too_few["msg"]


def fixes_of(verdict):
    return [problem.removeprefix("fix: ") for problem in verdict["problems"] if problem.startswith("fix: ")]


@pytest.mark.parametrize(
    ("name", "settings", "gpus"),
    [
        ("Qwen/Qwen3-32B", {"max_model_len": 40960}, 1),
        ("Qwen/Qwen3-32B", {"tensor_parallel_size": 3}, 8),
        ("Qwen/Qwen3-235B-A22B-FP8", {"tensor_parallel_size": 8}, 8),
        ("Qwen/Qwen3-8B", {"max_model_len": 65536}, 1),
    ],
)
def test_every_suggested_fix_fits_when_applied(name, settings, gpus):
    """Each "fix:" a refusal names is applied alone and sized again: it must fit."""
    arch = model(name)
    verdict = check_server(arch, server(**settings), gpus=h100s(gpus))
    assert verdict["fits"] is False
    applied = 0
    for fix in fixes_of(verdict):
        changed = dict(settings)
        if match := re.match(r"lower --max-model-len to (\d+)", fix):
            changed["max_model_len"] = int(match.group(1))
        elif match := re.match(r"(raise|lower) --tensor-parallel-size to (\d+)", fix):
            changed["tensor_parallel_size"] = int(match.group(2))
        elif fix == "add --enable-expert-parallel":
            changed["enable_expert_parallel"] = True
        elif fix.startswith("use --kv-cache-dtype fp8"):
            changed["kv_cache_dtype"] = "fp8"
        elif match := re.match(r"(raise|lower) --gpu-memory-utilization to ([0-9.]+)", fix):
            changed["gpu_memory_utilization"] = float(match.group(2))
        else:
            continue
        result = size(arch, gpu_from_catalog("H100-80GB"), sizing_plan(server(**changed)))
        assert result.fits, (fix, result.problems)
        applied += 1
    assert applied


def test_a_reservation_without_room_to_serve_is_told_to_lower_the_utilization():
    """At the default 0.92 a 16 GiB GPU has no room for what vLLM holds outside its reservation."""
    arch, small = model("Qwen/Qwen3-0.6B"), 16 << 30
    verdict = check_server(arch, server(), gpu_memory_bytes=small)
    assert verdict["fits"] is False
    assert fixes_of(verdict) == ["lower --gpu-memory-utilization to 0.9 (room to serve)"]
    assert check_server(arch, server(gpu_memory_utilization=0.9), gpu_memory_bytes=small)["fits"]
    assert not check_server(arch, server(gpu_memory_utilization=0.91), gpu_memory_bytes=small)["fits"]


def test_no_single_change_fits_only_when_none_does():
    arch = model("Qwen/Qwen3-235B-A22B")
    verdict = check_server(arch, server(max_model_len=32768), gpu_memory_bytes=GPUS["L4"]["usable_bytes"])
    assert fixes_of(verdict) == [
        "no single change fits: combine the fixes above or use a larger GPU (see qwen-infra recommend)"
    ]


def test_messages_name_the_role_variables():
    assert in_role_terms("lower --max-model-len to 4096; add --enable-expert-parallel; --foo stays") == (
        "lower vllm_max_model_len to 4096; add vllm_enable_expert_parallel; --foo stays"
    )


@pytest.mark.parametrize(
    ("settings", "ours", "vllms"),
    [
        ({"max_model_len": 8192}, "--max-model-len 8192 exceeds the model's 4096 positions",
         "cpu-0.32.0-max-model-len-8192.log"),
        ({"tensor_parallel_size": 3}, "num_attention_heads (2) is not divisible by --tensor-parallel-size 3",
         "cpu-0.32.0-tensor-parallel-3.log"),
    ],
)  # fmt: skip
def test_what_the_preflight_refuses_on_a_cpu_host_vllm_refuses_too(settings, ours, vllms):
    """The lab model's shape (qwen_infra.lab_model); vLLM's own refusals captured from its CPU build."""
    arch = architecture_from_config({**lab_model.ARCH, "model_type": "qwen3"}, name="qwen3-tiny")
    verdict = check_server(arch, server(**settings))
    assert ours in verdict["msg"]
    assert "Value error" in (REPO / "tests" / "fixtures" / "vllm" / vllms).read_text()


# --- one server over several nodes: each host sizes its own share -----------------------------------

MULTI_NODE = {"tensor_parallel_size": 8, "pipeline_parallel_size": 2, "max_model_len": 32768,
              "nnodes": 2, "master_addr": "10.0.0.5"}  # fmt: skip


def test_each_node_of_a_group_needs_only_its_own_gpus_and_is_told_its_stage():
    arch = model("Qwen/Qwen3-235B-A22B")
    head = check_server(arch, server(**MULTI_NODE), gpus=h100s(8))
    worker = check_server(arch, server(**MULTI_NODE, node_rank=1), gpus=h100s(8))
    assert head["fits"] is worker["fits"] is True, head["msg"]
    # the group's verdict, the same on every node and the same as the whole plan sized at once
    whole = size(arch, gpu_from_catalog("H100-80GB"), sizing_plan(server(**MULTI_NODE)))
    assert head["kv_cache_tokens"] == worker["kv_cache_tokens"]
    assert abs(head["kv_cache_tokens"] - whole.kv_cache_tokens) <= 0.01 * whole.kv_cache_tokens
    assert (head["node"]["stages"], worker["node"]["stages"]) == ([0], [1])
    assert head["node"]["layers"] == [0, 47] and worker["node"]["layers"] == [47, 94]
    assert "node 1 holds pipeline stage(s) 1: layers 47-93" in worker["msg"]


def test_a_node_short_of_its_share_of_gpus_is_refused_before_the_unit_starts():
    refused = check_server(model("Qwen/Qwen3-235B-A22B"), server(**MULTI_NODE, node_rank=1), gpus=h100s(4))
    assert refused["fits"] is False
    assert "8 GPUs per node (16 over --nnodes 2), but 4 are available" in refused["msg"]


def test_a_tensor_parallel_group_across_nodes_is_refused():
    with pytest.raises(ValueError, match="would span nodes"):
        server(**{**MULTI_NODE, "tensor_parallel_size": 16, "pipeline_parallel_size": 1})
