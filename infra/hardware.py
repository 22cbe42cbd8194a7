"""Choose the instance type and count: the cheapest catalog layout the sizing engine says fits.

No Pulumi here: `python infra/plan.py` runs the same choice without a cloud account. The sizing engine
(qwen_infra.sizing) alone decides whether a layout fits; this module only enumerates what AWS sells
(qwen_infra.catalogs.aws_instances) in price order and maps the engine's plan onto whole instances.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from config import StackConfig
from qwen_infra.catalogs import aws_instances
from qwen_infra.server import ServerConfig, from_plan
from qwen_infra.sizing import architecture
from qwen_infra.sizing.architecture import Architecture, with_quantization
from qwen_infra.sizing.devices import gpu_from_catalog
from qwen_infra.sizing.errors import SizingError
from qwen_infra.sizing.layout import Plan
from qwen_infra.sizing.memory import SizingResult, size
from qwen_infra.sizing.suggest import size_with_fixes
from qwen_infra.sizing.weights import Tensor, model_tensors

TP_SIZES = (8, 4, 2, 1)


class HardwareError(ValueError):
    """No hardware in the catalog serves the model as configured."""


@dataclass(frozen=True)
class Selection:
    """The chosen hardware and the vLLM layout that runs on it."""

    instance_type: str
    nodes: int
    model: str
    quantization: str | None  # --quantization for online quantization; None: the checkpoint decides
    plan: Plan
    result: SizingResult

    @property
    def instance(self) -> aws_instances.InstanceEntry:
        return aws_instances.INSTANCES[self.instance_type]

    @property
    def usd_per_hour(self) -> float | None:
        price = self.instance["usd_per_hour"]
        return None if price is None else price * self.nodes

    def server(self, model: str, served_model_name: str, port: int) -> ServerConfig:
        """The vLLM server that runs this layout: the one description every host's unit is built from."""
        return from_plan(
            self.plan,
            model=model,
            served_model_name=served_model_name,
            port=port,
            quantization=self.quantization,
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready description, exported as the stack's `hardware` output."""
        entry = self.instance
        return {
            "instance_type": self.instance_type,
            "nodes": self.nodes,
            "gpu": entry["gpu"],
            "gpus_per_node": entry["gpus"],
            "efa_interfaces_per_node": entry["efa_interfaces"],
            "nvswitch": entry["nvswitch"],
            "usd_per_hour_per_node": entry["usd_per_hour"],
            "usd_per_hour": self.usd_per_hour,
            "price_region": aws_instances.PRICE_REGION,
            "price_date": entry["price_date"],
            "price_status": entry["price_status"],
            "price_source": entry["price_source"],
            "tensor_parallel_size": self.plan.tensor_parallel_size,
            "pipeline_parallel_size": self.plan.pipeline_parallel_size,
            "nnodes": self.plan.nnodes,
            "enable_expert_parallel": self.plan.enable_expert_parallel,
            "max_model_len": self.result.max_model_len,
            "max_concurrency": self.result.max_concurrency,
            "kv_cache_tokens": self.result.kv_cache_tokens,
            "weights_gib_per_gpu": self.result.weights_gib_per_rank,
        }


def resolve_model(config: StackConfig) -> tuple[Architecture, str | None]:
    """The model's architecture at the configured precision, and the online --quantization flag."""
    try:
        arch, _ = architecture.resolve_model(config.model)
        quantized = with_quantization(arch, config.quantization_flag)
    except SizingError as error:
        raise HardwareError(f"qwen-infra:model / precision: {error}") from None
    online = config.quantization_flag if quantized.quantization != arch.quantization else None
    return quantized, online


def _price(pair: tuple[str, int]) -> tuple[float, int]:
    """Sort key: total on-demand price per hour (unpriced types last), then fewer nodes."""
    name, nodes = pair
    return (aws_instances.INSTANCES[name]["usd_per_hour"] or math.inf) * nodes, nodes


def _candidates(config: StackConfig, offered: set[str] | None) -> list[tuple[str, int]]:
    """(instance type, nodes) pairs allowed by the configuration, cheapest first."""
    if config.instance_type:
        names = [config.instance_type]
    else:
        names = list(config.instance_types or aws_instances.INSTANCES)
    gpus = {gpu_from_catalog(gpu).name for gpu in config.gpu_types}
    pairs = []
    for name in names:
        entry = aws_instances.INSTANCES[name]
        if (gpus and entry["gpu"] not in gpus) or (offered is not None and name not in offered):
            continue
        if entry["usd_per_hour"] is None and not config.instance_type:
            continue  # no published price to rank it by: only used when named explicitly
        # Pipeline stages on several hosts need the EFA fabric; without it, stay on one host.
        most = config.max_nodes if entry["efa_interfaces"] else 1
        counts = [config.instance_count] if config.instance_count else range(1, most + 1)
        pairs += [(name, nodes) for nodes in counts]
    return sorted(pairs, key=_price)


def _plans(arch: Architecture, config: StackConfig, gpus_per_node: int, nodes: int) -> Iterator[Plan]:
    """vLLM layouts that use every GPU of `nodes` hosts: the largest TP a host can hold, PP over the
    rest (TP stays inside a host's NVLink/PCIe domain); MoE models also try expert parallelism."""
    for tp in (t for t in TP_SIZES if t <= gpus_per_node and gpus_per_node % t == 0):
        for expert_parallel in (False, True) if arch.is_moe and tp > 1 else (False,):
            yield Plan(
                tensor_parallel_size=tp,
                pipeline_parallel_size=nodes * gpus_per_node // tp,
                enable_expert_parallel=expert_parallel,
                kv_cache_dtype=config.kv_cache_dtype,
                max_model_len=config.max_model_len or None,
                # vLLM's native multi-node launch: each host holds nodes-th of the stages
                nnodes=nodes,
            )


def _fits(
    arch: Architecture, config: StackConfig, name: str, nodes: int, tensors: list[Tensor]
) -> tuple[Plan, SizingResult] | None:
    entry = aws_instances.INSTANCES[name]
    device = gpu_from_catalog(entry["gpu"])
    for plan in _plans(arch, config, entry["gpus"], nodes):
        result = size(arch, device, plan, tensors)
        if result.fits and result.max_concurrency >= config.concurrency:
            return replace(plan, max_model_len=result.max_model_len), result
    return None


def select(config: StackConfig, offered: set[str] | None = None) -> Selection:
    """The cheapest (instance type, nodes) that fits; `offered` is what the availability zone sells
    (None: do not filter). HardwareError says why nothing fits and what would."""
    arch, online = resolve_model(config)
    tensors = model_tensors(arch)  # computed once, reused by every size() below
    for name, nodes in _candidates(config, offered):
        hit = _fits(arch, config, name, nodes, tensors)
        if hit:
            return Selection(name, nodes, arch.name, online, *hit)
    raise HardwareError(_refusal(arch, config, offered, tensors))


def _refusal(arch: Architecture, config: StackConfig, offered: set[str] | None, tensors: list[Tensor]) -> str:
    wanted = (
        f"{arch.name} ({arch.quantization.label()}) with {config.concurrency} concurrent request(s) of "
        f"{config.max_model_len or arch.max_model_len_limit} tokens"
    )
    if offered is not None and (anywhere := _candidates(config, None)):
        for name, nodes in anywhere:
            if name not in offered and _fits(arch, config, name, nodes, tensors):
                return (
                    f"{wanted} fits {nodes} x {name}, but availability zone {config.availability_zone} does "
                    f"not offer it (it offers {', '.join(sorted(offered)) or 'none of the catalog types'}): "
                    "choose another qwen-infra:availabilityZone"
                )
    pairs = _candidates(config, None)
    if not pairs:
        return f"{wanted}: the instance filters (instanceType, instanceTypes, gpuTypes) leave no catalog type"
    name, nodes = max(pairs, key=lambda p: _gpu_bytes(*p))
    entry = aws_instances.INSTANCES[name]
    device = gpu_from_catalog(entry["gpu"])
    plan = next(_plans(arch, config, entry["gpus"], nodes))
    result = size_with_fixes(arch, device, plan, tensors)
    if result.fits:
        detail = (
            f"it fits, but its KV cache holds only {result.max_concurrency:g} such requests: lower "
            "concurrency or maxModelLen, set kvCacheDtype fp8, or raise maxNodes"
        )
    else:
        detail = "the sizing engine says: " + "; ".join(result.problems)
    return (
        f"{wanted} fits no catalog hardware allowed by this stack (up to {config.max_nodes} nodes). On the "
        f"largest, {nodes} x {name} ({nodes * entry['gpus']} x {entry['gpu']}), {detail}"
    )


def _gpu_bytes(name: str, nodes: int) -> int:
    entry = aws_instances.INSTANCES[name]
    return nodes * entry["gpus"] * gpu_from_catalog(entry["gpu"]).usable_bytes
