"""Pure parsers for the GPU host facts beyond nvidia-smi's memory report. Stdlib only (shipped to hosts).

- `nvidia-smi topo -m`: the GPU/NIC connection matrix (NV# = bonded NVLinks, PIX/PXB/PHB/NODE/SYS = PCIe);
- `/sys/class/infiniband`: RDMA devices (InfiniBand, RoCE, AWS EFA) and their ports;
- `/sys/bus/pci/devices`: NVSwitch chips (NVIDIA bridges), which decide whether Fabric Manager is needed;
- `product_architecture` from `nvidia-smi -q -x`, which decides the kernel module flavour.
Memory, driver and CUDA versions come from module_utils/qwen_infra/nvidia_smi.py.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NVIDIA_PCI_VENDOR = "0x10de"
# PCI class "bridge, other": NVSwitch chips; GPUs are 0x0302 (3D controller) or 0x0300 (VGA).
NVSWITCH_PCI_CLASS_PREFIX = "0x0680"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DEVICE_COLUMN = re.compile(r"^(GPU\d+|NIC\d+|mlx\d+_\d+|rdmap\w+|efa_\d+)$")
_NVLINK = re.compile(r"^NV(\d+)$")


class GpuHostParseError(ValueError):
    """The text is not output of the expected form."""


def parse_topo_matrix(text: str) -> dict[str, Any]:
    """Parse `nvidia-smi topo -m` into devices, pairwise links and the NIC legend.

    Returns {"gpus": [...], "nics": {"NIC0": "mlx5_0"}, "links": {"GPU0": {"GPU1": "NV18"}},
    "nvlink_pairs": {"GPU0-GPU1": 18}, "cpu_affinity": {"GPU0": "0-15"}}.
    """
    lines = [_ANSI.sub("", line).rstrip("\n") for line in text.splitlines()]
    header_at = next((i for i, line in enumerate(lines) if line.strip().startswith("GPU0")), None)
    if header_at is None:
        raise GpuHostParseError("no GPU0 column in the topology header")
    header = [cell.strip() for cell in lines[header_at].split("\t")]
    if header and header[0] == "":
        header = header[1:]
    devices = [cell for cell in header if _DEVICE_COLUMN.match(cell)]
    affinity_col = header.index("CPU Affinity") if "CPU Affinity" in header else None
    links: dict[str, dict[str, str]] = {}
    cpu_affinity = {}
    for line in lines[header_at + 1 :]:
        if not line.strip():
            break
        cells = [cell.strip() for cell in line.split("\t")]
        row, values = cells[0], cells[1:]
        if not _DEVICE_COLUMN.match(row):
            break
        if len(values) < len(devices):
            raise GpuHostParseError(f"row {row} has {len(values)} cells for {len(devices)} devices")
        links[row] = {
            column: value
            for column, value in zip(devices, values[: len(devices)], strict=True)
            if value != "X"
        }
        if affinity_col is not None and affinity_col < len(values):
            cpu_affinity[row] = values[affinity_col]
    nics = dict(re.findall(r"^\s*(NIC\d+):\s*(\S+)\s*$", "\n".join(lines), flags=re.MULTILINE))
    gpus = [device for device in devices if device.startswith("GPU")]
    nvlink_pairs = {}
    for index, first in enumerate(gpus):
        for second in gpus[index + 1 :]:
            found = _NVLINK.match(links.get(first, {}).get(second, ""))
            if found:
                nvlink_pairs[f"{first}-{second}"] = int(found.group(1))
    return {
        "gpus": gpus,
        "nics": nics,
        "links": links,
        "nvlink_pairs": nvlink_pairs,
        "cpu_affinity": cpu_affinity,
    }


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _rate_gbps(text: str | None) -> float | None:
    """'400 Gb/sec (4X NDR)' -> 400.0."""
    found = re.match(r"^\s*([\d.]+)\s*Gb/sec", text or "")
    return float(found.group(1)) if found else None


def _state(text: str | None) -> str | None:
    """'4: ACTIVE' -> 'ACTIVE'."""
    return text.split(":", 1)[-1].strip() if text else None


def rdma_device_kind(name: str, driver: str | None, link_layers: list[str]) -> str:
    """efa (AWS Elastic Fabric Adapter), roce (RDMA over Ethernet) or infiniband."""
    if driver == "efa" or name.startswith(("efa", "rdmap")):
        return "efa"
    if link_layers and all(layer == "Ethernet" for layer in link_layers):
        return "roce"
    return "infiniband"


def read_infiniband(root: Path | str = "/sys/class/infiniband") -> list[dict[str, Any]]:
    """Every RDMA device under `root` with its ports (state, physical state, link layer, rate)."""
    root = Path(root)
    if not root.is_dir():
        return []
    devices = []
    for device in sorted(root.iterdir()):
        ports: list[dict[str, Any]] = []
        for port in sorted(
            (device / "ports").glob("*"), key=lambda path: int(path.name) if path.name.isdigit() else 0
        ):
            ports.append(
                {
                    "port": int(port.name) if port.name.isdigit() else port.name,
                    "state": _state(_read(port / "state")),
                    "phys_state": _state(_read(port / "phys_state")),
                    "link_layer": _read(port / "link_layer"),
                    "rate_gbps": _rate_gbps(_read(port / "rate")),
                }
            )
        driver_link = device / "device" / "driver"
        driver = driver_link.resolve().name if driver_link.exists() else None
        devices.append(
            {
                "name": device.name,
                "kind": rdma_device_kind(
                    device.name, driver, [p["link_layer"] for p in ports if p["link_layer"]]
                ),
                "driver": driver,
                "fw_ver": _read(device / "fw_ver"),
                "ports": ports,
                "active_ports": [p["port"] for p in ports if p["state"] == "ACTIVE"],
            }
        )
    return devices


def count_nvswitches(pci_root: Path | str = "/sys/bus/pci/devices") -> int:
    """NVIDIA PCI bridges (NVSwitch chips) under a /sys/bus/pci/devices-like tree."""
    root = Path(pci_root)
    if not root.is_dir():
        return 0
    count = 0
    for device in root.iterdir():
        vendor = _read(device / "vendor")
        pci_class = _read(device / "class") or ""
        if vendor == NVIDIA_PCI_VENDOR and pci_class.startswith(NVSWITCH_PCI_CLASS_PREFIX):
            count += 1
    return count


def parse_architectures(xml_text: str) -> list[str]:
    """product_architecture of each <gpu> in `nvidia-smi -q -x` ('Hopper', 'Blackwell', ...)."""
    try:
        root = ET.fromstring(xml_text)  # noqa: S314 - nvidia-smi's own output on the managed host
    except ET.ParseError as error:
        raise GpuHostParseError(f"nvidia-smi XML does not parse: {error}") from error
    return [(gpu.findtext("product_architecture") or "unknown").strip() for gpu in root.findall("gpu")]


def hca_ports(devices: list[dict[str, Any]]) -> list[str]:
    """'mlx5_0:1' for every ACTIVE port of an InfiniBand or RoCE device (NCCL_IB_HCA's syntax)."""
    return [
        f"{device['name']}:{port}"
        for device in devices
        if device["kind"] in ("infiniband", "roce")
        for port in device["active_ports"]
    ]


def assemble_facts(
    gpus: list[dict[str, Any]],
    architectures: list[str],
    topology: dict[str, Any] | None,
    rdma_devices: list[dict[str, Any]],
    nvswitch_count: int,
    *,
    absent_reason: str = "",
) -> dict[str, Any]:
    """The gpu_facts fact from parsed pieces. `gpus` are nvidia_smi.GpuMemory.as_dict() records.

    With no GPU, gpu_present is false and msg says why; the fabric facts are still filled in.
    """
    efa = [device for device in rdma_devices if device["kind"] == "efa"]
    hcas = [device for device in rdma_devices if device["kind"] in ("infiniband", "roce")]
    fabric = {
        "rdma_devices": rdma_devices,
        "hcas": [device["name"] for device in hcas],
        "hca_ports": hca_ports(rdma_devices),
        "infiniband_count": sum(device["kind"] == "infiniband" for device in rdma_devices),
        "roce_count": sum(device["kind"] == "roce" for device in rdma_devices),
        "efa_devices": [device["name"] for device in efa],
        "efa_count": len(efa),
        "nvswitch_count": nvswitch_count,
        "nvswitch_present": nvswitch_count > 0,
    }
    if not gpus:
        return {
            "gpu_present": False,
            "gpu_count": 0,
            "gpus": [],
            "gpu_model": None,
            "gpu_architecture": None,
            "usable_bytes_min": 0,
            "driver_version": None,
            "cuda_version": None,
            "nvlink_present": False,
            "nvlink_pairs": {},
            "topology": None,
            "msg": f"no NVIDIA GPU on this host: {absent_reason}",
            **fabric,
        }
    models = sorted({gpu["name"] for gpu in gpus})
    nvlink_pairs = (topology or {}).get("nvlink_pairs", {})
    facts = {
        "gpu_present": True,
        "gpu_count": len(gpus),
        "gpus": [
            {
                "index": gpu["index"],
                "name": gpu["name"],
                "uuid": gpu["uuid"],
                "architecture": architectures[position] if position < len(architectures) else "unknown",
                "total_bytes": gpu["total_bytes"],
                "usable_bytes": gpu["usable_bytes"],
            }
            for position, gpu in enumerate(gpus)
        ],
        "gpu_model": models[0] if len(models) == 1 else ", ".join(models),
        "gpu_architecture": architectures[0]
        if len(set(architectures)) == 1
        else ", ".join(sorted(set(architectures))),
        "usable_bytes_min": min(gpu["usable_bytes"] for gpu in gpus),
        "driver_version": gpus[0]["driver_version"],
        "cuda_version": gpus[0]["cuda_version"],
        "nvlink_present": bool(nvlink_pairs),
        "nvlink_pairs": nvlink_pairs,
        "topology": topology,
        **fabric,
    }
    facts["msg"] = (
        f"{facts['gpu_count']} x {facts['gpu_model']} "
        f"({facts['usable_bytes_min'] / (1 << 30):.2f} GiB usable), "
        f"driver {facts['driver_version']}, CUDA {facts['cuda_version']}, "
        f"NVLink {'yes' if facts['nvlink_present'] else 'no'}, NVSwitch {nvswitch_count}, "
        f"IB/RoCE HCAs {len(hcas)}, EFA {len(efa)}"
    )
    return facts


# On-premises and lab shapes, in the same fields as aws_instances.INSTANCES (gpu: a catalogs.gpus.GPUS
# key). ib_hcas: compute-fabric HCAs the host must show (0 = not checked).
ONPREM_PROFILES: dict[str, dict[str, Any]] = {
    "hgx-a100-8": {"gpus": 8, "gpu": "A100-80GB", "efa_interfaces": 0, "nvswitch": True, "ib_hcas": 8},
    "hgx-h100-8": {"gpus": 8, "gpu": "H100-80GB", "efa_interfaces": 0, "nvswitch": True, "ib_hcas": 8},
    "hgx-h200-8": {"gpus": 8, "gpu": "H200-141GB", "efa_interfaces": 0, "nvswitch": True, "ib_hcas": 8},
    # The lent development machines: GPUs joined by NVLink directly (NV18), no NVSwitch, no RDMA.
    "dev-h100-1": {"gpus": 1, "gpu": "H100-80GB", "efa_interfaces": 0, "nvswitch": False, "ib_hcas": 0},
    "dev-h200-2": {"gpus": 2, "gpu": "H200-141GB", "efa_interfaces": 0, "nvswitch": False, "ib_hcas": 0},
}
# nvidia-smi's memory total may differ from the catalog's by the driver's reservation changes.
USABLE_TOLERANCE = 0.02


def profile_expectations(
    profile: str, aws_instances: Mapping[str, Mapping[str, Any]], gpu_catalog: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """What a host of `profile` (an AWS instance type or an ONPREM_PROFILES name) must show.

    Raises LookupError naming every known profile.
    """
    entry = aws_instances.get(profile) or ONPREM_PROFILES.get(profile)
    if entry is None:
        known = sorted([*aws_instances, *ONPREM_PROFILES])
        raise LookupError(f"unknown GPU host profile {profile!r}; known: {', '.join(known)}")
    gpu = gpu_catalog[entry["gpu"]]
    return {
        "profile": profile,
        "gpu_count": entry["gpus"],
        "gpu": entry["gpu"],
        "product_names": gpu["product_names"],
        "usable_bytes": gpu["usable_bytes"],
        "efa_count": entry["efa_interfaces"],
        "nvswitch": entry["nvswitch"],
        "ib_hcas": entry.get("ib_hcas", 0),
    }


def compare_with_profile(facts: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Every way the host's facts fall short of its profile, as 'measured vs expected' sentences."""
    problems = []
    if facts["gpu_count"] != expected["gpu_count"]:
        problems.append(f"{facts['gpu_count']} GPUs found, {expected['gpu_count']} expected")
    wrong = sorted({gpu["name"] for gpu in facts["gpus"]} - set(expected["product_names"]))
    if wrong:
        problems.append(
            f"GPU model {', '.join(wrong)} found, {' or '.join(expected['product_names'])} expected"
        )
    floor = int(expected["usable_bytes"] * (1 - USABLE_TOLERANCE))
    if facts["gpu_present"] and facts["usable_bytes_min"] < floor:
        problems.append(
            f"{facts['usable_bytes_min'] / (1 << 30):.2f} GiB usable on the smallest GPU, at least "
            f"{floor / (1 << 30):.2f} GiB expected"
        )
    if facts["efa_count"] < expected["efa_count"]:
        problems.append(f"{facts['efa_count']} EFA devices found, {expected['efa_count']} expected")
    if expected["nvswitch"] and not facts["nvswitch_present"]:
        problems.append("no NVSwitch found, the profile has NVSwitch")
    active_hcas = len({port.split(":")[0] for port in facts["hca_ports"]})
    if active_hcas < expected["ib_hcas"]:
        problems.append(f"{active_hcas} IB/RoCE HCAs with an active port, {expected['ib_hcas']} expected")
    return problems
