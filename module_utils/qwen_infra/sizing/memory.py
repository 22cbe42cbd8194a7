"""The accounting itself: per pipeline stage, the reservation, weights, profiling peak, non-torch memory,
CUDA-graph estimate and paged KV cache, as vLLM computes them at start-up; size() and what does not fit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..units import GIB
from .architecture import Architecture
from .devices import Device, default_batch_budget
from .errors import SizingError
from .layout import Plan, pp_layer_ranges, shape_problems, validate_plan
from .vllm_rules import (
    CUDA_CONTEXT_BYTES,
    FUSED_MOE_CHUNK_TOKENS,
    HIDDEN_BUFFERS,
    MAX_CUDAGRAPH_CAPTURE_SIZE,
    MLP_BUFFERS,
    NCCL_COMMUNICATOR_BYTES,
    SORTING_SAMPLER_BYTES_PER_LOGIT,
)
from .weights import Tensor, model_tensors, weights_per_stage

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


def cudagraph_in_budget(arch: Architecture, plan: Plan) -> bool:
    """Whether vLLM subtracts its CUDA-graph estimate from the KV budget for this model and release."""
    if plan.enforce_eager:
        return False
    if plan.cudagraph_in_budget is not None:
        return plan.cudagraph_in_budget
    rules = plan.release
    return rules.cudagraph_in_budget_moe if arch.is_moe else rules.cudagraph_in_budget_dense


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
    # Held beyond the reservation while serving (vLLM does not count it), with its parts.
    outside_reservation: int = 0
    outside_parts: dict[str, int] = field(default_factory=dict)

    def as_gib(self) -> dict[str, Any]:
        def gib(nbytes: int) -> float:
            return round(nbytes / GIB, 3)

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
            "outside_reservation_gib": gib(self.outside_reservation),
            "outside_reservation_parts_gib": {k: gib(v) for k, v in self.outside_parts.items()},
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
    breakdown: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
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
    rules = plan.release
    per_logit = rules.sampler_bytes_per_logit_moe if arch.is_moe else rules.sampler_bytes_per_logit_dense
    dense, moe = forward_bytes_per_token(arch, plan, start, end)
    forward = batched * dense + min(batched, FUSED_MOE_CHUNK_TOKENS) * moe if end > start else 0
    sampler = 0
    if last:
        rows = min(seqs, batched)
        # The hidden states of the whole batch stay alive while the sampler runs on the last rows.
        sampler = rows * arch.vocab_size * per_logit + batched * arch.hidden_size * act
    peak = max(forward, sampler)
    graphs, graph_pool = 0, 0
    if cudagraph_in_budget(arch, plan):
        capture = min(2 * seqs, MAX_CUDAGRAPH_CAPTURE_SIZE)
        graphs = 2 * len(cudagraph_capture_sizes(capture)) * rules.cudagraph_bytes_per_capture + capture * (
            dense + moe
        )
    elif not plan.enforce_eager:
        graph_pool = (end - start) * rules.cudagraph_pool_bytes_per_layer
    # Beyond the reservation while serving: the CUDA context and runtime allocations, graphs captured
    # outside the budget, and the sampler's top-k/top-p path where the profiling run skipped it.
    runtime_sampler = 0
    if last and per_logit < SORTING_SAMPLER_BYTES_PER_LOGIT:
        runtime_sampler = min(seqs, batched) * arch.vocab_size * SORTING_SAMPLER_BYTES_PER_LOGIT
    reservation = int(device.usable_bytes * plan.gpu_memory_utilization)
    non_torch = rules.non_torch_profile_bytes
    if (plan.world_size > 1 or plan.expert_parallel_size > 1) and device.nvlink:
        non_torch += NCCL_COMMUNICATOR_BYTES
    available = reservation - weights - peak - non_torch - graphs
    per_token = kv_bytes_per_token(arch, plan, end - start)
    blocks = max(0, available // (plan.block_size * per_token)) if per_token else 0
    return StageMemory(
        stage, span, weights, peak, forward, sampler, non_torch, graphs, reservation,
        available, per_token, blocks, rules.serving_overhead_bytes + graph_pool + runtime_sampler,
        {"context_and_runtime": rules.serving_overhead_bytes, "cudagraph_pool": graph_pool,
         "sampler": runtime_sampler},
    )  # fmt: skip


def size(
    arch: Architecture,
    device: Device,
    plan: Plan | None = None,
    tensors: list[Tensor] | None = None,
) -> SizingResult:
    """Size `arch` on GPUs like `device` with the vLLM arguments in `plan`.

    `tensors` are the checkpoint's real tensors (checkpoint_tensors()) when known; otherwise they are
    computed from the architecture. suggest.size_with_fixes() adds the changes that would make a plan
    that does not fit fit.
    """
    plan = plan or Plan()
    validate_plan(plan)
    if device.usable_bytes <= 0:
        raise SizingError(
            f"{device.name}: usable memory per GPU must be positive, not {device.usable_bytes} bytes"
        )
    default_tokens, default_seqs = default_batch_budget(device)
    plan = replace(
        plan,
        max_model_len=plan.max_model_len or arch.max_model_len_limit,
        max_num_batched_tokens=plan.max_num_batched_tokens or default_tokens,
        max_num_seqs=plan.max_num_seqs or default_seqs,
    )
    problems = shape_problems(arch, plan)
    inventory = tensors if tensors is not None else model_tensors(arch)
    # A pipeline longer than the model's layers is refused above; its stages are sized as the longest
    # pipeline the model has (a layer each), so that a size of millions answers at once instead of
    # building millions of empty stages.
    staged = replace(plan, pipeline_parallel_size=min(plan.pipeline_parallel_size, max(1, arch.num_layers)))
    weights = weights_per_stage(arch, inventory, staged)
    spans = pp_layer_ranges(arch.num_layers, staged.pipeline_parallel_size)
    stages = [
        _stage_memory(arch, staged, device, stage=i, span=span, weights=weights[i], last=i == len(spans) - 1)
        for i, span in enumerate(spans)
    ]
    limiting = min(stages, key=lambda s: s.num_blocks)
    num_blocks = limiting.num_blocks
    tokens = num_blocks * plan.block_size
    max_len = plan.max_model_len or arch.max_model_len_limit
    # One block is held back (the KV manager's null block), so one request can use one block less.
    longest = min(max(0, num_blocks - 1) * plan.block_size, arch.max_model_len_limit)

    # With a shape vLLM refuses, the memory arithmetic answers a question nobody asked: say the shape.
    if not problems:
        problems += _memory_problems(arch, device, plan, stages, longest)
    fits = not problems

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
        "gpus": plan.gpus,
        "vllm_version": plan.release.version,
        "plan": {
            "tensor_parallel_size": plan.tensor_parallel_size,
            "pipeline_parallel_size": plan.pipeline_parallel_size,
            "data_parallel_size": plan.data_parallel_size,
            "enable_expert_parallel": plan.enable_expert_parallel,
            "kv_cache_dtype": plan.kv_cache_dtype,
            "max_model_len": max_len,
            "max_num_seqs": plan.max_num_seqs,
            "max_num_batched_tokens": plan.max_num_batched_tokens,
            "gpu_memory_utilization": plan.gpu_memory_utilization,
            "block_size": plan.block_size,
            "cudagraph_in_budget": cudagraph_in_budget(arch, plan),
        },
        "weights_source": "safetensors headers" if tensors is not None else "config.json",
        "outside_reservation_gib": round(max(s.outside_reservation for s in stages) / GIB, 3),
        "limiting_stage": limiting.stage,
        "stages": [s.as_gib() for s in stages],
    }
    return result


def serving_headroom_problems(
    free_bytes: int,
    plan: Plan,
    *,
    reservation: int,
    outside: int,
    parts: dict[str, int],
    holder: str = "the GPU",
) -> list[str]:
    """vLLM starts when `free_bytes` cover its reservation, then holds `outside` more while serving (the
    CUDA context, CUDA graphs the release does not count, the sampler's top-k/top-p path its profiling
    skipped): refuse the plan if that would not fit, rather than let it run out of memory later."""
    needed = reservation + outside
    if needed <= free_bytes:
        return []
    named = ", ".join(f"{name.replace('_', ' ')} {value / GIB:.2f}" for name, value in parts.items() if value)
    per_unit = reservation / plan.gpu_memory_utilization
    ceiling = max(0.0, math.floor((free_bytes - outside) / per_unit * 100) / 100)
    return [
        f"--gpu-memory-utilization {plan.gpu_memory_utilization:g} reserves {reservation / GIB:.2f} GiB per "
        f"GPU and vLLM {plan.release.version} holds about {outside / GIB:.2f} GiB more "
        f"while serving ({named} GiB), {needed / GIB:.2f} GiB in all, but {holder} has "
        f"{free_bytes / GIB:.2f} GiB: it would run out of memory under load; lower "
        f"--gpu-memory-utilization to {ceiling:g}"
    ]


def _stage_headroom(
    free_bytes: int, plan: Plan, stages: list[StageMemory], holder: str = "the GPU"
) -> list[str]:
    stage = max(stages, key=lambda s: s.reservation + s.outside_reservation)
    return serving_headroom_problems(
        free_bytes,
        plan,
        reservation=stage.reservation,
        outside=stage.outside_reservation,
        parts=stage.outside_parts,
        holder=holder,
    )


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
    else:
        problems += _stage_headroom(device.usable_bytes, plan, stages)
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
    return problems
