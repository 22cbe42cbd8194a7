"""The quantize role's script: its plan (refusals, fingerprint) and real AWQ / GPTQ runs on the tiny lab
model, whose output transformers loads through compressed-tensors and generates from."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from qwen_infra import lab_model
from qwen_infra.sizing.architecture import parse_quantization_config

from tests.paths import REPO

SCRIPT = REPO / "roles" / "quantize" / "files" / "quantize_model.py"
TOOL_VERSION = "0.14.0.1"
# Tiny lab model: every quantized layer's input is 128 (hidden, q heads x head_dim) or 256 (intermediate).
GROUP_SIZE = 64
SAMPLES = [
    "Qwen is a family of large language models.",
    "vLLM serves models through an OpenAI compatible API.",
    "GPU memory holds the weights and the paged key value cache.",
    "Ansible configures hosts; Pulumi provisions the cloud.",
]


def quantize(command: str, source: Path, output: Path, method: str, *extra: str) -> tuple[int, dict]:
    """Run the script as the role does, in a process of its own (llm-compressor keeps global state)."""
    argv = [sys.executable, str(SCRIPT), command, "--source", str(source), "--output", str(output)]
    argv += ["--method", method, "--tool-version", TOOL_VERSION, *extra]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


# transformers loads the output and generates one token, in a process of its own: torch's compiler refuses
# to start in a process where ansible-core has replaced `sys.intern` (ansible.module_utils' data tags do
# that on import), which other tests of the same pytest worker may have imported before this one.
LOAD_AND_GENERATE = """
import json, sys, transformers
model = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1])
tokenizer = transformers.AutoTokenizer.from_pretrained(sys.argv[1])
inputs = tokenizer("Qwen is a family of", return_tensors="pt")
generated = model.generate(**inputs, max_new_tokens=1, do_sample=False)
group_size = model.model.layers[0].mlp.down_proj.quantization_scheme.weights.group_size
prompt, generated = inputs["input_ids"].shape[1], generated.shape[1]
print(json.dumps({"group_size": group_size, "prompt": prompt, "generated": generated}))
"""


def load_and_generate(model: Path) -> dict:
    argv = [sys.executable, "-c", LOAD_AND_GENERATE, str(model)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quantize") / "qwen3-tiny"
    lab_model.make_model(out)
    return out


@pytest.fixture(scope="module")
def calibration(model) -> Path:
    path = model.parent / "calibration.jsonl"
    path.write_text("".join(json.dumps({"text": text * 4}) + "\n" for text in SAMPLES * 4))
    return path


def with_config(model: Path, tmp_path: Path, **changes) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    config = json.loads((copy / "config.json").read_text()) | changes
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def test_plan_of_the_tiny_model(model, calibration, tmp_path):
    rc, plan = quantize("plan", model, tmp_path / "out", "awq", "--calibration", str(calibration))
    assert rc == 0
    assert (plan["quantized"], plan["experts"], plan["group_size_problems"]) == (False, 0, [])
    assert plan["output_writable"] and not plan["up_to_date"]
    assert plan["ram_needed_bytes"] > plan["weight_bytes"] > 0


def test_group_size_that_does_not_divide_the_layers_is_refused(model, calibration, tmp_path):
    args = ("--group-size", "96", "--calibration", str(calibration))
    rc, plan = quantize("plan", model, tmp_path / "out", "gptq", *args)
    assert plan["group_size_problems"] == [
        "hidden_size (q/k/v, gate/up) = 128 is not a multiple of the group size 96",
        "heads x head_dim (o_proj) = 128 is not a multiple of the group size 96",
        "intermediate_size (down_proj) = 256 is not a multiple of the group size 96",
    ]
    rc, result = quantize("run", model, tmp_path / "out", "gptq", *args)
    assert rc == 2
    assert result["msg"].startswith("group size does not divide the layers")
    assert not (tmp_path / "out").exists()


def test_moe_model_is_refused_without_allow(model, calibration, tmp_path):
    moe = with_config(model, tmp_path, num_experts=128, num_experts_per_tok=8)
    rc, result = quantize("run", moe, tmp_path / "out", "awq", "--calibration", str(calibration))
    assert rc == 2
    assert "mixture-of-experts model (128 experts)" in result["msg"]
    assert "Qwen/Qwen3-235B-A22B-FP8" in result["msg"]


def test_missing_calibration_data_is_refused(model, tmp_path):
    for extra in ((), ("--calibration", str(tmp_path / "none.jsonl"))):
        rc, result = quantize("run", model, tmp_path / "out", "gptq", "--group-size", "64", *extra)
        assert rc == 2
        assert result["msg"].startswith("GPTQ needs calibration data")


def test_already_quantized_source_is_reported(model, tmp_path):
    quantized = with_config(model, tmp_path, quantization_config={"quant_method": "awq", "bits": 4})
    rc, plan = quantize("plan", quantized, tmp_path / "out", "awq")
    assert rc == 0
    assert plan["quantized"]


def test_fingerprint_follows_source_recipe_and_tool(model, calibration, tmp_path):
    base = ("--calibration", str(calibration), "--group-size", "64")
    prints = [
        quantize("plan", model, tmp_path / "out", "awq", *base)[1]["fingerprint"],
        quantize("plan", model, tmp_path / "out", "gptq", *base)[1]["fingerprint"],
        quantize("plan", model, tmp_path / "out", "awq", *base[:2], "--group-size", "32")[1]["fingerprint"],
        quantize("plan", with_config(model, tmp_path, rope_theta=1.0), tmp_path / "out", "awq", *base)[1][
            "fingerprint"
        ],
    ]
    assert len({json.dumps(p, sort_keys=True) for p in prints}) == len(prints)
    # model_fetch's completion marker stands for the source when it exists.
    (model / ".qwen-infra-complete.json").write_text('{"files": {}}')
    try:
        marked = quantize("plan", model, tmp_path / "out", "awq", *base)[1]["fingerprint"]
    finally:
        (model / ".qwen-infra-complete.json").unlink()
    assert marked["source"]["kind"] == "fetch-marker"


@pytest.mark.parametrize("method", ["awq", "gptq"])
def test_quantize_load_generate_and_rerun(model, calibration, tmp_path, method):
    output = tmp_path / f"qwen3-tiny-{method}"
    args = ("--calibration", str(calibration), "--group-size", str(GROUP_SIZE))
    rc, result = quantize("run", model, output, method, *args)
    assert rc == 0, result
    assert result["changed"]

    config = json.loads((output / "config.json").read_text())["quantization_config"]
    assert (config["quant_method"], config["format"]) == ("compressed-tensors", "pack-quantized")
    weights = config["config_groups"]["group_0"]["weights"]
    assert (weights["num_bits"], weights["group_size"], weights["symmetric"]) == (4, 64, method == "gptq")
    assert config["ignore"] == ["lm_head"]
    assert not output.with_name(output.name + ".partial").exists()
    # The vllm role's sizing preflight reads the result as vLLM will.
    sized = parse_quantization_config(json.loads((output / "config.json").read_text())["quantization_config"])
    assert (sized.method, sized.group_size, sized.zero_point) == ("w4a16", 64, method == "awq")

    loaded = load_and_generate(output)
    assert loaded["group_size"] == 64
    assert loaded["generated"] == loaded["prompt"] + 1

    # The fingerprint matches: the second run does nothing and says so.
    before = (output / "model.safetensors").stat().st_mtime_ns
    rc, again = quantize("run", model, output, method, *args)
    assert (rc, again["changed"]) == (0, False)
    assert (output / "model.safetensors").stat().st_mtime_ns == before
    assert quantize("plan", model, output, method, *args)[1]["up_to_date"]


def test_calibration_from_a_dataset_directory(model, tmp_path):
    data = tmp_path / "calibration-dataset"
    datasets.Dataset.from_dict({"text": [text * 4 for text in SAMPLES]}).save_to_disk(str(data))
    rc, result = quantize(
        "run", model, tmp_path / "out", "gptq", "--group-size", "64", "--calibration", str(data)
    )
    assert rc == 0, result
    assert result["changed"]
    assert (tmp_path / "out" / ".qwen-infra-quantize.json").is_file()


def test_output_directory_written_by_something_else_is_refused(model, calibration, tmp_path):
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    args = ("--group-size", "64", "--calibration", str(calibration))
    rc, result = quantize("run", model, foreign, "gptq", *args)
    assert rc == 2
    assert "was not written by this script" in result["msg"]
    assert (foreign / "notes.txt").read_text() == "keep me"
