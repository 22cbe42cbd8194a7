"""`qwen-infra size` and `qwen-infra recommend`: the fixed contract (options, --json keys, exit status)."""

import json

import pytest
from qwen_infra import cli

CONTRACT_KEYS = {
    "fits",
    "weights_gib_per_rank",
    "kv_cache_gib_per_rank",
    "kv_cache_tokens",
    "max_concurrency",
    "max_model_len_that_fits",
    "problems",
}


def run_json(capsys, argv):
    code = cli.main(argv)
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["size", "Qwen/Qwen3-8B"], 0),
        (["size", "Qwen/Qwen3-32B", "--tp", "2", "--gpu", "H100"], 0),
        (["size", "Qwen/Qwen3-32B"], 1),  # 40960 tokens do not fit next to 61 GiB of weights
        (["size", "Qwen/Qwen3-235B-A22B-FP8", "--tp", "8", "--gpu", "H200"], 1),  # FP8 experts need EP
        (["size", "Qwen/Qwen3-235B-A22B-FP8", "--tp", "8", "--gpu", "H200", "--enable-expert-parallel"], 0),
        (["size", "Qwen/Qwen3-32B-AWQ", "--gpu", "L40S", "--max-model-len", "16384"], 0),
        (["size", "Qwen/Qwen3-32B", "--quantization", "awq", "--gpu", "L40S", "--max-model-len", "16384"], 0),
        (["size", "Qwen/Qwen3-32B", "--gpu-memory-gib", "40", "--max-model-len", "4096"], 1),
        (["size", "Qwen/Qwen3-14B", "--gpu", "L40S", "--kv-cache-dtype", "fp8"], 0),
    ],
)
def test_size_exit_status(capsys, argv, code):
    got, data = run_json(capsys, [*argv, "--json"])
    assert got == code
    assert set(data) >= CONTRACT_KEYS
    assert data["fits"] is (code == 0)
    assert (data["problems"] == []) is (code == 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["size", "Qwen/Qwen9-1T"], "unknown model"),
        (["size", "Qwen/Qwen3-8B", "--gpu", "TPU-v9"], "unknown GPU"),
        (["size", "Qwen/Qwen3-8B", "--gpu-memory-utilization", "1.5"], "must be in (0, 1]"),
        # the server settings' lower bound (tests/test_server.py has only the upper one)
        pytest.param(
            ["size", "Qwen/Qwen3-8B", "--gpu-memory-utilization", "0"],
            "must be in (0, 1]",
            id="utilization-0",
        ),
        (["size", "Qwen/Qwen3-8B", "--tp", "-2"], "at least 1"),
        (["size", "Qwen/Qwen3-8B", "--max-model-len", "-1"], "positive"),
        (["size", "Qwen/Qwen3-8B", "--max-num-seqs", "0"], "positive"),
        (["size", "Qwen/Qwen3-8B", "--gpu-memory-gib", "-80"], "must be positive"),
        (["size", "Qwen/Qwen3-32B-AWQ", "--quantization", "fp8"], "contradicts"),
        (["recommend", "Qwen/Qwen3-8B", "--concurrency", "0"], "at least 1"),
        (["recommend", "nope/nope"], "unknown model"),
    ],
)
def test_unusable_arguments_exit_2_with_a_message(capsys, argv, message):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_argparse_level_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["size", "Qwen/Qwen3-8B", "--gpu", "H100", "--gpu-memory-gib", "80"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_size_table(capsys):
    assert cli.main(["size", "Qwen/Qwen3-32B", "--tp", "2", "--max-model-len", "32768"]) == 0
    out = capsys.readouterr().out
    assert "Qwen/Qwen3-32B (bf16) on 2 x H100-80GB" in out
    assert "KV cache tokens" in out
    assert "FITS" in out
    assert "-m vllm.entrypoints.openai.api_server --model Qwen/Qwen3-32B " in out
    assert " --tensor-parallel-size 2 --max-model-len 32768" in out


def test_size_table_names_fixes(capsys):
    assert cli.main(["size", "Qwen/Qwen3-32B"]) == 1
    out = capsys.readouterr().out
    assert "DOES NOT FIT" in out
    assert "fix: lower --max-model-len to" in out
    assert "fix: raise --tensor-parallel-size to 2" in out


def test_pipeline_stages_are_columns(capsys):
    assert cli.main(["size", "Qwen/Qwen3-235B-A22B", "--tp", "4", "--pp", "2", "--gpu", "H200"]) == 0
    assert "stage 1" in capsys.readouterr().out


def test_model_directory_with_config_and_safetensors(tmp_path, capsys):
    config = {
        "model_type": "qwen3",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 256,
        "tie_word_embeddings": True,
        "max_position_embeddings": 4096,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    code, data = run_json(capsys, ["size", str(tmp_path), "--gpu", "L4", "--json"])
    assert code == 0
    assert data["breakdown"]["weights_source"] == "config.json"
    assert data["max_model_len_that_fits"] == 4096

    header = json.dumps(
        {"model.embed_tokens.weight": {"dtype": "BF16", "shape": [256, 64], "data_offsets": [0, 32768]}}
    )
    raw = header.encode()
    (tmp_path / "model.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(32768))
    code, data = run_json(capsys, ["size", str(tmp_path), "--gpu", "L4", "--json"])
    assert code == 0
    assert data["breakdown"]["weights_source"] == "safetensors headers"


def test_recommend_json(capsys):
    code, data = run_json(
        capsys, ["recommend", "Qwen/Qwen3-32B", "--max-model-len", "32768", "--concurrency", "4", "--json"]
    )
    assert code == 0
    best = data["recommendation"]
    assert best == data["options"][0]
    assert best["max_concurrency"] >= 4
    command = best["command"]
    assert command[command.index("--max-model-len") + 1] == "32768"
    assert ("--tensor-parallel-size" in command) is (best["tensor_parallel_size"] > 1)
    assert [o["gpus"] for o in data["options"]] == sorted(o["gpus"] for o in data["options"])


def test_recommend_table_and_nothing_fits(capsys):
    assert cli.main(["recommend", "Qwen/Qwen3-8B", "--precision", "awq", "--gpu", "L4"]) == 0
    out = capsys.readouterr().out
    assert "recommended: 1 x L4" in out
    assert cli.main(["recommend", "Qwen/Qwen3-235B-A22B", "--gpu", "L4", "--max-gpus", "4"]) == 1
    assert "nothing in the catalog fits" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "serve"),
    [
        (["size", "Qwen3-32B", "--tp", "2"], "--model Qwen/Qwen3-32B --served-model-name Qwen3-32B "),
        (
            ["size", "Qwen/Qwen3-32B", "--quantization", "awq", "--gpu", "H200"],
            "--model Qwen/Qwen3-32B-AWQ ",
        ),
        (
            ["size", "Qwen/Qwen3-32B", "--quantization", "fp8", "--gpu", "H200"],
            "--served-model-name Qwen3-32B --host 0.0.0.0 --port 8000 --quantization fp8",
        ),
        (["recommend", "Qwen/Qwen3-8B", "--precision", "gptq"], "--model Qwen/Qwen3-8B-GPTQ-Int4 "),
    ],
)
def test_the_printed_command_serves_what_was_sized(capsys, argv, serve):
    assert cli.main(argv) == 0
    assert serve in capsys.readouterr().out


def test_command_prints_the_argv_a_unit_runs(capsys):
    argv = ["command", "/srv/models/Qwen3-32B", "--tp", "2", "--max-model-len", "32768", "--host", "10.0.0.5"]
    assert (
        cli.main(
            [*argv, "--extra-arg=--enable-prefix-caching", "--python", "/opt/vllm/venv/bin/python", "--json"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == [
        "/opt/vllm/venv/bin/python",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        "/srv/models/Qwen3-32B",
        "--served-model-name",
        "Qwen3-32B",
        "--host",
        "10.0.0.5",
        "--port",
        "8000",
        "--tensor-parallel-size",
        "2",
        "--max-model-len",
        "32768",
        "--enable-prefix-caching",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("--tensor-parallel-size=2", "set vllm_tensor_parallel_size instead"),
        ("-tp", "set vllm_tensor_parallel_size instead"),
        ("--enable_expert_parallel", "set vllm_enable_expert_parallel instead"),
        ("--api-key=secret", "never its command line"),
    ],
)
def test_command_refuses_modelled_settings_in_extra_args(capsys, extra, message):
    assert cli.main(["command", "/srv/models/m", f"--extra-arg={extra}"]) == 2
    assert message in capsys.readouterr().err


def test_size_models_the_release_it_is_given(capsys):
    argv = ["size", "Qwen/Qwen3-32B", "--gpu", "H200", "--max-model-len", "32768", "--json"]
    _, pinned = run_json(capsys, argv)
    _, old = run_json(capsys, [*argv, "--vllm-version", "0.26.0"])
    assert pinned["breakdown"]["vllm_version"] == "0.33"
    assert old["breakdown"]["vllm_version"] == "0.26"
    # 0.26 captures the dense model's graphs outside its budget: more KV cache, more memory beyond.
    assert old["kv_cache_tokens"] > pinned["kv_cache_tokens"]
    assert old["breakdown"]["outside_reservation_gib"] > pinned["breakdown"]["outside_reservation_gib"]
