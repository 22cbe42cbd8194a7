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
    """Try each single change and name those that make the plan fit: the largest context, the nearest
    tensor-parallel size that divides the model, expert parallelism, an FP8 KV cache, quantized weights,
    a higher utilisation. "No single change fits" only when none of them does."""

    def fits(candidate_arch: Architecture, candidate: Plan, inventory: list[Tensor] | None = tensors) -> bool:
        return size(candidate_arch, device, candidate, inventory).fits

    fixes = []
    base = replace(plan, gpus_available=None)
    context = _longest_context_that_fits(arch, device, base, tensors, longest)
    if context:
        fixes.append(f"lower --max-model-len to {context}")
    tp_now, others = plan.tensor_parallel_size, plan.pipeline_parallel_size * plan.data_parallel_size
    for tp in sorted(_valid_tp_sizes(arch, base), key=lambda tp: (abs(tp - tp_now), tp)):
        if tp != tp_now and fits(arch, replace(base, tensor_parallel_size=tp)):
            verb = "raise" if tp > tp_now else "lower"
            fixes.append(f"{verb} --tensor-parallel-size to {tp} ({tp * others} GPUs)")
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
    lowered = _highest_lower_utilization_that_fits(arch, device, base, tensors)
    if lowered is not None:
        fixes.append(f"lower --gpu-memory-utilization to {lowered:g} (room to serve)")
    if not fixes:
        fixes.append(
            "no single change fits: combine the fixes above or use a larger GPU (see qwen-infra recommend)"
        )
    return ["fix: " + fix for fix in fixes]


def _highest_lower_utilization_that_fits(
    arch: Architecture, device: Device, plan: Plan, tensors: list[Tensor] | None
) -> float | None:
    """A reservation too large leaves no room for the memory vLLM holds outside it while serving;
    the highest lower utilisation (in steps of 0.01, down to 0.5) that still holds the context."""
    hundredths = round(plan.gpu_memory_utilization * 100)
    for step in range(hundredths - 1, 49, -1):
        if size(arch, device, replace(plan, gpu_memory_utilization=step / 100), tensors).fits:
            return step / 100
    return None


def _longest_context_that_fits(
    arch: Architecture, device: Device, plan: Plan, tensors: list[Tensor] | None, longest: int
) -> int | None:
    """The largest --max-model-len below the one asked for that fits this layout, or None."""
    wanted = plan.max_model_len or arch.max_model_len_limit
    capped = min(wanted, arch.max_model_len_limit)
    if capped < wanted:  # beyond the model's positions: the longest the model and the memory allow
        at_limit = size(arch, device, replace(plan, max_model_len=capped), tensors)
        if at_limit.fits:
            return capped
        longest = at_limit.max_model_len_that_fits
    if 0 < longest < wanted and size(arch, device, replace(plan, max_model_len=longest), tensors).fits:
        return longest
    return None


def size_with_fixes(
    arch: Architecture, device: Device, plan: Plan | None = None, tensors: list[Tensor] | None = None
) -> SizingResult:
    """size(), and when the plan does not fit, the changes that would make it fit ("fix: ..." lines)."""
    result = size(arch, device, plan, tensors)
    if not result.fits:
        sized = replace(plan or Plan(), max_model_len=result.max_model_len)
        result.problems += suggest_fixes(arch, device, sized, tensors, result.max_model_len_that_fits)
    return result
