"""Sizing engine: will this model, with these vLLM arguments, fit these GPUs, and with how much KV cache?

It reproduces vLLM's own start-up accounting (V1 engine, gpu_worker.determine_available_memory), per
GPU rank:

    reservation   = usable memory x gpu_memory_utilization
    available_kv  = reservation - weights - activation peak of the profiling run
                    - non-torch memory allocated during profiling - CUDA-graph estimate
    num_blocks    = available_kv // (block_size x KV bytes per token on this rank); minimum over ranks

and then the checks vLLM makes (one request of max_model_len must fit) plus the divisibility rules it
enforces when it builds the model, so a plan vLLM would refuse is refused here first, with the reason
and a concrete fix. Every constant is named below with where it comes from; docs/sizing.md has the
table and the comparison with real start-up logs.

Stdlib only and no AnsibleModule import: Ansible ships this file to hosts, and the qwen-infra CLI,
the Pulumi program and the tests import it directly.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

from .qwen_catalogs import (
    AWQ_W4_G128,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    GPTQ_W4_G128,
    GPU_ALIASES,
    GPUS,
    MODELS,
    QUANTIZATION_SUFFIXES,
    QUANTIZED_VARIANTS,
    VLLM_VERSION,
)

GIB = 1 << 30
MIB = 1 << 20

# --- vLLM behaviour the engine reproduces (checked against vLLM v0.33 unless said otherwise) ---------

# vllm/config/cache.py DEFAULT_BLOCK_SIZE; the KV cache is paged in blocks of this many tokens.
DEFAULT_BLOCK_SIZE = 16
# vllm/model_executor/layers/vocab_parallel_embedding.py: DEFAULT_VOCAB_PADDING_SIZE. Embedding and
# lm_head rows are padded to a multiple of this, then split evenly over the TP ranks.
VOCAB_PADDING = 64
# vllm/engine/arg_utils.py EngineArgs.get_batch_defaults(): GPUs with >= 70 GiB whose name does not
# contain "a100" get the large `vllm serve` defaults; every other GPU the small ones.
LARGE_GPU_MIN_BYTES = 70 * GIB
LARGE_GPU_BATCH_DEFAULTS = (8192, 1024)  # (max_num_batched_tokens, max_num_seqs), OPENAI_API_SERVER
SMALL_GPU_BATCH_DEFAULTS = (2048, 256)
# vllm/model_executor/layers/fused_moe: tokens are processed in chunks of VLLM_FUSED_MOE_CHUNK_SIZE, so
# the MoE intermediate buffers never exceed this many tokens.
FUSED_MOE_CHUNK_TOKENS = 32768
# vllm/config/compilation.py: max_cudagraph_capture_size defaults to min(2 x max_num_seqs, 512); the
# capture sizes are 1, 2, 4, then every 8 up to 256, then every 16.
MAX_CUDAGRAPH_CAPTURE_SIZE = 512
# A single GPU host has at most this many GPUs on one NVLink/PCIe fabric; TP should stay inside it.
GPUS_PER_NODE = 8

# --- memory vLLM does not see as weights, KV or activations ------------------------------------------

# CUDA context of one process: measured on the lent H100 (torch 2.11, CUDA 13.0) as the memory in use
# after torch initialised the device and before any allocation: 85017493504 - 84465090560 bytes
# = 0.51 GiB (tests/fixtures/gpu/h100-80gb-hbm3/torch-mem.json). vLLM takes its baseline snapshot after
# the context exists, so this is NOT charged against the reservation; it only has to fit in the
# (1 - gpu_memory_utilization) headroom or vLLM refuses to start ("Free memory on device ... is less
# than desired GPU memory utilization").
CUDA_CONTEXT_BYTES = int(0.5 * GIB)
# NCCL communicators (torch.distributed + vLLM's PyNccl, plus custom all-reduce IPC buffers) when
# tensor_parallel_size x pipeline_parallel_size > 1: ~0.82 GiB per GPU, measured on the lent H100/H200
# machines. NCCL (>= 2.22) connects peers lazily, so most of this is allocated by the first large
# collectives of the profiling run and charged to the reservation as non-torch memory: a TP=4 A100
# node started with only 1.18 GiB of headroom and then lost ~2 GiB more than single-GPU accounting
# explains (module_utils/qwen_infra/sizing_cases.py). It is charged on NVLink/NVSwitch GPUs, where NCCL opens many
# channels; on PCIe-only cards (L4, A10G, L40S, workstation GPUs) a TP=2 log shows no such charge.
NCCL_COMMUNICATOR_BYTES = int(0.82 * GIB)
# cuBLAS/cuBLASLt workspaces created by the first GEMMs of the profiling run, which vLLM counts as
# "non-torch increase" and charges against the reservation: ~0.25 GiB, measured on the lent H100/H200.
CUBLAS_WORKSPACE_BYTES = int(0.25 * GIB)
# Everything else the profiling run leaves behind that is neither weights nor the activation peak:
# lazily loaded kernel modules, attention-backend and sampler workspaces. No single vLLM constant;
# 0.25 GiB is fitted to the regression logs (docs/sizing.md), where it centres the KV-token errors,
# and agrees with the 0.34-0.44 GiB "non_torch_memory" vLLM's V0 profiler printed on single GPUs
# (0.35 GiB in vLLM issue #10517; other published logs) once the cuBLAS part above is taken out.
PROFILE_WORKSPACE_BYTES = int(0.25 * GIB)
NON_TORCH_PROFILE_BYTES = CUBLAS_WORKSPACE_BYTES + PROFILE_WORKSPACE_BYTES
# The profiling run's sampler pass over max_num_seqs rows: logits in the model dtype (2 B), their fp32
# copy (4 B) and one fp32 probability/noise buffer (4 B) per vocabulary entry. Since the V2 model
# runner the dummy sampler skips top-k/top-p sorting (comment in _dummy_sampler_run), so no sort
# buffers; older V1 releases without FlashInfer also sorted (about 24 B per logit, see docs/sizing.md).
SAMPLER_BYTES_PER_LOGIT = 10
# Activation bytes per token per layer in the profiling forward pass, in units of the activation dtype:
# the residual stream, the normed input and the layer output (3 x hidden), plus the MLP's fused
# gate_up output (2 x intermediate) and its activated half (1 x intermediate) alive at the same time.
HIDDEN_BUFFERS = 3
MLP_BUFFERS = 3
# CUDA-graph estimate (vLLM >= v0.21 subtracts it, gpu_model_runner.profile_cudagraph_memory): about
# 2 MiB per captured size and mode (FULL and PIECEWISE) plus the activations of the largest capture.
CUDAGRAPH_BYTES_PER_CAPTURE = 2 * MIB


class SizingError(ValueError):
    """The question cannot be answered as asked (unknown model, impossible argument)."""


# --- model architecture ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantConfig:
    """Weight quantization of the linear layers, as the checkpoint's quantization_config says."""

    method: str = "none"  # none | fp8 | awq | gptq | w4a16 (compressed-tensors int4) | int8
    bits: int = 16
    group_size: int = 0  # AWQ/GPTQ group along the input dimension; -1 = one group per row
    zero_point: bool = False
    fp8_block: tuple[int, int] | None = None  # FP8 weight_block_size (out, in); None = per tensor/channel
    per_channel_scale: bool = False

    @property
    def is_quantized(self) -> bool:
        return self.method != "none"

    @property
    def is_int4(self) -> bool:
        return self.method in {"awq", "gptq", "w4a16"}

    def split_unit(self) -> int:
        """The multiple every TP-split dimension of a quantized linear must be (sizing.md §4)."""
        if self.is_int4:
            return self.group_size if self.group_size > 0 else 1
        if self.method == "fp8" and self.fp8_block:
            return max(self.fp8_block)
        return 1

    def label(self) -> str:
        if self.is_int4:
            return f"{self.method} W{self.bits}A16 g{self.group_size}"
        if self.method == "fp8":
            return "fp8 block {}x{}".format(*self.fp8_block) if self.fp8_block else "fp8 per-tensor"
        return self.method if self.is_quantized else "bf16"


NO_QUANT = QuantConfig()


def parse_quantization_config(config: dict | None) -> QuantConfig:
    """Read a config.json quantization_config (AWQ, GPTQ, FP8, compressed-tensors)."""
    if not config:
        return NO_QUANT
    method = str(config.get("quant_method", "")).lower()
    if method == "awq":
        return QuantConfig(
            "awq",
            bits=int(config.get("bits", config.get("w_bit", 4))),
            group_size=int(config.get("group_size", config.get("q_group_size", 128))),
            zero_point=bool(config.get("zero_point", True)),
        )
    if method == "gptq":
        # GPTQ checkpoints store qzeros even when symmetric, so zeros are always counted.
        return QuantConfig(
            "gptq",
            bits=int(config.get("bits", 4)),
            group_size=int(config.get("group_size", 128)),
            zero_point=True,
        )
    if method == "fp8":
        block = config.get("weight_block_size")
        return QuantConfig("fp8", bits=8, fp8_block=tuple(block) if block else None)
    if method == "compressed-tensors":
        return _parse_compressed_tensors(config)
    raise SizingError(
        f"unsupported quantization method {method!r} (supported: awq, gptq, fp8, compressed-tensors)"
    )


def _parse_compressed_tensors(config: dict) -> QuantConfig:
    groups = config.get("config_groups") or {}
    if not groups:
        raise SizingError("compressed-tensors quantization_config without config_groups")
    weights = next(iter(groups.values())).get("weights") or {}
    bits = int(weights.get("num_bits", 8))
    kind = str(weights.get("type", "int"))
    strategy = str(weights.get("strategy", "channel"))
    if kind == "float" and bits == 8:
        block = weights.get("block_structure")
        return QuantConfig("fp8", bits=8, fp8_block=tuple(block) if block else None, per_channel_scale=True)
    if kind == "int" and bits == 4:
        group = int(weights.get("group_size") or -1) if strategy == "group" else -1
        return QuantConfig("w4a16", bits=4, group_size=group, zero_point=not weights.get("symmetric", True))
    if kind == "int" and bits == 8:
        return QuantConfig("int8", bits=8, per_channel_scale=True)
    raise SizingError(f"unsupported compressed-tensors weights: {kind}{bits} {strategy}")


@dataclass(frozen=True)
class Architecture:
    """The shape facts of a decoder-only transformer that decide its memory (from config.json)."""

    name: str
    model_type: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    qkv_bias: bool = False
    qk_norm: bool = False
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    moe_layers: tuple[int, ...] = ()
    quantization: QuantConfig = NO_QUANT
    rope_scaling_factor: float | None = None
    original_max_position_embeddings: int | None = None
    source: str = ""

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def max_model_len_limit(self) -> int:
        """Longest context vLLM accepts without extra flags (RoPE scaling in config.json extends it)."""
        if self.rope_scaling_factor:
            base = self.original_max_position_embeddings or self.max_position_embeddings
            return max(self.max_position_embeddings, int(base * self.rope_scaling_factor))
        return self.max_position_embeddings


def _first(config: dict, *keys, default=None):
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return default


def architecture_from_config(config: dict, name: str = "") -> Architecture:
    """Build an Architecture from a config.json dict (dense or MoE; Qwen2/2.5/3 and same-shaped models)."""
    quant_config = config.get("quantization_config")
    if isinstance(config.get("text_config"), dict):  # multimodal wrappers keep the LM under text_config
        config = {**config["text_config"], "source": config.get("source", "")}
        quant_config = quant_config or config.get("quantization_config")
    try:
        hidden = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        layers = int(config["num_hidden_layers"])
        vocab = int(config["vocab_size"])
    except KeyError as error:
        raise SizingError(f"config.json lacks {error.args[0]!r}") from error
    model_type = str(config.get("model_type", ""))
    experts = int(_first(config, "num_experts", "num_local_experts", "n_routed_experts", default=0) or 0)
    moe_layers: tuple[int, ...] = ()
    if experts:
        step = int(config.get("decoder_sparse_step", 1) or 1)
        dense_only = set(config.get("mlp_only_layers") or [])
        first_dense = int(config.get("first_k_dense_replace", 0) or 0)
        moe_layers = tuple(
            i for i in range(layers) if i not in dense_only and i >= first_dense and (i + 1) % step == 0
        )
    rope = config.get("rope_scaling") or {}
    factor = rope.get("factor") if isinstance(rope, dict) else None
    return Architecture(
        name=name or str(config.get("_name_or_path", "")) or "model",
        model_type=model_type,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=int(_first(config, "num_key_value_heads", default=heads)),
        head_dim=int(_first(config, "head_dim", default=hidden // heads)),
        hidden_size=hidden,
        intermediate_size=int(_first(config, "intermediate_size", default=4 * hidden)),
        vocab_size=vocab,
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        max_position_embeddings=int(_first(config, "max_position_embeddings", "seq_length", default=4096)),
        qkv_bias=bool(config.get("attention_bias", model_type in {"qwen2", "qwen2_moe"})),
        qk_norm=model_type in {"qwen3", "qwen3_moe"},
        num_experts=experts,
        num_experts_per_tok=int(config.get("num_experts_per_tok", 0) or 0),
        moe_intermediate_size=int(_first(config, "moe_intermediate_size", default=0) or 0),
        shared_expert_intermediate_size=int(config.get("shared_expert_intermediate_size", 0) or 0),
        moe_layers=moe_layers,
        quantization=parse_quantization_config(quant_config),
        rope_scaling_factor=float(factor) if factor else None,
        original_max_position_embeddings=rope.get("original_max_position_embeddings") if rope else None,
        source=str(config.get("source", "")),
    )


def load_architecture(model_dir: str | Path) -> Architecture:
    """Read <model_dir>/config.json."""
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise SizingError(f"{path} does not exist") from error
    except json.JSONDecodeError as error:
        raise SizingError(f"{path} is not valid JSON: {error}") from error
    return architecture_from_config(config, name=Path(model_dir).name)


def catalog_config(name: str) -> dict:
    """config.json fields of a catalog model, including the -AWQ / -GPTQ-Int4 / -FP8 variants."""
    wanted = name if "/" in name else f"Qwen/{name}"
    by_lower = {key.lower(): key for key in MODELS}
    if wanted.lower() in by_lower:
        return dict(MODELS[by_lower[wanted.lower()]])
    for suffix in sorted(QUANTIZATION_SUFFIXES, key=len, reverse=True):
        if wanted.lower().endswith(suffix.lower()):
            base = by_lower.get(wanted[: -len(suffix)].lower())
            if base:
                variant_key = f"{base}{suffix}"
                variant = QUANTIZED_VARIANTS.get(variant_key, {})
                config = {**MODELS[base], **variant}
                config["quantization_config"] = QUANTIZATION_SUFFIXES[suffix]
                return config
    known = ", ".join(sorted(MODELS))
    raise SizingError(f"unknown model {name!r}: give a directory with config.json or one of {known}")


def resolve_model(model: str) -> tuple[Architecture, Path | None]:
    """MODEL as the CLI takes it: a directory with config.json, or a catalog name. Returns the checkpoint
    directory too (None for catalog names) so exact tensor sizes can be read when it holds safetensors."""
    path = Path(model).expanduser()
    if path.is_dir():
        return load_architecture(path), path
    canonical = model if "/" in model else f"Qwen/{model}"
    return architecture_from_config(catalog_config(model), name=canonical), None


# The quantization_config a --quantization flag stands for when the checkpoint itself is unquantized.
FLAG_QUANTIZATION = {
    "awq": AWQ_W4_G128,
    "gptq": GPTQ_W4_G128,
    # vLLM's online FP8 (--quantization fp8 on a bf16 checkpoint) is per-tensor, no blocks.
    "fp8": {"quant_method": "fp8", "activation_scheme": "dynamic"},
}


def with_quantization(arch: Architecture, flag: str | None) -> Architecture:
    """Apply a --quantization flag. A checkpoint that is already quantized keeps its own scheme; asking
    for another one is an error, as in vLLM ("Quantization method specified in the model config ...")."""
    if flag is None:
        return arch
    if flag not in {"none", *FLAG_QUANTIZATION}:
        raise SizingError(f"--quantization must be one of none, awq, gptq, fp8, not {flag!r}")
    current = arch.quantization.method
    if arch.quantization.is_quantized:
        same = flag == current or (flag == "gptq" and current == "w4a16")
        if not same:
            raise SizingError(f"{arch.name} is a {current} checkpoint; --quantization {flag} contradicts it")
        return arch
    if flag == "none":
        return arch
    return replace(arch, quantization=parse_quantization_config(FLAG_QUANTIZATION[flag]))


# --- weight inventory --------------------------------------------------------------------------------

# How a tensor is laid out over the tensor-parallel ranks.
VOCAB = "vocab"  # rows (vocabulary) padded to VOCAB_PADDING and split
COLUMN = "column"  # output features split
ROW = "row"  # input features split
KV = "kv"  # k/v projections: split per KV head, replicated when TP > KV heads
REPLICATED = "replicated"


@dataclass(frozen=True)
class Tensor:
    """One stored tensor, its bytes over all ranks together, and how vLLM distributes it."""

    name: str
    nbytes: int
    split: str
    layer: int | None = None  # decoder layer; None for embeddings, lm_head and the final norm
    part: str = "layer"  # embed | lm_head | final_norm | layer
    expert: int | None = None


def linear_bytes(out_features: int, in_features: int, quant: QuantConfig) -> int:
    """Bytes of one linear layer's weights as stored (packed weights plus scales and zeros)."""
    count = out_features * in_features
    if not quant.is_quantized:
        return count * 2
    if quant.is_int4:
        group = quant.group_size if quant.group_size > 0 else in_features
        groups = math.ceil(in_features / group)
        packed = count * quant.bits // 8
        scales = groups * out_features * 2  # fp16 scale per group and output
        zeros = groups * out_features * quant.bits // 8 if quant.zero_point else 0
        g_idx = in_features * 4 if quant.method == "gptq" else 0  # int32 act-order index per input row
        return packed + scales + zeros + g_idx
    if quant.method == "fp8":
        if quant.fp8_block:
            block_out, block_in = quant.fp8_block
            return count + math.ceil(out_features / block_out) * math.ceil(in_features / block_in) * 4
        return count + (out_features * 4 if quant.per_channel_scale else 4)
    # int8 W8A8: one byte per weight plus an fp32 scale per output channel
    return count + out_features * 4


def model_tensors(arch: Architecture) -> list[Tensor]:
    """The checkpoint's tensors computed from config.json (used when no safetensors are at hand)."""
    h, hd, q = arch.hidden_size, arch.head_dim, arch.quantization
    tensors = [Tensor("model.embed_tokens.weight", arch.vocab_size * h * 2, VOCAB, part="embed")]
    for layer in range(arch.num_layers):
        p = f"model.layers.{layer}."

        def add(name: str, nbytes: int, split: str, expert: int | None = None, *, _p=p, _layer=layer) -> None:
            tensors.append(Tensor(_p + name, nbytes, split, layer=_layer, expert=expert))

        add("input_layernorm.weight", h * 2, REPLICATED)
        add("post_attention_layernorm.weight", h * 2, REPLICATED)
        add("self_attn.q_proj.weight", linear_bytes(arch.num_heads * hd, h, q), COLUMN)
        add("self_attn.k_proj.weight", linear_bytes(arch.num_kv_heads * hd, h, q), KV)
        add("self_attn.v_proj.weight", linear_bytes(arch.num_kv_heads * hd, h, q), KV)
        add("self_attn.o_proj.weight", linear_bytes(h, arch.num_heads * hd, q), ROW)
        if arch.qkv_bias:
            add("self_attn.q_proj.bias", arch.num_heads * hd * 2, COLUMN)
            add("self_attn.k_proj.bias", arch.num_kv_heads * hd * 2, KV)
            add("self_attn.v_proj.bias", arch.num_kv_heads * hd * 2, KV)
        if arch.qk_norm:
            add("self_attn.q_norm.weight", hd * 2, REPLICATED)
            add("self_attn.k_norm.weight", hd * 2, REPLICATED)
        if layer in arch.moe_layers:
            # The router stays 16-bit in every official quantized Qwen MoE checkpoint.
            add("mlp.gate.weight", arch.num_experts * h * 2, REPLICATED)
            width = arch.moe_intermediate_size
            for expert in range(arch.num_experts):
                e = f"mlp.experts.{expert}."
                add(e + "gate_proj.weight", linear_bytes(width, h, q), COLUMN, expert)
                add(e + "up_proj.weight", linear_bytes(width, h, q), COLUMN, expert)
                add(e + "down_proj.weight", linear_bytes(h, width, q), ROW, expert)
            if arch.shared_expert_intermediate_size:
                shared = arch.shared_expert_intermediate_size
                add("mlp.shared_expert.gate_proj.weight", linear_bytes(shared, h, q), COLUMN)
                add("mlp.shared_expert.up_proj.weight", linear_bytes(shared, h, q), COLUMN)
                add("mlp.shared_expert.down_proj.weight", linear_bytes(h, shared, q), ROW)
                add("mlp.shared_expert_gate.weight", h * 2, REPLICATED)
        else:
            i = arch.intermediate_size
            add("mlp.gate_proj.weight", linear_bytes(i, h, q), COLUMN)
            add("mlp.up_proj.weight", linear_bytes(i, h, q), COLUMN)
            add("mlp.down_proj.weight", linear_bytes(h, i, q), ROW)
    tensors.append(Tensor("model.norm.weight", h * 2, REPLICATED, part="final_norm"))
    if not arch.tie_word_embeddings:
        tensors.append(Tensor("lm_head.weight", arch.vocab_size * h * 2, VOCAB, part="lm_head"))
    return tensors


# --- safetensors ---------------------------------------------------------------------------------------

SAFETENSORS_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U32": 4, "U16": 2, "F8_E8M0": 1,
}  # fmt: skip
# A safetensors header is JSON; refuse absurd sizes rather than read a multi-GB "header".
MAX_SAFETENSORS_HEADER = 100 * MIB


def read_safetensors_header(path: str | Path) -> dict[str, dict]:
    """Tensor name -> {dtype, shape, nbytes} from a .safetensors file, reading only its header
    (8-byte little-endian length, then that many bytes of JSON)."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise SizingError(f"{path}: too short to be a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_SAFETENSORS_HEADER:
            raise SizingError(f"{path}: header length {length} is not plausible")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SizingError(f"{path}: header is not JSON: {error}") from error
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = {
            "dtype": info["dtype"],
            "shape": list(info["shape"]),
            "nbytes": int(end) - int(start),
        }
    return tensors


_LAYER = re.compile(r"\.layers\.(\d+)\.")
_EXPERT = re.compile(r"\.experts\.(\d+)\.")
_COLUMN_NAMES = ("q_proj", "gate_proj", "up_proj", "w1", "w3", "gate_up_proj", "qkv_proj")
_ROW_NAMES = ("o_proj", "down_proj", "w2")
# Tensors vLLM does not load for plain serving (multi-token-prediction heads), so not in GPU memory.
_SKIPPED = re.compile(r"(^|\.)mtp\.")


def _layer_split(module: str, leaf: str, numel: int) -> str:
    """How a decoder-layer tensor is split, from its module name (q_proj, down_proj, ...)."""
    if numel <= 1 or "norm" in module or module in {"gate", "shared_expert_gate"}:
        return REPLICATED  # scalars, norms and the MoE router sit whole on every rank
    if module in {"k_proj", "v_proj"}:
        return KV
    if module in _COLUMN_NAMES:
        # GPTQ's g_idx indexes input rows, which a column-parallel layer does not split.
        return REPLICATED if leaf == "g_idx" else COLUMN
    if module in _ROW_NAMES:
        # Row-parallel biases are added after the all-reduce, so every rank holds them whole.
        return REPLICATED if leaf == "bias" else ROW
    return REPLICATED


def classify_tensor(name: str, shape: list[int], nbytes: int) -> Tensor | None:
    """Place one checkpoint tensor: which layer, how it is split over TP ranks (None: not loaded)."""
    if _SKIPPED.search(name):
        return None
    layer_match = _LAYER.search(name)
    if layer_match is None:
        if "embed_tokens" in name or name.endswith("wte.weight"):
            return Tensor(name, nbytes, VOCAB, part="embed")
        if name.startswith("lm_head") or ".lm_head." in name:
            return Tensor(name, nbytes, VOCAB, part="lm_head")
        return Tensor(name, nbytes, REPLICATED, part="final_norm")
    expert_match = _EXPERT.search(name)
    parts = name.split(".")
    module, leaf = (parts[-2], parts[-1]) if len(parts) >= 2 else ("", parts[-1])
    return Tensor(
        name,
        nbytes,
        _layer_split(module, leaf, math.prod(shape) if shape else 1),
        layer=int(layer_match.group(1)),
        expert=int(expert_match.group(1)) if expert_match else None,
    )


def checkpoint_tensors(model_dir: str | Path) -> list[Tensor] | None:
    """Exact tensors of a local checkpoint from its safetensors headers; None when it has none."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        return None
    tensors = []
    for path in files:
        for name, info in read_safetensors_header(path).items():
            tensor = classify_tensor(name, info["shape"], info["nbytes"])
            if tensor is not None:
                tensors.append(tensor)
    return tensors


# --- layout -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """One GPU model: its name (as nvidia-smi or the catalog spells it) and usable bytes."""

    name: str
    usable_bytes: int
    # GPUs on NVLink/NVSwitch (SXM boards): NCCL allocates many channels' buffers there.
    nvlink: bool = False

    @property
    def usable_gib(self) -> float:
        return self.usable_bytes / GIB


def gpu_from_catalog(name: str) -> Device:
    """A catalog GPU by name or alias (case-insensitive)."""
    wanted = GPU_ALIASES.get(name.upper(), name)
    for key, info in GPUS.items():
        if key.lower() == wanted.lower():
            return Device(key, int(info["usable_bytes"]), nvlink=bool(info["nvlink"]))
    raise SizingError(f"unknown GPU {name!r}: one of {', '.join(GPUS)}, or pass the memory directly")


def catalog_name_for(product_name: str) -> str | None:
    """Catalog key of an nvidia-smi product name ("NVIDIA H100 80GB HBM3" -> "H100-80GB")."""
    for key, info in GPUS.items():
        if product_name in info.get("product_names", []):
            return key
    return None


def device_for(product_name: str, usable_bytes: int) -> Device:
    """A GPU as nvidia-smi names it, with its measured usable bytes; NVLink as the catalog says for the
    model, never for PCIe boards."""
    key = catalog_name_for(product_name)
    nvlink = bool(key and GPUS[key]["nvlink"]) and "pcie" not in product_name.lower()
    return Device(product_name, usable_bytes, nvlink=nvlink)


def default_batch_budget(device: Device) -> tuple[int, int]:
    """vLLM's default (max_num_batched_tokens, max_num_seqs) for `vllm serve` on this GPU."""
    if device.usable_bytes >= LARGE_GPU_MIN_BYTES and "a100" not in device.name.lower():
        return LARGE_GPU_BATCH_DEFAULTS
    return SMALL_GPU_BATCH_DEFAULTS


def pp_layer_ranges(num_layers: int, pp: int) -> list[tuple[int, int]]:
    """Layers of each pipeline stage as vLLM splits them (distributed.utils.get_pp_indices): equal
    shares, the remainder going to the stages before the last."""
    sizes = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        sizes[-i] += 1
    ranges, start = [], 0
    for size in sizes:
        ranges.append((start, start + size))
        start += size
    return ranges


@dataclass(frozen=True)
class Plan:
    """The vLLM arguments being sized. None means vLLM's default for the model or GPU."""

    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    enable_expert_parallel: bool = False
    kv_cache_dtype: str = "auto"
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    block_size: int = DEFAULT_BLOCK_SIZE
    enforce_eager: bool = False
    # vLLM >= v0.21 subtracts its CUDA-graph estimate from the KV budget (on by default,
    # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS). Older releases did not; the regression cases say which.
    cudagraph_in_budget: bool = True
    # GPUs the host offers (None: exactly tensor_parallel_size x pipeline_parallel_size).
    gpus_available: int | None = None

    @property
    def world_size(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def vllm_args(self) -> list[str]:
        """The command-line arguments that express this plan (defaults left out)."""
        args = ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.pipeline_parallel_size > 1:
            args += ["--pipeline-parallel-size", str(self.pipeline_parallel_size)]
        if self.enable_expert_parallel:
            args.append("--enable-expert-parallel")
        if self.kv_cache_dtype != "auto":
            args += ["--kv-cache-dtype", self.kv_cache_dtype]
        if self.max_model_len:
            args += ["--max-model-len", str(self.max_model_len)]
        if self.max_num_seqs:
            args += ["--max-num-seqs", str(self.max_num_seqs)]
        if self.max_num_batched_tokens:
            args += ["--max-num-batched-tokens", str(self.max_num_batched_tokens)]
        args += ["--gpu-memory-utilization", f"{self.gpu_memory_utilization:g}"]
        return args


def validate_plan(plan: Plan) -> None:
    """Arguments no layout can make sense of (the CLI's exit status 2)."""
    if not 0 < plan.gpu_memory_utilization <= 1:
        raise SizingError(f"--gpu-memory-utilization must be in (0, 1], not {plan.gpu_memory_utilization}")
    for flag, value in (
        ("--tensor-parallel-size", plan.tensor_parallel_size),
        ("--pipeline-parallel-size", plan.pipeline_parallel_size),
        ("--block-size", plan.block_size),
    ):
        if value < 1:
            raise SizingError(f"{flag} must be at least 1, not {value}")
    for flag, value in (
        ("--max-model-len", plan.max_model_len),
        ("--max-num-seqs", plan.max_num_seqs),
        ("--max-num-batched-tokens", plan.max_num_batched_tokens),
    ):
        if value is not None and value < 1:
            raise SizingError(f"{flag} must be a positive number, not {value}")
    if plan.kv_cache_dtype not in {"auto", "fp8", "fp8_e4m3", "fp8_e5m2", "bfloat16", "float16"}:
        raise SizingError(f"--kv-cache-dtype {plan.kv_cache_dtype!r} is not one vLLM knows (auto, fp8)")


def _divisors_up_to(n: int, limit: int) -> list[int]:
    return [d for d in (1, 2, 4, 8, 16, 32, 64) if d <= limit and n % d == 0]


def divisibility_problems(arch: Architecture, plan: Plan) -> list[str]:
    """Layouts vLLM refuses when it builds the model (sizing.md §4), each with the reason."""
    tp, pp = plan.tensor_parallel_size, plan.pipeline_parallel_size
    problems = []
    if arch.num_heads % tp:
        valid = _divisors_up_to(arch.num_heads, GPUS_PER_NODE)
        problems.append(
            f"num_attention_heads ({arch.num_heads}) is not divisible by --tensor-parallel-size {tp}: "
            f"use a tensor-parallel size in {valid}"
        )
    if arch.num_kv_heads % tp and tp % arch.num_kv_heads:
        problems.append(
            f"num_key_value_heads ({arch.num_kv_heads}) and --tensor-parallel-size {tp} do not divide "
            "one another, so the KV heads cannot be split or replicated evenly"
        )
    if pp > arch.num_layers:
        problems.append(f"--pipeline-parallel-size {pp} exceeds the model's {arch.num_layers} layers")
    if tp > GPUS_PER_NODE:
        problems.append(
            f"--tensor-parallel-size {tp} spans more than one {GPUS_PER_NODE}-GPU node: keep TP within a "
            "node and use --pipeline-parallel-size across nodes"
        )
    if plan.gpus_available is not None and plan.world_size > plan.gpus_available:
        problems.append(
            f"tensor x pipeline parallel size = {plan.world_size} GPUs, but {plan.gpus_available} are "
            "available: lower the parallel sizes or add GPUs"
        )
    problems += _mlp_split_problems(arch, plan)
    return problems


def _mlp_split_problems(arch: Architecture, plan: Plan) -> list[str]:
    tp = plan.tensor_parallel_size
    unit = arch.quantization.split_unit()
    what = (
        f"the {arch.quantization.method.upper()} group size {unit}"
        if arch.quantization.is_int4
        else f"the FP8 block {unit}"
    )
    problems = []
    dense_layers = arch.num_layers - len(arch.moe_layers)
    if dense_layers and arch.intermediate_size % tp:
        problems.append(f"intermediate_size ({arch.intermediate_size}) is not divisible by TP {tp}")
    elif dense_layers and unit > 1 and (arch.intermediate_size // tp) % unit:
        problems.append(
            f"intermediate_size {arch.intermediate_size} / TP {tp} = {arch.intermediate_size // tp} is not "
            f"a multiple of {what}: use TP in {_tp_sizes_splitting(arch.intermediate_size, unit)} "
            "or a checkpoint with a padded intermediate size"
        )
    if not arch.is_moe:
        return problems
    if plan.enable_expert_parallel:
        if arch.num_experts % tp:
            problems.append(
                f"{arch.num_experts} experts cannot be spread evenly over {tp} expert-parallel ranks"
            )
        return problems
    width = arch.moe_intermediate_size
    if width % tp:
        problems.append(
            f"moe_intermediate_size ({width}) is not divisible by TP {tp}: add --enable-expert-parallel"
        )
    elif unit > 1 and (width // tp) % unit:
        ok = _tp_sizes_splitting(width, unit)
        problems.append(
            f"moe_intermediate_size {width} / TP {tp} = {width // tp} is not a multiple of {what}, so the "
            f"quantized experts cannot be split {tp} ways: add --enable-expert-parallel (whole experts per "
            f"GPU) or use TP in {ok}"
        )
    return problems


def _tp_sizes_splitting(width: int, unit: int) -> list[int]:
    """TP sizes that cut `width` into slices that are whole multiples of `unit`."""
    return [d for d in (1, 2, 4, 8) if width % d == 0 and (width // d) % unit == 0]


def _vocab_fraction(vocab: int, tp: int) -> float:
    padded = math.ceil(vocab / VOCAB_PADDING) * VOCAB_PADDING
    return math.ceil(padded / tp) / vocab


def weights_per_stage(arch: Architecture, tensors: list[Tensor], plan: Plan) -> list[int]:
    """Weight bytes held by one TP rank of each pipeline stage (TP ranks are symmetric)."""
    tp = plan.tensor_parallel_size
    ranges = pp_layer_ranges(arch.num_layers, plan.pipeline_parallel_size)
    last = len(ranges) - 1
    ep = tp if plan.enable_expert_parallel and arch.is_moe else 1
    experts_rank0 = set(range(arch.num_experts // ep)) if ep > 1 else None
    kv_share = max(1, arch.num_kv_heads // tp) / arch.num_kv_heads
    has_lm_head = any(t.part == "lm_head" for t in tensors)
    per_stage = []
    for stage, (start, end) in enumerate(ranges):
        total = 0.0
        for t in tensors:
            if t.layer is not None and not start <= t.layer < end:
                continue
            # Tied embeddings: the last stage loads the embedding matrix as its lm_head.
            tied_head = stage == last and arch.tie_word_embeddings and not has_lm_head
            if t.part == "embed" and stage != 0 and not tied_head:
                continue
            if t.part in {"lm_head", "final_norm"} and stage != last:
                continue
            if t.expert is not None and experts_rank0 is not None:
                total += t.nbytes if t.expert in experts_rank0 else 0
                continue
            if t.split == VOCAB:
                total += t.nbytes * _vocab_fraction(arch.vocab_size, tp)
            elif t.split in {COLUMN, ROW}:
                total += t.nbytes / tp
            elif t.split == KV:
                total += t.nbytes * kv_share
            else:
                total += t.nbytes
        if end > start:
            total += rope_cache_bytes(arch)
        per_stage.append(int(total))
    return per_stage


def rope_cache_bytes(arch: Architecture) -> int:
    """vLLM's rotary-embedding cos/sin cache, [max positions, head_dim] in the model dtype, one per
    process (rotary_embedding.get_rope caches it); torch memory, so part of "Model loading took"."""
    return arch.max_model_len_limit * arch.head_dim * 2


# --- activations, overheads and the KV budget ---------------------------------------------------------


def _kv_dtype_bytes(plan: Plan) -> int:
    return 1 if plan.kv_cache_dtype.startswith("fp8") else 2


def kv_bytes_per_token(arch: Architecture, plan: Plan, layers: int) -> int:
    """KV bytes one token needs on one rank of a stage holding `layers` layers. KV heads are split over
    the TP ranks and replicated when there are more ranks than heads (max(1, kv_heads // tp))."""
    heads = max(1, arch.num_kv_heads // plan.tensor_parallel_size)
    return 2 * layers * heads * arch.head_dim * _kv_dtype_bytes(plan)


def forward_bytes_per_token(arch: Architecture, plan: Plan, start: int, end: int) -> tuple[int, int]:
    """(dense part, MoE part) of the profiling forward pass's peak, per token, on one rank."""
    tp, act = plan.tensor_parallel_size, 2
    heads_rank = arch.num_heads // tp if arch.num_heads % tp == 0 else arch.num_heads
    kv_rank = max(1, arch.num_kv_heads // tp)
    attention = (2 * heads_rank + 2 * kv_rank) * arch.head_dim  # q, k, v and the attention output
    dense_layers = [i for i in range(start, end) if i not in arch.moe_layers]
    mlp = MLP_BUFFERS * arch.intermediate_size // tp if dense_layers else 0
    dense = act * (HIDDEN_BUFFERS * arch.hidden_size + max(attention, mlp))
    moe = 0
    if any(start <= i < end for i in arch.moe_layers):
        width = (
            arch.moe_intermediate_size if plan.enable_expert_parallel else arch.moe_intermediate_size // tp
        )
        k = arch.num_experts_per_tok
        # fused_moe's three caches: gate_up out (2 x width), activated (width) and per-expert
        # outputs (hidden), each per routed copy of the token, plus the fp32 router logits.
        moe = act * k * (3 * width + arch.hidden_size) + 4 * arch.num_experts
    return dense, moe


def cudagraph_capture_sizes(max_capture: int) -> list[int]:
    sizes = [s for s in (1, 2, 4) if s <= max_capture]
    sizes += list(range(8, min(256, max_capture + 1), 8))
    sizes += list(range(256, max_capture + 1, 16))
    return sizes


@dataclass
class StageMemory:
    """Memory of one rank of one pipeline stage, in bytes."""

    stage: int
    layers: tuple[int, int]
    weights: int
    activation_peak: int
    forward_peak: int
    sampler_peak: int
    non_torch: int
    cudagraph: int
    reservation: int
    available_kv: int
    kv_bytes_per_token: int
    num_blocks: int

    def as_gib(self) -> dict:
        gib = lambda b: round(b / GIB, 3)  # noqa: E731 - local formatting helper
        return {
            "stage": self.stage,
            "layers": list(self.layers),
            "reservation_gib": gib(self.reservation),
            "weights_gib": gib(self.weights),
            "activation_peak_gib": gib(self.activation_peak),
            "forward_peak_gib": gib(self.forward_peak),
            "sampler_peak_gib": gib(self.sampler_peak),
            "non_torch_gib": gib(self.non_torch),
            "cudagraph_gib": gib(self.cudagraph),
            "available_kv_gib": gib(self.available_kv),
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "num_blocks": self.num_blocks,
        }


@dataclass
class SizingResult:
    """The answer, with the contract's keys (as_dict) and the full breakdown."""

    fits: bool
    weights_gib_per_rank: float
    kv_cache_gib_per_rank: float
    kv_cache_tokens: int
    max_concurrency: float
    max_model_len: int
    max_model_len_that_fits: int
    problems: list[str]
    breakdown: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "fits": self.fits,
            "weights_gib_per_rank": self.weights_gib_per_rank,
            "kv_cache_gib_per_rank": self.kv_cache_gib_per_rank,
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": self.max_concurrency,
            "max_model_len": self.max_model_len,
            "max_model_len_that_fits": self.max_model_len_that_fits,
            "problems": list(self.problems),
            "breakdown": self.breakdown,
        }


def _stage_memory(
    arch: Architecture,
    plan: Plan,
    device: Device,
    *,
    stage: int,
    span: tuple[int, int],
    weights: int,
    last: bool,
) -> StageMemory:
    # size() has filled in the defaults, so these are set.
    batched, seqs = plan.max_num_batched_tokens or 1, plan.max_num_seqs or 1
    start, end = span
    act = 2
    dense, moe = forward_bytes_per_token(arch, plan, start, end)
    forward = batched * dense + min(batched, FUSED_MOE_CHUNK_TOKENS) * moe if end > start else 0
    sampler = 0
    if last:
        rows = min(seqs, batched)
        # The hidden states of the whole batch stay alive while the sampler runs on the last rows.
        sampler = rows * arch.vocab_size * SAMPLER_BYTES_PER_LOGIT + batched * arch.hidden_size * act
    peak = max(forward, sampler)
    graphs = 0
    if plan.cudagraph_in_budget and not plan.enforce_eager:
        capture = min(2 * seqs, MAX_CUDAGRAPH_CAPTURE_SIZE)
        graphs = 2 * len(cudagraph_capture_sizes(capture)) * CUDAGRAPH_BYTES_PER_CAPTURE + capture * (
            dense + moe
        )
    reservation = int(device.usable_bytes * plan.gpu_memory_utilization)
    non_torch = NON_TORCH_PROFILE_BYTES
    if plan.world_size > 1 and device.nvlink:
        non_torch += NCCL_COMMUNICATOR_BYTES
    available = reservation - weights - peak - non_torch - graphs
    per_token = kv_bytes_per_token(arch, plan, end - start)
    blocks = max(0, available // (plan.block_size * per_token)) if per_token else 0
    return StageMemory(
        stage, span, weights, peak, forward, sampler, non_torch, graphs, reservation,
        available, per_token, blocks,
    )  # fmt: skip


def size(
    arch: Architecture,
    device: Device,
    plan: Plan | None = None,
    tensors: list[Tensor] | None = None,
    *,
    suggest: bool = True,
) -> SizingResult:
    """Size `arch` on GPUs like `device` with the vLLM arguments in `plan`.

    `tensors` are the checkpoint's real tensors (checkpoint_tensors()) when known; otherwise they are
    computed from the architecture. With `suggest`, a plan that does not fit is re-sized with the usual
    fixes to name the ones that work.
    """
    plan = plan or Plan()
    validate_plan(plan)
    default_tokens, default_seqs = default_batch_budget(device)
    plan = replace(
        plan,
        max_model_len=plan.max_model_len or arch.max_model_len_limit,
        max_num_batched_tokens=plan.max_num_batched_tokens or default_tokens,
        max_num_seqs=plan.max_num_seqs or default_seqs,
    )
    problems = divisibility_problems(arch, plan)
    inventory = tensors if tensors is not None else model_tensors(arch)
    weights = weights_per_stage(arch, inventory, plan)
    spans = pp_layer_ranges(arch.num_layers, plan.pipeline_parallel_size)
    stages = [
        _stage_memory(arch, plan, device, stage=i, span=span, weights=weights[i], last=i == len(spans) - 1)
        for i, span in enumerate(spans)
    ]
    limiting = min(stages, key=lambda s: s.num_blocks)
    num_blocks = limiting.num_blocks
    tokens = num_blocks * plan.block_size
    max_len = plan.max_model_len or arch.max_model_len_limit
    # One block is held back (the KV manager's null block), so one request can use one block less.
    longest = min(max(0, num_blocks - 1) * plan.block_size, arch.max_model_len_limit)

    problems += _memory_problems(arch, device, plan, stages, longest)
    fits = not problems
    if not fits and suggest:
        problems += suggest_fixes(arch, device, plan, tensors, longest)

    weights_rank = max(s.weights for s in stages)
    result = SizingResult(
        fits=fits,
        weights_gib_per_rank=round(weights_rank / GIB, 3),
        kv_cache_gib_per_rank=round(max(0, limiting.available_kv) / GIB, 3),
        kv_cache_tokens=tokens,
        max_concurrency=round(tokens / max_len, 2),
        max_model_len=max_len,
        max_model_len_that_fits=longest,
        problems=problems,
    )
    result.breakdown = {
        "model": arch.name,
        "quantization": arch.quantization.label(),
        "gpu": device.name,
        "usable_gib_per_gpu": round(device.usable_gib, 3),
        "gpus": plan.world_size,
        "vllm_version": VLLM_VERSION,
        "plan": {
            "tensor_parallel_size": plan.tensor_parallel_size,
            "pipeline_parallel_size": plan.pipeline_parallel_size,
            "enable_expert_parallel": plan.enable_expert_parallel,
            "kv_cache_dtype": plan.kv_cache_dtype,
            "max_model_len": max_len,
            "max_num_seqs": plan.max_num_seqs,
            "max_num_batched_tokens": plan.max_num_batched_tokens,
            "gpu_memory_utilization": plan.gpu_memory_utilization,
            "block_size": plan.block_size,
            "cudagraph_in_budget": plan.cudagraph_in_budget and not plan.enforce_eager,
        },
        "weights_source": "safetensors headers" if tensors is not None else "config.json",
        "outside_reservation_gib": round(CUDA_CONTEXT_BYTES / GIB, 3),
        "limiting_stage": limiting.stage,
        "stages": [s.as_gib() for s in stages],
        "vllm_args": plan.vllm_args(),
    }
    return result


def _memory_problems(
    arch: Architecture, device: Device, plan: Plan, stages: list[StageMemory], longest: int
) -> list[str]:
    problems = []
    util = plan.gpu_memory_utilization
    # Only the CUDA context exists when vLLM compares free memory with the request (NCCL comes later).
    free_at_start = device.usable_bytes - CUDA_CONTEXT_BYTES
    if free_at_start < device.usable_bytes * util:
        ceiling = math.floor(free_at_start / device.usable_bytes * 100) / 100
        problems.append(
            f"--gpu-memory-utilization {util:g} asks for {device.usable_bytes * util / GIB:.2f} GiB per GPU "
            "but "
            f"only {free_at_start / GIB:.2f} GiB is free after the CUDA context; vLLM refuses to start: "
            f"lower it to {ceiling:g}"
        )
    worst = max(stages, key=lambda s: s.weights)
    if worst.weights >= worst.reservation:
        problems.append(
            f"the weights need {worst.weights / GIB:.2f} GiB per GPU but only "
            f"{worst.reservation / GIB:.2f} GiB "
            f"is reserved ({device.usable_gib:.2f} GiB x {util:g})"
        )
        return problems
    limiting = min(stages, key=lambda s: s.num_blocks)
    if limiting.available_kv <= 0:
        problems.append(
            f"no memory is left for the KV cache: {limiting.reservation / GIB:.2f} GiB reserved, weights "
            f"{limiting.weights / GIB:.2f} GiB, profiling peak {limiting.activation_peak / GIB:.2f} GiB, "
            "other "
            f"{(limiting.non_torch + limiting.cudagraph) / GIB:.2f} GiB"
        )
        return problems
    max_len = plan.max_model_len or arch.max_model_len_limit
    if longest < max_len:
        needed = max_len * limiting.kv_bytes_per_token
        problems.append(
            f"one request of --max-model-len {max_len} needs {needed / GIB:.2f} GiB of KV cache per GPU "
            "but only "
            f"{limiting.available_kv / GIB:.2f} GiB is available (room for {longest} tokens)"
        )
    if max_len > arch.max_model_len_limit:
        problems.append(
            f"--max-model-len {max_len} exceeds the model's max_position_embeddings "
            f"({arch.max_position_embeddings}): set RoPE scaling (YaRN) in the model config, or lower it"
        )
    return problems


def _valid_tp_sizes(arch: Architecture, plan: Plan) -> list[int]:
    return [
        tp
        for tp in (1, 2, 4, 8)
        if not divisibility_problems(arch, replace(plan, tensor_parallel_size=tp, gpus_available=None))
    ]


def suggest_fixes(
    arch: Architecture, device: Device, plan: Plan, tensors: list[Tensor] | None, longest: int
) -> list[str]:
    """Re-size with the usual fixes and name those that make the plan fit."""

    def fits(candidate_arch: Architecture, candidate: Plan, inventory: list[Tensor] | None = tensors) -> bool:
        return size(candidate_arch, device, candidate, inventory, suggest=False).fits

    fixes = []
    base = replace(plan, gpus_available=None)
    if 0 < longest < (plan.max_model_len or 0) and fits(arch, replace(base, max_model_len=longest)):
        fixes.append(f"lower --max-model-len to {longest}")
    for tp in _valid_tp_sizes(arch, base):
        if tp > plan.tensor_parallel_size and fits(arch, replace(base, tensor_parallel_size=tp)):
            fixes.append(f"raise --tensor-parallel-size to {tp} ({tp * plan.pipeline_parallel_size} GPUs)")
            break
    if (
        arch.is_moe
        and not plan.enable_expert_parallel
        and fits(arch, replace(base, enable_expert_parallel=True))
    ):
        fixes.append("add --enable-expert-parallel")
    if not plan.kv_cache_dtype.startswith("fp8") and fits(arch, replace(base, kv_cache_dtype="fp8")):
        fixes.append("use --kv-cache-dtype fp8 (halves the KV cache per token)")
    if not arch.quantization.is_quantized:
        for flag, label in (("awq", "use an AWQ checkpoint (4-bit weights)"), ("fp8", "use FP8 weights")):
            quantized = with_quantization(arch, flag)
            if not divisibility_problems(quantized, base) and fits(quantized, base, None):
                fixes.append(label)
                break
    if plan.gpu_memory_utilization < 0.95 and fits(arch, replace(base, gpu_memory_utilization=0.95)):
        fixes.append("raise --gpu-memory-utilization to 0.95")
    if not fixes:
        fixes.append(
            "no single change fits: combine the fixes above or use a larger GPU (see qwen-infra recommend)"
        )
    return ["fix: " + fix for fix in fixes]


# --- recommender --------------------------------------------------------------------------------------


@dataclass
class Recommendation:
    gpu: str
    gpus: int
    plan: Plan
    result: SizingResult

    def as_dict(self) -> dict:
        return {
            "gpu": self.gpu,
            "gpus": self.gpus,
            "tensor_parallel_size": self.plan.tensor_parallel_size,
            "pipeline_parallel_size": self.plan.pipeline_parallel_size,
            "enable_expert_parallel": self.plan.enable_expert_parallel,
            "max_concurrency": self.result.max_concurrency,
            "kv_cache_tokens": self.result.kv_cache_tokens,
            "weights_gib_per_rank": self.result.weights_gib_per_rank,
            "vllm_args": self.plan.vllm_args(),
        }


def candidate_layouts(max_gpus: int) -> list[tuple[int, int]]:
    """(tp, pp) pairs in the order tried: by GPU count (1, 2, 4, 8, then whole 8-GPU nodes), and for
    one count the largest TP first (TP within a node, PP across nodes or when TP cannot divide)."""
    counts = [n for n in (1, 2, 4) if n <= max_gpus]
    counts += list(range(GPUS_PER_NODE, max_gpus + 1, GPUS_PER_NODE))
    layouts = []
    for gpus in counts:
        for tp in (8, 4, 2, 1):
            if gpus % tp == 0:
                layouts.append((tp, gpus // tp))
    return layouts


def recommend(
    arch: Architecture,
    *,
    max_model_len: int | None = None,
    concurrency: int = 1,
    gpus: list[str] | None = None,
    max_gpus: int = 32,
    kv_cache_dtype: str = "auto",
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
) -> list[Recommendation]:
    """For each GPU type, the smallest layout that fits `concurrency` requests of `max_model_len` tokens.
    Sorted by GPU count, then by the catalog's cost rank: the first entry is the recommendation."""
    if concurrency < 1:
        raise SizingError(f"--concurrency must be at least 1, not {concurrency}")
    names = gpus or list(GPUS)
    found = []
    for name in names:
        device = gpu_from_catalog(name)
        for tp, pp in candidate_layouts(max_gpus):
            options = [False, True] if arch.is_moe and tp > 1 else [False]
            hit = None
            for expert_parallel in options:
                plan = Plan(
                    tensor_parallel_size=tp,
                    pipeline_parallel_size=pp,
                    enable_expert_parallel=expert_parallel,
                    kv_cache_dtype=kv_cache_dtype,
                    max_model_len=max_model_len,
                    gpu_memory_utilization=gpu_memory_utilization,
                )
                result = size(arch, device, plan, suggest=False)
                if result.fits and result.max_concurrency >= concurrency:
                    hit = Recommendation(
                        device.name, tp * pp, replace(plan, max_model_len=result.max_model_len), result
                    )
                    break
            if hit:
                found.append(hit)
                break
    found.sort(key=lambda r: (r.gpus, GPUS[r.gpu]["cost_rank"]))
    return found


# --- the vram_check module's logic (pure, so it is tested without Ansible) -----------------------------


def not_checked(reason: str) -> dict:
    """Result for a host where the GPU memory check does not apply (no GPU, or vLLM on CPU)."""
    return {
        "checked": False,
        "fits": None,
        "msg": reason,
        "problems": [],
        "gpus": [],
    }


def check_host(
    arch: Architecture,
    plan: Plan,
    gpus: list | None = None,
    tensors: list[Tensor] | None = None,
    gpu_memory_bytes: int | None = None,
) -> dict:
    """Size `plan` on this host's GPUs (objects with name, usable_bytes and mig_mode, as
    nvidia_smi.parse_nvidia_smi_xml returns them) or on `gpu_memory_bytes` per GPU when given.

    The smallest of the GPUs the plan uses decides, since vLLM takes the minimum over ranks."""
    world = plan.world_size
    if gpu_memory_bytes is not None:
        if gpu_memory_bytes <= 0:
            raise SizingError(f"gpu_memory_bytes must be positive, not {gpu_memory_bytes}")
        device = Device(f"{gpu_memory_bytes / GIB:.2f} GiB GPU", gpu_memory_bytes)
        plan = replace(plan, gpus_available=plan.gpus_available or world)
        gpu_facts: list[dict] = []
    else:
        if not gpus:
            raise SizingError("no GPU was listed by nvidia-smi")
        used = sorted(gpus, key=lambda g: g.usable_bytes)[: min(world, len(gpus))]
        smallest = used[0]
        device = device_for(smallest.name, smallest.usable_bytes)
        plan = replace(plan, gpus_available=len(gpus))
        gpu_facts = [
            {"index": g.index, "name": g.name, "usable_gib": round(g.usable_bytes / GIB, 3)} for g in gpus
        ]
    result = size(arch, device, plan, tensors)
    mig = [g for g in (gpus or []) if str(getattr(g, "mig_mode", "") or "").lower() == "enabled"]
    if mig and gpu_memory_bytes is None:
        result.problems.append(
            "MIG is enabled on GPU(s) "
            + ", ".join(str(g.index) for g in mig)
            + ": vLLM sees the MIG slice, not "
            "the whole GPU; pass gpu_memory_bytes for the slice"
        )
        result.fits = False
    facts = result.as_dict()
    facts.update({"checked": True, "gpus": gpu_facts, "gpu": device.name})
    if result.fits:
        facts["msg"] = (
            f"{arch.name} fits {world} x {device.name} ({device.usable_gib:.2f} GiB usable): "
            f"{result.kv_cache_tokens:,} KV tokens, {result.max_concurrency:g}x concurrency at "
            f"{result.max_model_len:,} tokens"
        )
    else:
        facts["msg"] = (
            f"{arch.name} does not fit {world} x {device.name} ({device.usable_gib:.2f} GiB usable): "
            + "; ".join(result.problems)
        )
    return facts
