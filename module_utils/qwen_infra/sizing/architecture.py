"""Model shapes: the facts of a checkpoint that decide its memory, from config.json (or the catalog),
its quantization config, and what a --quantization flag changes."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..catalogs.models import AWQ_W4_G128, GPTQ_W4_G128, MODELS, QUANTIZATION_SUFFIXES, QUANTIZED_VARIANTS
from .errors import SizingError

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


def parse_quantization_config(config: dict[str, Any] | None) -> QuantConfig:
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


def _parse_compressed_tensors(config: dict[str, Any]) -> QuantConfig:
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


def _first(config: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return default


def architecture_from_config(config: dict[str, Any], name: str = "") -> Architecture:
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


def catalog_config(name: str) -> dict[str, Any]:
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
FLAG_QUANTIZATION: dict[str, dict[str, Any]] = {
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
