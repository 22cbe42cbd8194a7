"""The host-level verdict the vram_check module returns: size a plan on the GPUs a host reports (or on a
given memory per GPU), or say why the check does not apply there."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..nvidia_smi import GpuMemory
from ..units import GIB
from .architecture import Architecture
from .devices import Device, device_for
from .errors import SizingError
from .layout import Plan, shape_problems
from .memory import serving_headroom_problems
from .suggest import size_with_fixes
from .weights import Tensor


def not_checked(reason: str) -> dict[str, Any]:
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
    gpus: list[GpuMemory] | None = None,
    tensors: list[Tensor] | None = None,
    gpu_memory_bytes: int | None = None,
    *,
    gpu_memory_in_use: dict[int, int] | None = None,
    node_rank: int = 0,
) -> dict[str, Any]:
    """Size `plan` on this host's GPUs (objects with name, usable_bytes and mig_mode, as
    nvidia_smi.parse_nvidia_smi_xml returns them) or on `gpu_memory_bytes` per GPU when given.

    The smallest of the GPUs the plan uses decides, since vLLM takes the minimum over ranks. A plan over
    several nodes (plan.nnodes) needs gpus / nnodes of this host's GPUs; every stage is sized on GPUs like
    these (the group's KV cache is the minimum over all its stages, as vLLM takes it), which is what the
    planner computes for nodes of one type, and `node_rank` names the stages this host holds.
    `gpu_memory_in_use` (GPU index -> bytes held by other processes, e.g. another server) is taken off
    those GPUs: the plan must fit, with what vLLM holds beyond its reservation while serving, in the
    rest."""
    world = plan.gpus_per_node if plan.gpus % plan.nnodes == 0 else plan.gpus
    if gpu_memory_bytes is not None:
        if gpu_memory_bytes <= 0:
            raise SizingError(f"gpu_memory_bytes must be positive, not {gpu_memory_bytes}")
        device = Device(f"{gpu_memory_bytes / GIB:.2f} GiB GPU", gpu_memory_bytes)
        plan = replace(plan, gpus_available=plan.gpus_available or world)
        gpu_facts: list[dict[str, Any]] = []
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
    result = size_with_fixes(arch, device, plan, tensors)
    mig = [g for g in (gpus or []) if str(getattr(g, "mig_mode", "") or "").lower() == "enabled"]
    if mig and gpu_memory_bytes is None:
        result.problems.append(
            "MIG is enabled on GPU(s) "
            + ", ".join(str(g.index) for g in mig)
            + ": vLLM sees the MIG slice, not "
            "the whole GPU; pass gpu_memory_bytes for the slice"
        )
        result.fits = False
    if result.fits and gpu_memory_in_use and gpu_memory_bytes is None:
        problems = _shared_gpu_problems(plan, result.breakdown, gpus or [], gpu_memory_in_use)
        if problems:
            result.problems.extend(problems)
            result.fits = False
    facts = result.as_dict()
    facts.update({"checked": True, "gpus": gpu_facts, "gpu": device.name})
    where = f"{world} x {device.name}"
    if plan.nnodes > 1:
        node = node_share(plan, result.breakdown, node_rank)
        facts["node"] = node
        where = (
            f"{plan.nnodes} nodes of {where} (node {node_rank} holds pipeline stage(s) "
            f"{', '.join(map(str, node['stages']))}: layers {node['layers'][0]}-{node['layers'][1] - 1})"
        )
    if result.fits:
        facts["msg"] = (
            f"{arch.name} fits {where} ({device.usable_gib:.2f} GiB usable): "
            f"{result.kv_cache_tokens:,} KV tokens, {result.max_concurrency:g}x concurrency at "
            f"{result.max_model_len:,} tokens"
        )
    elif shape_problems(arch, plan):  # the layout itself, not the memory, is what vLLM refuses
        facts["msg"] = f"{arch.name} cannot be served with these settings: " + "; ".join(result.problems)
    else:
        facts["msg"] = f"{arch.name} does not fit {where} ({device.usable_gib:.2f} GiB usable): " + "; ".join(
            result.problems
        )
    return facts


def node_share(plan: Plan, breakdown: dict[str, Any] | None, node_rank: int) -> dict[str, Any]:
    """What node `node_rank` of a multi-node plan holds: its pipeline stages, their layers [first, end)
    and their memory per GPU (from the sizing's per-stage breakdown)."""
    stages = plan.node_stages(node_rank)
    sized = [stage for stage in (breakdown or {}).get("stages", []) if stage["stage"] in stages]
    layers = [layer for stage in sized for layer in stage["layers"]]
    return {
        "rank": node_rank,
        "gpus": plan.gpus_per_node,
        "stages": stages,
        "layers": [min(layers), max(layers)] if layers else [0, 0],
        "stage_memory": sized,
    }


def _shared_gpu_problems(
    plan: Plan, breakdown: dict[str, Any], gpus: list[GpuMemory], in_use: dict[int, int]
) -> list[str]:
    """Refusals for GPUs another process already holds memory on: vLLM would start (its own check
    compares free memory with the reservation only), then run out of memory while serving."""
    stage = max(breakdown["stages"], key=lambda s: s["reservation_gib"] + s["outside_reservation_gib"])
    problems = []
    for gpu in sorted(gpus, key=lambda g: g.usable_bytes)[: plan.gpus_per_node]:
        held = in_use.get(gpu.index, 0)
        if held <= 0:
            continue
        problems += serving_headroom_problems(
            gpu.usable_bytes - held,
            plan,
            reservation=int(stage["reservation_gib"] * GIB),
            outside=int(stage["outside_reservation_gib"] * GIB),
            parts={k: int(v * GIB) for k, v in stage["outside_reservation_parts_gib"].items()},
            holder=f"GPU {gpu.index}, where other processes hold {held / GIB:.2f} GiB,",
        )
    return problems
