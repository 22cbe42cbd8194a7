"""Fixes for a plan that does not fit: each candidate change is re-sized, and only those that fit are
named, so a suggestion is always true."""

from __future__ import annotations

from dataclasses import replace

from .architecture import Architecture, with_quantization
from .devices import Device
from .layout import Plan, divisibility_problems
from .memory import SizingResult, size
from .weights import Tensor


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
        return size(candidate_arch, device, candidate, inventory).fits

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


def size_with_fixes(
    arch: Architecture, device: Device, plan: Plan | None = None, tensors: list[Tensor] | None = None
) -> SizingResult:
    """size(), and when the plan does not fit, the changes that would make it fit ("fix: ..." lines)."""
    result = size(arch, device, plan, tensors)
    if not result.fits:
        sized = replace(plan or Plan(), max_model_len=result.max_model_len)
        result.problems += suggest_fixes(arch, device, sized, tensors, result.max_model_len_that_fits)
    return result
