"""The sizing engine: architectures, weights, KV cache, divisibility, fits and fixes, recommender."""

import json
import struct
from dataclasses import replace

import pytest
from qwen_infra.catalogs.gpus import GPUS
from qwen_infra.catalogs.models import AWQ_W4_G128, FP8_BLOCK_128, GPTQ_W4_G128, MODELS
from qwen_infra.sizing.architecture import (
    NO_QUANT,
    Architecture,
    QuantConfig,
    architecture_from_config,
    load_architecture,
    parse_quantization_config,
    resolve_model,
    with_quantization,
)
from qwen_infra.sizing.devices import Device, default_batch_budget, device_for, gpu_from_catalog
from qwen_infra.sizing.errors import SizingError
from qwen_infra.sizing.layout import Plan, divisibility_problems, pp_layer_ranges
from qwen_infra.sizing.memory import kv_bytes_per_token, size
from qwen_infra.sizing.recommend import candidate_layouts, recommend
from qwen_infra.sizing.suggest import size_with_fixes
from qwen_infra.sizing.weights import (
    COLUMN,
    KV,
    REPLICATED,
    ROW,
    VOCAB,
    checkpoint_tensors,
    classify_tensor,
    linear_bytes,
    model_tensors,
    read_safetensors_header,
    rope_cache_bytes,
    weights_per_stage,
)
from qwen_infra.units import GIB

from tests.test_cli_sizing import CONTRACT_KEYS  # the --json contract, stated once

H100 = gpu_from_catalog("H100-80GB")
H200 = gpu_from_catalog("H200-141GB")


def arch(name: str) -> Architecture:
    return resolve_model(name)[0]


def param_count(model: Architecture) -> float:
    """Parameters of an unquantized model, in billions (every tensor is 2 bytes per value)."""
    return sum(t.nbytes for t in model_tensors(model)) / 2 / 1e9


# --- catalogs -------------------------------------------------------------------------------------------

# Parameter counts published for each model (sizing.md §5); the catalog's shapes must reproduce them.
PUBLISHED_PARAMS = {
    "Qwen/Qwen3-0.6B": 0.60,
    "Qwen/Qwen3-1.7B": 1.72,
    "Qwen/Qwen3-4B": 4.02,
    "Qwen/Qwen3-8B": 8.19,
    "Qwen/Qwen3-14B": 14.77,
    "Qwen/Qwen3-32B": 32.76,
    "Qwen/Qwen3-30B-A3B": 30.5,
    "Qwen/Qwen3-235B-A22B": 235.0,
    "Qwen/Qwen2.5-7B-Instruct": 7.62,
    "Qwen/Qwen2.5-72B-Instruct": 72.7,
    "Qwen/QwQ-32B": 32.8,
}


@pytest.mark.parametrize(("name", "billions"), sorted(PUBLISHED_PARAMS.items()))
def test_catalog_shapes_reproduce_published_parameter_counts(name, billions):
    assert param_count(arch(name)) == pytest.approx(billions, rel=0.01)


def test_catalog_covers_sizing_reference_and_cites_sources():
    assert set(MODELS) == set(PUBLISHED_PARAMS)
    for config in MODELS.values():
        assert config["source"].startswith("https://huggingface.co/Qwen/")
    for name, gpu in GPUS.items():
        assert gpu["kind"] in {"measured", "derived"}, name
        assert gpu["usable_bytes"] < gpu["nvidia_smi_total_mib"] * (1 << 20), name
        assert gpu["source"] and gpu["date"], name
    assert GPUS["H100-80GB"]["usable_bytes"] == 85017493504
    assert GPUS["H200-141GB"]["usable_bytes"] == 150109880320


@pytest.mark.parametrize(
    ("name", "method", "intermediate"),
    [
        ("Qwen/Qwen3-32B-AWQ", "awq", 25600),
        ("Qwen3-32B-AWQ", "awq", 25600),
        ("qwen/qwen3-8b-fp8", "fp8", 12288),
        ("Qwen/Qwen2.5-72B-Instruct-AWQ", "awq", 29696),  # padded so TP=8 divides
        ("Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4", "gptq", 29696),
        ("Qwen/Qwen2.5-72B-Instruct", "none", 29568),
    ],
)
def test_catalog_names_and_quantized_variants(name, method, intermediate):
    model = arch(name)
    assert model.quantization.method == method
    assert model.intermediate_size == intermediate


def test_unknown_model_is_refused_with_the_choices():
    with pytest.raises(SizingError, match=r"unknown model 'Qwen/Qwen9-1T'.*Qwen/Qwen3-32B"):
        arch("Qwen/Qwen9-1T")


# --- config.json parsing --------------------------------------------------------------------------------

DENSE = {
    "model_type": "qwen3",
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 4,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "max_position_embeddings": 40960,
}
MOE = {
    "model_type": "qwen3_moe",
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 6,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "vocab_size": 151936,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [0],
    "max_position_embeddings": 40960,
}
# Small shapes for checkpoints written to disk.
TINY = {
    **DENSE,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 16,
    "vocab_size": 256,
}
TINY_MOE = {
    **MOE,
    **{key: TINY[key] for key in ("hidden_size", "num_attention_heads", "head_dim", "vocab_size")},
    "num_hidden_layers": 3,
    "moe_intermediate_size": 32,
    "num_experts": 8,
    "num_experts_per_tok": 2,
}
AWQ = {
    **DENSE,
    "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": True},
}


def write_config(directory, config):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_dense_config(tmp_path):
    model = load_architecture(write_config(tmp_path / "dense", DENSE))
    assert model.name == "dense"
    assert (model.num_layers, model.num_heads, model.num_kv_heads, model.head_dim) == (4, 16, 8, 128)
    assert model.tie_word_embeddings
    assert model.qk_norm
    assert not model.qkv_bias
    assert not model.is_moe
    assert model.quantization == NO_QUANT


def test_moe_config_with_dense_first_layer(tmp_path):
    model = load_architecture(write_config(tmp_path / "moe", MOE))
    assert model.is_moe
    assert model.moe_layers == (1, 2, 3, 4, 5)
    assert (model.num_experts, model.num_experts_per_tok, model.moe_intermediate_size) == (128, 8, 768)
    names = {t.name for t in model_tensors(model)}
    assert "model.layers.0.mlp.gate_proj.weight" in names  # the dense layer
    assert "model.layers.1.mlp.experts.127.down_proj.weight" in names
    assert "model.layers.1.mlp.gate.weight" in names  # router


def test_awq_config_reads_bits_and_group(tmp_path):
    model = load_architecture(write_config(tmp_path / "awq", AWQ))
    assert model.quantization == QuantConfig("awq", bits=4, group_size=64, zero_point=True)
    assert model.quantization.split_unit() == 64


@pytest.mark.parametrize(
    ("quantization_config", "expected"),
    [
        ({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": True}, ("gptq", 4, 128)),
        ({"quant_method": "fp8", "weight_block_size": [128, 128]}, ("fp8", 8, 0)),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {
                    "group_0": {
                        "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 32}
                    }
                },
            },
            ("w4a16", 4, 32),
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {
                    "group_0": {"weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}
                },
            },
            ("fp8", 8, 0),
        ),
    ],
)
def test_quantization_configs(quantization_config, expected):
    quant = parse_quantization_config(quantization_config)
    assert (quant.method, quant.bits, quant.group_size) == expected


def test_text_config_nesting_and_rope_scaling():
    config = {
        "architectures": ["SomeVLForConditionalGeneration"],
        "text_config": {
            **DENSE,
            "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
        },
    }
    model = architecture_from_config(config, name="vl")
    assert model.hidden_size == 1024
    assert model.max_model_len_limit == 131072


def test_qwen2_has_qkv_bias_and_derived_head_dim():
    model = arch("Qwen/Qwen2.5-7B-Instruct")
    assert model.qkv_bias
    assert model.head_dim == 3584 // 28
    assert any(t.name.endswith("k_proj.bias") for t in model_tensors(model))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"hidden_size": 1}, "lacks 'num_attention_heads'"),
        ({**DENSE, "quantization_config": {"quant_method": "bitsandbytes"}}, "unsupported quantization"),
    ],
)
def test_config_errors(config, message):
    with pytest.raises(SizingError, match=message):
        architecture_from_config(config)


def test_directory_errors(tmp_path):
    with pytest.raises(SizingError, match="does not exist"):
        load_architecture(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SizingError, match="not valid JSON"):
        load_architecture(tmp_path)


def test_quantization_flag():
    base = arch("Qwen/Qwen3-32B")
    assert with_quantization(base, None) is base
    assert with_quantization(base, "awq").quantization.is_int4
    online_fp8 = with_quantization(base, "fp8").quantization
    assert online_fp8.method == "fp8"
    assert online_fp8.fp8_block is None  # vLLM's online FP8 is per tensor
    with pytest.raises(SizingError, match="awq checkpoint; --quantization fp8"):
        with_quantization(arch("Qwen/Qwen3-32B-AWQ"), "fp8")
    with pytest.raises(SizingError, match="must be one of"):
        with_quantization(base, "int3")


# --- weights ----------------------------------------------------------------------------------------------


def test_quantized_linear_bytes():
    n = 4096 * 4096
    awq = linear_bytes(4096, 4096, parse_quantization_config(AWQ_W4_G128))
    # 4 bits + an fp16 scale + a 4-bit zero per group of 128 = 4.156 bits per weight (sizing.md §3).
    assert awq * 8 / n == pytest.approx(4.156, abs=0.001)
    gptq = linear_bytes(4096, 4096, parse_quantization_config(GPTQ_W4_G128))
    assert gptq == awq + 4096 * 4  # plus the int32 g_idx per input row
    fp8 = linear_bytes(4096, 4096, parse_quantization_config(FP8_BLOCK_128))
    assert fp8 == n + 32 * 32 * 4  # one fp32 scale per 128x128 block
    assert linear_bytes(4096, 4096, NO_QUANT) == 2 * n


def test_awq_keeps_embeddings_lm_head_norms_and_router_16_bit():
    model = arch("Qwen/Qwen3-30B-A3B-AWQ")
    by_name = {t.name: t for t in model_tensors(model)}
    h, v = model.hidden_size, model.vocab_size
    assert by_name["model.embed_tokens.weight"].nbytes == v * h * 2
    assert by_name["lm_head.weight"].nbytes == v * h * 2
    assert by_name["model.layers.0.mlp.gate.weight"].nbytes == 128 * h * 2
    assert by_name["model.layers.0.input_layernorm.weight"].nbytes == h * 2
    expert = by_name["model.layers.0.mlp.experts.0.gate_proj.weight"].nbytes
    assert expert < 768 * h * 2 / 3.5


@pytest.mark.parametrize(
    ("name", "tp", "low", "high"),
    [
        ("Qwen/Qwen3-32B", 1, 61.0, 61.1),  # vLLM logs 61.03-61.04 GiB
        ("Qwen/Qwen3-32B", 2, 30.5, 30.6),  # 30.59 GiB per rank logged at TP=2
        ("Qwen/Qwen3-32B-AWQ", 1, 17.5, 18.6),
        ("Qwen/Qwen3-32B-FP8", 1, 31.0, 32.5),
        ("Qwen/Qwen3-235B-A22B", 8, 54.0, 55.5),
        ("Qwen/Qwen2.5-72B-Instruct", 4, 33.8, 34.0),  # 33.98 GiB logged
        ("Qwen/Qwen3-0.6B", 1, 1.0, 1.2),
    ],
)
def test_weights_per_rank(name, tp, low, high):
    result = size(arch(name), H200, Plan(tensor_parallel_size=tp))
    assert low <= result.weights_gib_per_rank <= high


def test_vocab_and_heads_split_but_norms_replicated():
    model = arch("Qwen/Qwen3-8B")
    one, two = (
        weights_per_stage(model, model_tensors(model), Plan(tensor_parallel_size=t))[0] for t in (1, 2)
    )
    norms = sum(t.nbytes for t in model_tensors(model) if t.split == REPLICATED)
    rope = rope_cache_bytes(model)
    assert two == pytest.approx((one - norms - rope) / 2 + norms + rope, rel=1e-6)


def test_kv_projections_replicate_when_tp_exceeds_kv_heads():
    model = arch("Qwen/Qwen3-235B-A22B")  # 4 KV heads
    kv = sum(t.nbytes for t in model_tensors(model) if t.split == KV)
    four, eight = (
        weights_per_stage(model, model_tensors(model), Plan(tensor_parallel_size=t))[0] for t in (4, 8)
    )
    # Going from TP 4 to 8 halves everything split, but each rank still holds one whole KV head.
    kv_per_rank = kv / 4
    assert eight - kv_per_rank == pytest.approx((four - kv_per_rank) / 2, rel=0.01)


def test_pipeline_stages_split_layers_like_vllm():
    assert pp_layer_ranges(94, 4) == [(0, 23), (23, 47), (47, 71), (71, 94)]
    assert pp_layer_ranges(64, 2) == [(0, 32), (32, 64)]
    assert pp_layer_ranges(7, 3) == [(0, 2), (2, 5), (5, 7)]
    result = size(arch("Qwen/Qwen3-235B-A22B"), H200, Plan(tensor_parallel_size=4, pipeline_parallel_size=2))
    first, last = result.breakdown["stages"]
    assert first["layers"] == [0, 47]
    assert last["layers"] == [47, 94]
    assert result.fits


def test_tied_embeddings_are_loaded_twice_with_pipeline_parallelism():
    model = arch("Qwen/Qwen3-4B")  # tied
    tensors = model_tensors(model)
    embed = next(t.nbytes for t in tensors if t.part == "embed")
    one_stage = weights_per_stage(model, tensors, Plan())[0]
    two_stages = weights_per_stage(model, tensors, Plan(pipeline_parallel_size=2))
    assert sum(two_stages) == pytest.approx(one_stage + embed + rope_cache_bytes(model), rel=1e-6)


def test_expert_parallel_places_whole_experts():
    model = arch("Qwen/Qwen3-30B-A3B")
    tensors = model_tensors(model)
    tp_only = weights_per_stage(model, tensors, Plan(tensor_parallel_size=4))[0]
    with_ep = weights_per_stage(model, tensors, Plan(tensor_parallel_size=4, enable_expert_parallel=True))[0]
    assert with_ep == pytest.approx(tp_only, rel=0.001)  # same bytes, different cut


# --- safetensors ----------------------------------------------------------------------------------------

DTYPE_BYTES = {"BF16": 2, "I32": 4, "F16": 2}


def write_safetensors(path, tensors):
    """A real safetensors file: header of {name: dtype, shape, offsets}, then zero-filled data."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, (dtype, shape) in tensors.items():
        size = DTYPE_BYTES[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)  # sparse: the data region costs no disk


def checkpoint_from_config(directory, config):
    """A checkpoint whose tensors are exactly what model_tensors computes for config (bf16)."""
    write_config(directory, config)
    model = architecture_from_config(config)
    tensors = {t.name: ("BF16", [t.nbytes // 2]) for t in model_tensors(model)}
    names = sorted(tensors)
    write_safetensors(directory / "model-00001-of-00002.safetensors", {n: tensors[n] for n in names[::2]})
    write_safetensors(directory / "model-00002-of-00002.safetensors", {n: tensors[n] for n in names[1::2]})
    return directory


def test_safetensors_header_is_read_without_the_data(tmp_path):
    path = tmp_path / "one.safetensors"
    write_safetensors(path, {"a.weight": ("BF16", [3, 5]), "b.qweight": ("I32", [4, 2])})
    header = read_safetensors_header(path)
    assert header == {
        "a.weight": {"dtype": "BF16", "shape": [3, 5], "nbytes": 30},
        "b.qweight": {"dtype": "I32", "shape": [4, 2], "nbytes": 32},
    }


def test_corrupt_safetensors_is_an_error(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x01")
    with pytest.raises(SizingError, match="too short"):
        read_safetensors_header(path)
    path.write_bytes(struct.pack("<Q", 1 << 40))
    with pytest.raises(SizingError, match="not plausible"):
        read_safetensors_header(path)
    path.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    with pytest.raises(SizingError, match="not JSON"):
        read_safetensors_header(path)


@pytest.mark.parametrize("config", [TINY, TINY_MOE, {**TINY, "tie_word_embeddings": False}])
@pytest.mark.parametrize("tp", [1, 2, 4])
def test_checkpoint_bytes_match_the_computed_inventory(tmp_path, config, tp):
    directory = checkpoint_from_config(tmp_path / "ckpt", config)
    model = load_architecture(directory)
    from_files = checkpoint_tensors(directory)
    assert from_files is not None
    assert sum(t.nbytes for t in from_files) == sum(t.nbytes for t in model_tensors(model))
    plan = Plan(tensor_parallel_size=tp)
    assert weights_per_stage(model, from_files, plan) == weights_per_stage(model, model_tensors(model), plan)


@pytest.mark.parametrize(
    ("name", "split", "layer", "expert"),
    [
        ("model.embed_tokens.weight", VOCAB, None, None),
        ("lm_head.weight", VOCAB, None, None),
        ("model.norm.weight", REPLICATED, None, None),
        ("model.layers.3.self_attn.q_proj.qweight", COLUMN, 3, None),
        ("model.layers.3.self_attn.k_proj.scales", KV, 3, None),
        ("model.layers.3.self_attn.o_proj.qzeros", ROW, 3, None),
        ("model.layers.3.mlp.gate_proj.g_idx", REPLICATED, 3, None),
        ("model.layers.3.mlp.down_proj.g_idx", ROW, 3, None),
        ("model.layers.3.mlp.down_proj.bias", REPLICATED, 3, None),
        ("model.layers.7.mlp.experts.12.up_proj.weight", COLUMN, 7, 12),
        ("model.layers.7.mlp.experts.12.down_proj.weight_scale_inv", ROW, 7, 12),
        ("model.layers.7.mlp.gate.weight", REPLICATED, 7, None),
        ("model.layers.7.self_attn.k_norm.weight", REPLICATED, 7, None),
    ],
)
def test_tensor_names_are_classified(name, split, layer, expert):
    tensor = classify_tensor(name, [256, 256], 1000)
    assert (tensor.split, tensor.layer, tensor.expert) == (split, layer, expert)


def test_scalars_are_replicated_and_mtp_heads_skipped():
    assert classify_tensor("model.layers.0.mlp.down_proj.input_scale", [], 4).split == REPLICATED
    assert classify_tensor("mtp.layers.0.mlp.up_proj.weight", [8, 8], 128) is None


# --- KV cache -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tp", "kv_dtype", "per_token"),
    [
        pytest.param("Qwen/Qwen3-32B", 1, "auto", 2 * 64 * 8 * 128 * 2, id="whole"),  # 256 KiB
        pytest.param("Qwen/Qwen3-32B", 2, "auto", 2 * 64 * 4 * 128 * 2, id="split"),
        pytest.param("Qwen/Qwen3-32B", 1, "fp8", 2 * 64 * 8 * 128 * 1, id="fp8-one-byte"),
        # Qwen3-235B-A22B has 4 KV heads: TP=8 keeps one head per rank, each head stored twice.
        pytest.param("Qwen/Qwen3-235B-A22B", 4, "auto", 2 * 94 * 1 * 128 * 2, id="one-head-per-rank"),
        pytest.param("Qwen/Qwen3-235B-A22B", 8, "auto", 2 * 94 * 1 * 128 * 2, id="replicated"),
        pytest.param("Qwen/Qwen3-30B-A3B", 8, "fp8", 2 * 48 * 1 * 128 * 1, id="replicated-fp8"),
    ],
)
def test_kv_bytes_per_token_with_head_replication(name, tp, kv_dtype, per_token):
    model = arch(name)
    plan = Plan(tensor_parallel_size=tp, kv_cache_dtype=kv_dtype)
    assert kv_bytes_per_token(model, plan, model.num_layers) == per_token


def test_replicated_kv_heads_gain_no_kv_capacity_from_more_gpus():
    model = arch("Qwen/Qwen3-235B-A22B-FP8")
    four = size(model, H200, Plan(tensor_parallel_size=4))
    eight = size(model, H200, Plan(tensor_parallel_size=8, enable_expert_parallel=True))
    per_gpu = [r.breakdown["stages"][0]["kv_bytes_per_token"] for r in (four, eight)]
    assert per_gpu[0] == per_gpu[1]
    # More memory per GPU is free at TP=8, but the cluster-wide token count does not double.
    assert eight.kv_cache_tokens < 2 * four.kv_cache_tokens


def test_blocks_tokens_and_concurrency_are_consistent():
    result = size(arch("Qwen/Qwen3-8B"), H100, Plan(max_model_len=32768))
    stage = result.breakdown["stages"][0]
    assert result.kv_cache_tokens == stage["num_blocks"] * 16
    assert (
        stage["num_blocks"] * 16 * stage["kv_bytes_per_token"]
        <= stage["available_kv_gib"] * GIB + 16 * 147456
    )
    assert result.max_concurrency == pytest.approx(result.kv_cache_tokens / 32768, abs=0.01)
    assert result.max_model_len_that_fits == 40960  # the model's limit, not the cache's


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        pytest.param(H100, (8192, 1024), id="70-GiB-or-more"),
        # excluded by name (vLLM PR #17885), as nvidia-smi's names are too
        pytest.param(gpu_from_catalog("A100-80GB"), (2048, 256), id="A100-by-name"),
        pytest.param(gpu_from_catalog("L40S"), (2048, 256), id="under-70-GiB"),
        pytest.param(Device("70 GiB GPU", 70 * GIB), (8192, 1024), id="any-GPU-from-70-GiB"),
    ],
)
def test_default_batch_budget_follows_vllm(device, expected):
    assert default_batch_budget(device) == expected


def test_profiling_peak_grows_with_the_batch_budget():
    model = arch("Qwen/Qwen3-32B")
    small = size(model, H100, Plan(tensor_parallel_size=2, max_num_batched_tokens=2048, max_num_seqs=256))
    large = size(model, H100, Plan(tensor_parallel_size=2))
    assert large.kv_cache_tokens < small.kv_cache_tokens
    assert large.breakdown["stages"][0]["sampler_peak_gib"] > small.breakdown["stages"][0]["sampler_peak_gib"]


@pytest.mark.parametrize(
    ("device", "tp", "non_torch_gib"),
    [
        (H100, 1, 0.5),
        (H100, 2, 0.5 + 0.82),  # NCCL's buffers are allocated during profiling on NVLink nodes
        (gpu_from_catalog("L40S"), 2, 0.5),  # PCIe-only: no such charge seen
        (device_for("NVIDIA A100 80GB PCIe", 79 * GIB), 2, 0.5),
        (device_for("NVIDIA A100-SXM4-80GB", 79 * GIB), 2, 0.5 + 0.82),
        (device_for("Some Future GPU", 79 * GIB), 2, 0.5),
    ],
)
def test_nccl_is_charged_on_nvlink_gpus(device, tp, non_torch_gib):
    result = size(arch("Qwen/Qwen3-8B"), device, Plan(tensor_parallel_size=tp))
    assert result.breakdown["stages"][0]["non_torch_gib"] == pytest.approx(non_torch_gib, abs=0.002)


def test_enforce_eager_and_old_vllm_drop_the_cuda_graph_estimate():
    model = arch("Qwen/Qwen3-8B")
    graphs = [
        size(model, H100, plan).breakdown["stages"][0]["cudagraph_gib"]
        for plan in (Plan(), Plan(enforce_eager=True), Plan(cudagraph_in_budget=False))
    ]
    assert graphs[0] > 0
    assert graphs[1:] == [0, 0]


# --- divisibility ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "plan", "reason"),
    [
        ("Qwen/Qwen3-32B", Plan(tensor_parallel_size=3), "num_attention_heads (64) is not divisible"),
        ("Qwen/QwQ-32B", Plan(tensor_parallel_size=16), "spans more than one 8-GPU node"),
        ("Qwen/Qwen3-30B-A3B", Plan(tensor_parallel_size=3), "num_key_value_heads (4)"),
        (
            "Qwen/Qwen3-235B-A22B-FP8",
            Plan(tensor_parallel_size=8),
            "192 is not a multiple of the FP8 block 128",
        ),
        (
            "Qwen/Qwen3-235B-A22B-AWQ",
            Plan(tensor_parallel_size=8),
            "192 is not a multiple of the AWQ group",
        ),
        ("Qwen/Qwen3-8B", Plan(pipeline_parallel_size=40), "exceeds the model's 36 layers"),
        ("Qwen/Qwen3-8B", Plan(tensor_parallel_size=2, gpus_available=1), "2 GPUs, but 1 are available"),
        ("Qwen/Qwen3-30B-A3B", Plan(tensor_parallel_size=3, enable_expert_parallel=True), "128 experts"),
    ],
)
def test_layouts_vllm_refuses_are_refused_with_the_reason(name, plan, reason):
    result = size(arch(name), H200, plan)
    assert not result.fits
    assert any(reason in problem for problem in result.problems), result.problems


def test_a_pipeline_longer_than_the_model_is_refused_without_a_stage_per_size():
    # Found by tests/test_no_tracebacks.py: `qwen-infra size Qwen/Qwen3-30B-A3B --pipeline-parallel-size
    # 5451594` built 5,451,594 stages of arithmetic and ran for minutes before saying no.
    result = size(arch("Qwen/Qwen3-8B"), H200, Plan(pipeline_parallel_size=1000))
    assert not result.fits
    assert result.problems[0] == "--pipeline-parallel-size 1000 exceeds the model's 36 layers"
    assert len(result.breakdown["stages"]) == 36
    assert result.breakdown["plan"]["pipeline_parallel_size"] == 1000


def test_unpadded_qwen25_72b_cannot_be_awq_split_eight_ways():
    padded = arch("Qwen/Qwen2.5-72B-Instruct-AWQ")
    unpadded = with_quantization(arch("Qwen/Qwen2.5-72B-Instruct"), "awq")
    plan = Plan(tensor_parallel_size=8)
    assert not divisibility_problems(padded, plan)
    [problem] = divisibility_problems(unpadded, plan)
    assert "29568 / TP 8 = 3696 is not a multiple of the AWQ group size 128" in problem


@pytest.mark.parametrize(
    ("name", "plan"),
    [
        ("Qwen/Qwen3-235B-A22B-FP8", Plan(tensor_parallel_size=8, enable_expert_parallel=True)),
        ("Qwen/Qwen3-235B-A22B-FP8", Plan(tensor_parallel_size=4)),  # 1536 / 4 = 384: whole FP8 blocks
        ("Qwen/Qwen3-30B-A3B", Plan(tensor_parallel_size=8)),  # bf16 experts split freely
        ("Qwen/Qwen3-32B", Plan(tensor_parallel_size=2, pipeline_parallel_size=2)),
        ("Qwen/Qwen3-0.6B", Plan(tensor_parallel_size=8)),  # 8 KV heads, one per rank
    ],
)
def test_layouts_vllm_accepts(name, plan):
    assert divisibility_problems(arch(name), plan) == []


# --- fits, problems and fixes -----------------------------------------------------------------------------

FITS_TABLE = [
    ("Qwen/Qwen3-0.6B", "L4", 1, None, True),
    ("Qwen/Qwen3-8B", "L4", 1, None, False),  # 15.3 GiB weights, no room for 40960 tokens
    ("Qwen/Qwen3-8B", "L4", 1, 4096, True),
    ("Qwen/Qwen3-8B", "A10G", 2, None, True),
    ("Qwen/Qwen3-14B", "L40S", 1, 32768, True),
    ("Qwen/Qwen3-32B", "L40S", 1, 4096, False),  # weights alone exceed the reservation
    ("Qwen/Qwen3-32B", "H100-80GB", 1, 32768, True),
    ("Qwen/Qwen3-32B", "H100-80GB", 1, None, False),  # 40960 tokens need 10 GiB of KV
    ("Qwen/Qwen3-32B", "A100-40GB", 2, 8192, True),
    ("Qwen/Qwen3-32B-AWQ", "L4", 1, 4096, True),  # barely: ~4,400 KV tokens
    ("Qwen/Qwen3-32B-AWQ", "L4", 1, 8192, False),
    ("Qwen/Qwen3-32B-AWQ", "A10G", 2, 8192, True),
    ("Qwen/Qwen3-30B-A3B", "H100-80GB", 1, None, True),
    ("Qwen/Qwen3-30B-A3B", "L40S", 1, None, False),
    ("Qwen/Qwen3-235B-A22B", "H100-80GB", 8, None, True),
    ("Qwen/Qwen3-235B-A22B", "H100-80GB", 4, None, False),
    ("Qwen/Qwen3-235B-A22B-FP8", "H200-141GB", 2, None, True),
    ("Qwen/Qwen2.5-72B-Instruct", "A100-80GB", 2, 32768, False),  # 4 GiB KV left, one request needs 5
    ("Qwen/Qwen2.5-72B-Instruct", "A100-80GB", 4, 32768, True),
    ("Qwen/Qwen2.5-72B-Instruct", "A100-80GB", 1, 4096, False),
    ("Qwen/Qwen2.5-72B-Instruct-AWQ", "L40S", 2, 16384, True),
    ("Qwen/Qwen2.5-7B-Instruct", "H20", 1, None, True),
    ("Qwen/QwQ-32B", "H200-141GB", 1, None, True),
]


@pytest.mark.parametrize(("name", "gpu", "tp", "max_len", "fits"), FITS_TABLE)
def test_models_by_gpus_by_layouts(name, gpu, tp, max_len, fits):
    result = size_with_fixes(
        arch(name), gpu_from_catalog(gpu), Plan(tensor_parallel_size=tp, max_model_len=max_len)
    )
    assert result.fits is fits, result.problems
    if fits:
        assert result.problems == []
        assert result.max_concurrency >= 1
    else:
        assert result.problems
        assert any(problem.startswith("fix: ") for problem in result.problems)


def fix_values(result, prefix):
    return [
        p.removeprefix(f"fix: {prefix}").split()[0] for p in result.problems if p.startswith(f"fix: {prefix}")
    ]


def test_suggested_fixes_actually_fit():
    model = arch("Qwen/Qwen3-32B")
    plan = Plan(max_model_len=40960)
    result = size_with_fixes(model, H100, plan)
    assert not result.fits
    [max_len] = fix_values(result, "lower --max-model-len to ")
    [tp] = fix_values(result, "raise --tensor-parallel-size to ")
    assert int(max_len) == result.max_model_len_that_fits
    assert size(model, H100, replace(plan, max_model_len=int(max_len))).fits
    assert not size(model, H100, replace(plan, max_model_len=int(max_len) + 16)).fits
    assert size(model, H100, replace(plan, tensor_parallel_size=int(tp))).fits
    assert "fix: use --kv-cache-dtype fp8 (halves the KV cache per token)" in result.problems
    assert "fix: use an AWQ checkpoint (4-bit weights)" in result.problems


def test_weights_too_large_names_the_shortfall():
    result = size_with_fixes(arch("Qwen/Qwen2.5-72B-Instruct"), gpu_from_catalog("A100-80GB"), Plan())
    assert "the weights need 135." in result.problems[0]
    assert "only 72.91 GiB is reserved" in result.problems[0]
    # TP=2 would hold the weights but leave no room for 32768 tokens, so the fix names TP=4.
    assert "fix: raise --tensor-parallel-size to 4 (4 GPUs)" in result.problems


def test_utilization_above_the_free_memory_refuses_to_start():
    # The CUDA context (0.5 GiB) is in use before vLLM compares free memory with its request.
    result = size(arch("Qwen/Qwen3-8B"), H100, Plan(gpu_memory_utilization=0.995))
    assert not result.fits
    assert "vLLM refuses to start: lower it to 0.99" in result.problems[0]
    # 0.99 starts, but the context and the sampler's top-k/top-p path (skipped when profiling) come on
    # top of the reservation while serving: refused with the utilization that leaves room for them.
    serving = size(arch("Qwen/Qwen3-8B"), H100, Plan(gpu_memory_utilization=0.99))
    assert not serving.fits
    assert "would run out of memory under load; lower --gpu-memory-utilization to 0.95" in serving.problems[0]
    assert size(arch("Qwen/Qwen3-8B"), H100, Plan(gpu_memory_utilization=0.95)).fits
    assert not size(arch("Qwen/Qwen3-8B"), H100, Plan(gpu_memory_utilization=0.96)).fits


def test_memory_held_beyond_the_reservation_follows_the_release():
    # vLLM 0.26 (model runner V2 for dense models) captures CUDA graphs outside its budget: 30 MiB a
    # layer, measured on the lent H200; v0.33 counts them inside.
    dense = arch("Qwen/Qwen3-32B")
    new = size(dense, H200, Plan(max_model_len=32768)).breakdown["stages"][0]
    old = size(dense, H200, Plan(max_model_len=32768, vllm_version="0.26.0")).breakdown["stages"][0]
    assert new["outside_reservation_parts_gib"]["cudagraph_pool"] == 0
    assert old["outside_reservation_parts_gib"]["cudagraph_pool"] == 1.875
    assert old["cudagraph_gib"] == 0 < new["cudagraph_gib"]
    eager = size(dense, H200, Plan(enforce_eager=True, vllm_version="0.26")).breakdown["stages"][0]
    assert eager["outside_reservation_parts_gib"]["cudagraph_pool"] == 0
    # 0.26's V1 runner (MoE models) profiles the sorting sampler, so nothing of it is left outside.
    moe = size(arch("Qwen/Qwen3-30B-A3B"), H200, Plan(vllm_version="0.26")).breakdown["stages"][0]
    assert moe["outside_reservation_parts_gib"]["sampler"] == 0
    assert moe["sampler_peak_gib"] > 2.6


def test_context_beyond_max_position_embeddings_needs_rope_scaling():
    model = arch("Qwen/Qwen3-8B")
    result = size(model, H200, Plan(max_model_len=131072))
    assert result.problems == [
        "--max-model-len 131072 exceeds the model's 40960 positions (max_position_embeddings 40960; "
        "set RoPE scaling (YaRN) in the model's config.json to go further)"
    ]
    yarn = replace(model, rope_scaling_factor=4.0, original_max_position_embeddings=32768)
    assert size(yarn, H200, Plan(max_model_len=131072)).fits


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (Plan(gpu_memory_utilization=0), r"must be in \(0, 1\]"),
        (Plan(gpu_memory_utilization=1.2), r"must be in \(0, 1\]"),
        (Plan(tensor_parallel_size=0), "at least 1"),
        (Plan(max_model_len=-5), "positive"),
        (Plan(max_num_seqs=0), "positive"),
        (Plan(kv_cache_dtype="int4"), "not one vLLM knows"),
    ],
)
def test_unusable_arguments_raise(plan, message):
    with pytest.raises(SizingError, match=message):
        size(arch("Qwen/Qwen3-8B"), H100, plan)


def test_result_dict_has_the_contract_keys():
    data = size(arch("Qwen/Qwen3-8B"), H100).as_dict()
    assert set(data) >= CONTRACT_KEYS
    assert data["breakdown"]["plan"]["tensor_parallel_size"] == 1
    json.dumps(data)  # serialisable as the module's facts


# --- recommender ------------------------------------------------------------------------------------------


def test_recommend_prefers_fewest_gpus_then_cheapest():
    options = recommend(arch("Qwen/Qwen3-32B"), max_model_len=32768, concurrency=1)
    best = options[0]
    assert best.gpus == 1
    assert best.gpu == "A100-80GB"  # one GPU fits; the A100 ranks cheaper than H100/H200/H20
    counts = [(o.gpus, GPUS[o.gpu]["cost_rank"]) for o in options]
    assert counts == sorted(counts)
    for option in options:
        again = size(arch("Qwen/Qwen3-32B"), gpu_from_catalog(option.gpu), option.plan)
        assert again.fits
        assert again.max_concurrency >= 1


def test_recommend_scales_out_for_concurrency():
    one = recommend(arch("Qwen/Qwen3-8B"), max_model_len=32768, concurrency=1, gpus=["L40S"])[0]
    many = recommend(arch("Qwen/Qwen3-8B"), max_model_len=32768, concurrency=16, gpus=["L40S"])[0]
    assert one.gpus == 1
    assert many.gpus > one.gpus
    assert many.result.max_concurrency >= 16


def test_recommend_uses_expert_parallel_when_the_split_needs_it():
    # TP=4 holds the AWQ weights but only ~7 requests of 32k; TP=8 needs whole experts per GPU.
    [option] = recommend(arch("Qwen/Qwen3-235B-A22B-AWQ"), max_model_len=32768, concurrency=8, gpus=["L40S"])
    assert option.plan.tensor_parallel_size == 8
    assert option.plan.enable_expert_parallel


def test_recommend_nothing_fits_and_bad_targets():
    assert recommend(arch("Qwen/Qwen3-235B-A22B"), gpus=["L4"], max_gpus=4) == []
    with pytest.raises(SizingError, match="at least 1"):
        recommend(arch("Qwen/Qwen3-8B"), concurrency=0)


def test_candidate_layouts_prefer_tensor_parallel_within_a_node():
    assert candidate_layouts(16) == [
        (1, 1),
        (2, 1),
        (1, 2),
        (4, 1),
        (2, 2),
        (1, 4),
        (8, 1),
        (4, 2),
        (2, 4),
        (1, 8),
        (8, 2),
        (4, 4),
        (2, 8),
        (1, 16),
    ]
