"""The parallel layout being sized (Plan: TP, PP, expert parallelism and the vLLM arguments that move
memory) and the divisibility rules vLLM enforces when it builds the model."""

from __future__ import annotations

from dataclasses import dataclass

from .architecture import Architecture
from .errors import SizingError
from .vllm_rules import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_VLLM_RELEASE,
    GPUS_PER_NODE,
    KV_CACHE_DTYPES,
    Release,
    release_rules,
)


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
    # Replicas of the TP x PP group; with expert parallelism the experts spread over TP x DP ranks.
    data_parallel_size: int = 1
    enable_expert_parallel: bool = False
    kv_cache_dtype: str = "auto"
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    block_size: int = DEFAULT_BLOCK_SIZE
    enforce_eager: bool = False
    # Whether vLLM subtracts its CUDA-graph estimate from the KV budget. None: as the release
    # `vllm_version` does for this model (vllm_rules.RELEASES); the regression cases from releases before
    # v0.21, which did not, say False.
    cudagraph_in_budget: bool | None = None
    # The vLLM release being modelled (its accounting rules: vllm_rules.release_rules).
    vllm_version: str = DEFAULT_VLLM_RELEASE
    # Accounting rules to model instead of vllm_version's: the fitting procedure (tools/sizing_fit.py)
    # sizes the regression cases with candidate constants through the engine itself.
    rules: Release | None = None
    # GPUs the host offers (None: exactly the GPUs the plan uses). With nnodes > 1, the GPUs of one node.
    gpus_available: int | None = None
    # Hosts the plan spans (vLLM's --nnodes): each holds gpus / nnodes GPUs, whole pipeline stages.
    nnodes: int = 1

    @property
    def release(self) -> Release:
        """The accounting rules being modelled: `rules` when given, else vllm_version's release."""
        return self.rules or release_rules(self.vllm_version)

    @property
    def world_size(self) -> int:
        """GPUs of one replica (its TP x PP group)."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def gpus(self) -> int:
        """GPUs the whole plan uses: every data-parallel replica's group."""
        return self.world_size * self.data_parallel_size

    @property
    def gpus_per_node(self) -> int:
        """GPUs of the plan on each of its nodes."""
        return self.gpus // self.nnodes

    def node_stages(self, node_rank: int) -> list[int]:
        """The pipeline stages node `node_rank` holds. vLLM numbers ranks TP fastest, then PP, then DP,
        and gives node k the ranks k x gpus_per_node onwards."""
        per_node = self.gpus_per_node
        ranks = range(node_rank * per_node, (node_rank + 1) * per_node)
        return sorted({(rank % self.world_size) // self.tensor_parallel_size for rank in ranks})

    @property
    def expert_parallel_size(self) -> int:
        """Ranks the experts are spread over with --enable-expert-parallel (1 without it)."""
        return self.tensor_parallel_size * self.data_parallel_size if self.enable_expert_parallel else 1


def validate_plan(plan: Plan) -> None:
    """Arguments no layout can make sense of (the CLI's exit status 2)."""
    if not 0 < plan.gpu_memory_utilization <= 1:
        raise SizingError(f"--gpu-memory-utilization must be in (0, 1], not {plan.gpu_memory_utilization}")
    for flag, value in (
        ("--tensor-parallel-size", plan.tensor_parallel_size),
        ("--pipeline-parallel-size", plan.pipeline_parallel_size),
        ("--data-parallel-size", plan.data_parallel_size),
        ("--block-size", plan.block_size),
        ("--nnodes", plan.nnodes),
    ):
        if value < 1:
            raise SizingError(f"{flag} must be at least 1, not {value}")
    for flag, optional in (
        ("--max-model-len", plan.max_model_len),
        ("--max-num-seqs", plan.max_num_seqs),
        ("--max-num-batched-tokens", plan.max_num_batched_tokens),
    ):
        if optional is not None and optional < 1:
            raise SizingError(f"{flag} must be a positive number, not {optional}")
    if plan.kv_cache_dtype not in KV_CACHE_DTYPES:
        raise SizingError(
            f"--kv-cache-dtype {plan.kv_cache_dtype!r} is not one vLLM knows ({', '.join(KV_CACHE_DTYPES)})"
        )


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
    if plan.gpus % plan.nnodes:
        problems.append(
            f"tensor x pipeline x data parallel size = {plan.gpus} GPUs cannot be split evenly over "
            f"--nnodes {plan.nnodes}"
        )
    elif plan.gpus_per_node % tp:
        problems.append(
            f"--tensor-parallel-size {tp} does not fit the {plan.gpus_per_node} GPU(s) of each of the "
            f"--nnodes {plan.nnodes} nodes: keep TP within a node and use --pipeline-parallel-size across "
            "nodes"
        )
    elif plan.gpus_available is not None and plan.gpus_per_node > plan.gpus_available:
        share = (
            f"{plan.gpus} GPUs"
            if plan.nnodes == 1
            else f"{plan.gpus_per_node} GPUs per node ({plan.gpus} over --nnodes {plan.nnodes})"
        )
        problems.append(
            f"tensor x pipeline x data parallel size = {share}, but {plan.gpus_available} are "
            "available: lower the parallel sizes or add GPUs"
        )
    problems += _mlp_split_problems(arch, plan)
    return problems


def context_problems(arch: Architecture, plan: Plan) -> list[str]:
    """A context longer than the model's positions: vLLM refuses it without RoPE scaling."""
    if plan.max_model_len is None or plan.max_model_len <= arch.max_model_len_limit:
        return []
    scaling = (
        f"its RoPE scaling allows {arch.max_model_len_limit}"
        if arch.rope_scaling_factor
        else "set RoPE scaling (YaRN) in the model's config.json to go further"
    )
    return [
        f"--max-model-len {plan.max_model_len} exceeds the model's {arch.max_model_len_limit} positions "
        f"(max_position_embeddings {arch.max_position_embeddings}; {scaling})"
    ]


def shape_problems(arch: Architecture, plan: Plan) -> list[str]:
    """Everything wrong with a plan that needs no GPU memory to see: divisibility and context length."""
    return divisibility_problems(arch, plan) + context_problems(arch, plan)


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
        ep = plan.expert_parallel_size
        if arch.num_experts % ep:
            problems.append(
                f"{arch.num_experts} experts cannot be spread evenly over {ep} expert-parallel ranks"
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
