"""The recommender: for each GPU type, the smallest layout that serves a model at a context length and
concurrency (what `qwen-infra recommend` prints)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..catalogs.gpus import GPUS
from .architecture import Architecture
from .devices import gpu_from_catalog
from .errors import SizingError
from .layout import Plan
from .memory import SizingResult, size
from .vllm_rules import DEFAULT_GPU_MEMORY_UTILIZATION, GPUS_PER_NODE


@dataclass
class Recommendation:
    gpu: str
    gpus: int
    plan: Plan
    result: SizingResult

    def as_dict(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu,
            "gpus": self.gpus,
            "tensor_parallel_size": self.plan.tensor_parallel_size,
            "pipeline_parallel_size": self.plan.pipeline_parallel_size,
            "enable_expert_parallel": self.plan.enable_expert_parallel,
            "max_concurrency": self.result.max_concurrency,
            "kv_cache_tokens": self.result.kv_cache_tokens,
            "weights_gib_per_rank": self.result.weights_gib_per_rank,
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
                result = size(arch, device, plan)
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
