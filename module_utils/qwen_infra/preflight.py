"""What the vram_check module answers before a unit changes: will this server, as described, start on
this host with this model? Pure functions over facts the module gathered (config.json, the GPUs).

Everything that needs no GPU memory is checked on every host, GPU or not: the settings, the model's
shape against the parallel sizes and the context length, the quantization against the checkpoint, the
dtype against the GPU generation. The memory arithmetic runs where GPUs (or a given memory per GPU)
are known; elsewhere the verdict says it was not checked.
"""

from __future__ import annotations

import re
from typing import Any

from .nvidia_smi import GpuMemory
from .server import FIELD_NAMES, ServerConfig, flag, sizing_plan, sizing_quantization, variable
from .sizing.architecture import Architecture, with_quantization
from .sizing.devices import Device
from .sizing.errors import SizingError
from .sizing.layout import Plan, shape_problems
from .sizing.report import check_host, not_checked
from .sizing.suggest import suggest_fixes
from .sizing.vllm_rules import QUANTIZATIONS
from .sizing.weights import Tensor

# GPU generations (nvidia-smi's product_architecture) before Ampere: no bf16, no FP8 or Marlin kernels.
PRE_AMPERE = ("Kepler", "Maxwell", "Pascal", "Volta", "Turing")
_MARLIN = tuple(name for name in QUANTIZATIONS if name.endswith("_marlin"))


def quantization_problems(arch: Architecture, server: ServerConfig) -> list[str]:
    """--quantization against what the checkpoint on the host is."""
    flag_value = server.quantization
    if flag_value is None or flag_value == "compressed-tensors":
        return []
    method = arch.quantization.method
    wanted = sizing_quantization(server)
    if wanted in {"awq", "gptq"} and not arch.quantization.is_quantized:
        return [
            f"{variable('quantization')} is {flag_value} but {arch.name} is not a {wanted.upper()} "
            "checkpoint (its config.json has no quantization_config): serve the official pre-quantized "
            "checkpoint (model_fetch_precision) or make one with the quantize role, or drop it"
        ]
    try:
        with_quantization(arch, wanted)
    except SizingError as error:
        return [f"{error}: set {variable('quantization')} to {method} or leave it unset"]
    return []


def device_problems(arch: Architecture, server: ServerConfig, architectures: list[str]) -> list[str]:
    """Settings the host's GPU generation cannot run (nvidia-smi's product_architecture)."""
    old = sorted({name for name in architectures if name in PRE_AMPERE})
    if not old:
        return []
    gpu = "/".join(old) + " GPU"
    problems = []
    if server.dtype == "bfloat16":
        problems.append(f"{variable('dtype')} is bfloat16, which a {gpu} cannot compute: use float16")
    fp8_weights = arch.quantization.method == "fp8" or server.quantization == "fp8"
    if fp8_weights:
        problems.append(
            f"FP8 weights need an Ampere or newer GPU, not a {gpu}: serve a bf16 or AWQ checkpoint"
        )
    if server.kv_cache_dtype.startswith("fp8"):
        problems.append(f"{variable('kv_cache_dtype')} {server.kv_cache_dtype} needs an Ampere or newer GPU")
    if server.quantization in _MARLIN:
        problems.append(
            f"{variable('quantization')} {server.quantization} needs an Ampere or newer GPU: use "
            f"{server.quantization.removesuffix('_marlin')}"
        )
    return problems


def check_server(
    arch: Architecture,
    server: ServerConfig,
    *,
    gpus: list[GpuMemory] | None = None,
    architectures: list[str] | None = None,
    tensors: list[Tensor] | None = None,
    gpu_memory_bytes: int | None = None,
    vllm_version: str | None = None,
    gpu_memory_in_use: dict[int, int] | None = None,
) -> dict[str, Any]:
    """The verdict on one server for one host. `gpus` are nvidia-smi's GPUs (None: no GPU, so only the
    shape is checked unless `gpu_memory_bytes` gives the memory per GPU)."""
    quantization = quantization_problems(arch, server)
    if quantization:
        return _refused(arch, quantization, memory_checked=False)
    sized = with_quantization(arch, sizing_quantization(server))
    plan = sizing_plan(server, gpus_available=len(gpus) if gpus else None, vllm_version=vllm_version)
    device = device_problems(sized, server, architectures or [])
    if device:
        return _refused(sized, device, memory_checked=False)
    if gpus is None and gpu_memory_bytes is None:
        shape = shape_problems(sized, plan)
        if shape:
            return _refused(sized, shape + _shape_fixes(sized, plan, tensors), memory_checked=False)
        return {
            **not_checked(
                f"{sized.name}: the model's shape allows this server's settings; GPU memory not checked "
                "(no NVIDIA GPU here and no vllm_vram_check_gpu_memory_bytes)"
            ),
            "shape_checked": True,
        }
    result = check_host(
        sized,
        plan,
        gpus=gpus,
        tensors=tensors,
        gpu_memory_bytes=gpu_memory_bytes,
        gpu_memory_in_use=gpu_memory_in_use,
        node_rank=server.node_rank,
    )
    result["shape_checked"] = True
    return result


def _shape_fixes(arch: Architecture, plan: Plan, tensors: list[Tensor] | None) -> list[str]:
    """Fixes for a shape problem on a host without GPU memory to size: sized on a GPU large enough that
    memory never decides, so only the shape does."""
    roomy = Device("any GPU", 1 << 50)
    return suggest_fixes(arch, roomy, plan, tensors, 0)


def _refused(arch: Architecture, problems: list[str], *, memory_checked: bool) -> dict[str, Any]:
    return {
        "checked": memory_checked,
        "shape_checked": True,
        "fits": False,
        "problems": problems,
        "gpus": [],
        "msg": f"{arch.name} cannot be served as configured: " + "; ".join(problems),
    }


_FLAG = re.compile(r"--[a-z][a-z-]+")
_VARIABLE_OF_FLAG = {flag(name): variable(name) for name in FIELD_NAMES}


def in_role_terms(text: str) -> str:
    """A message about vLLM flags, with each modelled flag named as the role variable that sets it."""
    return _FLAG.sub(lambda match: _VARIABLE_OF_FLAG.get(match.group(0), match.group(0)), text)
