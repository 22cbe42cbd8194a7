"""The weight inventory: every tensor of a checkpoint (computed from the architecture, or read exactly
from safetensors headers), how vLLM splits it over TP ranks, and the bytes each pipeline stage holds."""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..units import MIB
from .architecture import Architecture, QuantConfig
from .errors import SizingError
from .layout import Plan, pp_layer_ranges
from .vllm_rules import VOCAB_PADDING

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

        def add(
            name: str, nbytes: int, split: str, expert: int | None = None, *, _p: str = p, _layer: int = layer
        ) -> None:
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


def read_safetensors_header(path: str | Path) -> dict[str, dict[str, Any]]:
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


def _vocab_fraction(vocab: int, tp: int) -> float:
    padded = math.ceil(vocab / VOCAB_PADDING) * VOCAB_PADDING
    return math.ceil(padded / tp) / vocab


def weights_per_stage(arch: Architecture, tensors: list[Tensor], plan: Plan) -> list[int]:
    """Weight bytes held by one TP rank of each pipeline stage (TP ranks are symmetric)."""
    tp = plan.tensor_parallel_size
    ranges = pp_layer_ranges(arch.num_layers, plan.pipeline_parallel_size)
    last = len(ranges) - 1
    ep = plan.expert_parallel_size if arch.is_moe else 1
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
