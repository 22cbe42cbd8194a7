"""Catalog of GPUs: memory as the CUDA runtime reports it, next to the nvidia-smi total. Data only.

GPUS: usable memory of each GPU (torch.cuda.mem_get_info()[1]), which is the number vLLM multiplies by
gpu_memory_utilization. "measured" entries were read on a real card; "derived" ones come from
published figures and need a check on real hardware.
"""

from typing import TypedDict

from ..units import GIB


class GpuEntry(TypedDict):
    """One GPUS entry (the fields are described above GPUS)."""

    nvlink: bool
    product_names: list[str]
    usable_bytes: int
    nvidia_smi_total_mib: int
    cost_rank: int
    kind: str
    source: str
    date: str


# usable_bytes: what the CUDA runtime reports as total memory (torch.cuda.mem_get_info()[1]); it is
# nvidia-smi's memory.total minus memory.reserved. nvlink: the SXM/HGX boards sold in 4- and 8-GPU
# NVLink/NVSwitch nodes, where NCCL's buffers are larger (PCIe variants are recognised by name).
# cost_rank orders the GPUs by typical rental price (1 = cheapest); the recommender uses it only to
# break ties between layouts of equal GPU count.
GPUS: dict[str, GpuEntry] = {
    "L4": {
        "nvlink": False,
        "product_names": ["NVIDIA L4"],
        "usable_bytes": int(22.03 * GIB),
        "nvidia_smi_total_mib": 23034,
        "cost_rank": 1,
        "kind": "derived",
        "source": "nvidia-smi total 23034 MiB on L4 (published g6 listings); usable taken as the "
        "22.03 GiB PyTorch reports in published OOM messages. Check on hardware.",
        "date": "2026-11-22",
    },
    "A10G": {
        "nvlink": False,
        "product_names": ["NVIDIA A10G"],
        "usable_bytes": int(22.19 * GIB),
        "nvidia_smi_total_mib": 23028,
        "cost_rank": 2,
        "kind": "derived",
        "source": "nvidia-smi total 23028 MiB on A10G (AWS g5); usable taken as the 22.19 GiB PyTorch "
        "reports in published OOM messages. Check on hardware.",
        "date": "2026-11-22",
    },
    "L40S": {
        "nvlink": False,
        "product_names": ["NVIDIA L40S"],
        "usable_bytes": int(44.39 * GIB),
        "nvidia_smi_total_mib": 46068,
        "cost_rank": 3,
        "kind": "derived",
        "source": "nvidia-smi total 46068 MiB on L40S (AWS g6e); usable 44.39 GiB from published "
        "PyTorch/vLLM totals. Check on hardware.",
        "date": "2026-11-22",
    },
    "A100-40GB": {
        "nvlink": True,
        "product_names": ["NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB", "NVIDIA A100 40GB"],
        "usable_bytes": int(39.39 * GIB),
        "nvidia_smi_total_mib": 40960,
        "cost_rank": 4,
        "kind": "derived",
        "source": "nvidia-smi total 40960 MiB; usable 39.39 GiB, the total PyTorch reports for "
        "A100-SXM4-40GB in published OOM messages. Check on hardware.",
        "date": "2026-11-22",
    },
    "A100-80GB": {
        "nvlink": True,
        "product_names": ["NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe", "NVIDIA A100-PCIE-80GB"],
        "usable_bytes": int(79.25 * GIB),
        "nvidia_smi_total_mib": 81920,
        "cost_rank": 5,
        "kind": "derived",
        "source": "nvidia-smi total 81920 MiB; usable 79.25 GiB as reported to vLLM "
        "(shared/reference/sizing.md §1; 79.15 GiB is also seen with other drivers). Check.",
        "date": "2026-11-22",
    },
    "H20": {
        "nvlink": True,
        "product_names": ["NVIDIA H20"],
        "usable_bytes": int(95.00 * GIB),
        "nvidia_smi_total_mib": 97871,
        "cost_rank": 6,
        "kind": "derived",
        "source": "nvidia-smi total 97871 MiB on H20 (96 GB HBM3); usable assumed 95.00 GiB from "
        "published totals. Check on hardware.",
        "date": "2026-11-22",
    },
    "H100-80GB": {
        "nvlink": True,
        "product_names": ["NVIDIA H100 80GB HBM3", "NVIDIA H100"],
        "usable_bytes": 85017493504,
        "nvidia_smi_total_mib": 81559,
        "cost_rank": 7,
        "kind": "measured",
        "source": "measured on a lent H100 80GB HBM3 (driver 580.159.04, CUDA 13.0): nvidia-smi total "
        "81559 MiB, reserved 480 MiB; torch.cuda.mem_get_info total 85017493504 B = 81079 MiB; "
        "NVML total 85520809984 B (tests/fixtures/gpu/h100-80gb-hbm3).",
        "date": "2026-11-22",
    },
    "H200-141GB": {
        "nvlink": True,
        "product_names": ["NVIDIA H200"],
        "usable_bytes": 150109880320,
        "nvidia_smi_total_mib": 143771,
        "cost_rank": 8,
        "kind": "measured",
        "source": "measured on a lent H200 (driver 580.159.04, CUDA 13.0): nvidia-smi total 143771 MiB, "
        "reserved 616 MiB; torch.cuda.mem_get_info total 150109880320 B = 139.80 GiB "
        "(tests/fixtures/gpu/h200).",
        "date": "2026-11-22",
    },
}

# Short names people type.
GPU_ALIASES = {
    "H100": "H100-80GB",
    "H200": "H200-141GB",
    "A100": "A100-80GB",
    "A100-80G": "A100-80GB",
    "A100-40G": "A100-40GB",
}
