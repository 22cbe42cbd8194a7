"""The one server description (qwen_infra.server): settings are checked with the variable to change,
modelled settings are refused in extra_args, and the command line is built in one fixed way."""

import pytest
from qwen_infra.server import (
    FIELD_NAMES,
    ServerConfigError,
    command_line,
    from_settings,
    full_command,
    role_variables,
    sizing_plan,
)

BASE = {"model": "/srv/models/Qwen3-8B", "served_model_name": "Qwen3-8B"}


def test_role_variables_come_back_as_the_same_server():
    server = from_settings({**BASE, "tensor_parallel_size": 4, "enable_expert_parallel": True})
    variables = role_variables(server)
    assert set(variables) == {f"vllm_{name}" for name in FIELD_NAMES}
    again = from_settings({name.removeprefix("vllm_"): value for name, value in variables.items()})
    assert again == server


def test_values_arrive_as_yaml_and_jinja_make_them():
    server = from_settings(
        {**BASE, "port": "8001", "tensor_parallel_size": "2", "enforce_eager": "yes", "max_model_len": None}
    )
    assert (server.port, server.tensor_parallel_size, server.enforce_eager) == (8001, 2, True)
    assert server.max_model_len is None


def test_the_command_line_names_what_is_served_then_what_differs_from_vllms_defaults():
    server = from_settings(
        {**BASE, "tensor_parallel_size": 2, "pipeline_parallel_size": 1, "enable_expert_parallel": False,
         "kv_cache_dtype": "fp8", "gpu_memory_utilization": 0.9, "extra_args": ["--enable-prefix-caching"]}
    )  # fmt: skip
    assert command_line(server) == [
        "--model", "/srv/models/Qwen3-8B", "--served-model-name", "Qwen3-8B", "--host", "0.0.0.0",  # noqa: S104
        "--port", "8000", "--tensor-parallel-size", "2", "--kv-cache-dtype", "fp8",
        "--gpu-memory-utilization", "0.9", "--enable-prefix-caching",
    ]  # fmt: skip
    assert full_command(server, "/opt/vllm/venv/bin/python")[:3] == [
        "/opt/vllm/venv/bin/python",
        "-m",
        "vllm.entrypoints.openai.api_server",
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_model_lenght": 4096}, "max_model_lenght (did you mean max_model_len?)"),
        ({"port": 70000}, "vllm_port must be 1-65535"),
        ({"tensor_parallel_size": 0}, "vllm_tensor_parallel_size must be at least 1"),
        pytest.param(
            {"tensor_parallel_size": "two"}, "vllm_tensor_parallel_size must be a whole number", id="int-text"
        ),
        pytest.param(
            {"tensor_parallel_size": True}, "vllm_tensor_parallel_size must be a whole number", id="int-bool"
        ),
        ({"gpu_memory_utilization": 1.5}, "vllm_gpu_memory_utilization must be in (0, 1]"),
        pytest.param(
            {"gpu_memory_utilization": "nan"}, "vllm_gpu_memory_utilization must be in (0, 1]", id="nan"
        ),
        ({"kv_cache_dtype": "fp9"}, "vllm_kv_cache_dtype is 'fp9'; vLLM accepts auto, bfloat16, fp8"),
        ({"quantization": "bitsandbytes"}, "vllm_quantization is 'bitsandbytes'"),
        ({"enforce_eager": "maybe"}, "vllm_enforce_eager must be true or false"),
        ({"served_model_name": "my model"}, "must have no white space"),
        ({"max_num_seqs": 512, "max_num_batched_tokens": 256}, "is below vllm_max_num_seqs"),
        ({"extra_args": "--enable-prefix-caching"}, "must be a list, one argv word per item"),
        ({"extra_args": ["--tensor-parallel-size", "2"]}, "set vllm_tensor_parallel_size instead"),
        pytest.param(
            {"extra_args": ["--max_model_len=512"]},
            "set vllm_max_model_len instead",
            id="extra-flag-underscored-with-value",
        ),
        pytest.param({"extra_args": ["-q", "awq"]}, "set vllm_quantization instead", id="extra-short-flag"),
        ({"extra_args": ["--api-key", "secret"]}, "never its command line"),
        ({"model": ""}, "vllm_model is required"),
    ],
)
def test_unusable_settings_name_the_variable(settings, message):
    with pytest.raises(ServerConfigError) as error:
        from_settings({**BASE, **settings})
    assert message in str(error.value)


def test_the_sizing_plan_carries_every_modelled_setting():
    server = from_settings(
        {**BASE, "tensor_parallel_size": 4, "pipeline_parallel_size": 2, "data_parallel_size": 2,
         "enable_expert_parallel": True, "kv_cache_dtype": "fp8_e4m3", "max_model_len": 8192,
         "max_num_seqs": 64, "max_num_batched_tokens": 4096, "block_size": 32, "optimization_level": 0}
    )  # fmt: skip
    plan = sizing_plan(server, gpus_available=16)
    assert (plan.tensor_parallel_size, plan.pipeline_parallel_size, plan.data_parallel_size) == (4, 2, 2)
    assert plan.expert_parallel_size == 8
    assert plan.gpus == server.gpus == 16
    assert (plan.kv_cache_dtype, plan.max_model_len, plan.max_num_seqs) == ("fp8_e4m3", 8192, 64)
    assert (plan.max_num_batched_tokens, plan.block_size, plan.gpus_available) == (4096, 32, 16)
    assert plan.enforce_eager  # optimization level 0 captures no CUDA graphs
