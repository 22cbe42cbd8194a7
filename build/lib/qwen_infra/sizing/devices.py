"""GPUs as the sizing engine sees them: usable bytes, NVLink, and vLLM's batch defaults for each."""

from __future__ import annotations

from dataclasses import dataclass

from ..catalogs.gpus import GPU_ALIASES, GPUS
from ..units import GIB
from .errors import SizingError
from .vllm_rules import LARGE_GPU_BATCH_DEFAULTS, LARGE_GPU_MIN_BYTES, SMALL_GPU_BATCH_DEFAULTS

# --- layout -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """One GPU model: its name (as nvidia-smi or the catalog spells it) and usable bytes."""

    name: str
    usable_bytes: int
    # GPUs on NVLink/NVSwitch (SXM boards): NCCL allocates many channels' buffers there.
    nvlink: bool = False

    @property
    def usable_gib(self) -> float:
        return self.usable_bytes / GIB


def gpu_from_catalog(name: str) -> Device:
    """A catalog GPU by name or alias (case-insensitive)."""
    wanted = GPU_ALIASES.get(name.upper(), name)
    for key, info in GPUS.items():
        if key.lower() == wanted.lower():
            return Device(key, int(info["usable_bytes"]), nvlink=bool(info["nvlink"]))
    raise SizingError(f"unknown GPU {name!r}: one of {', '.join(GPUS)}, or pass the memory directly")


def catalog_name_for(product_name: str) -> str | None:
    """Catalog key of an nvidia-smi product name ("NVIDIA H100 80GB HBM3" -> "H100-80GB")."""
    for key, info in GPUS.items():
        if product_name in info.get("product_names", []):
            return key
    return None


def device_for(product_name: str, usable_bytes: int) -> Device:
    """A GPU as nvidia-smi names it, with its measured usable bytes; NVLink as the catalog says for the
    model, never for PCIe boards."""
    key = catalog_name_for(product_name)
    nvlink = bool(key and GPUS[key]["nvlink"]) and "pcie" not in product_name.lower()
    return Device(product_name, usable_bytes, nvlink=nvlink)


def default_batch_budget(device: Device) -> tuple[int, int]:
    """vLLM's default (max_num_batched_tokens, max_num_seqs) for `vllm serve` on this GPU."""
    if device.usable_bytes >= LARGE_GPU_MIN_BYTES and "a100" not in device.name.lower():
        return LARGE_GPU_BATCH_DEFAULTS
    return SMALL_GPU_BATCH_DEFAULTS
