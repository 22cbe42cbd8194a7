"""Parse nvidia-smi output into per-GPU memory facts. Pure and stdlib only (shipped to hosts by Ansible).

Two formats are understood:
- `nvidia-smi -q -x` (XML): the complete record, including memory.reserved, driver and CUDA versions;
- `nvidia-smi --query-gpu=FIELDS --format=csv[,noheader][,nounits]`: a CSV whose columns are FIELDS.

"Usable" memory is what the CUDA runtime reports as the device total (torch.cuda.mem_get_info()[1]),
which is what vLLM multiplies by gpu_memory_utilization: nvidia-smi's total minus the part the driver
reserves for itself. Where reserved is not reported (older drivers, or a CSV without memory.reserved),
used + free gives the same number, since nvidia-smi computes free as total - reserved - used.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from .units import MIB

# The query this project runs when it uses the CSV form (every field the parser needs).
QUERY_GPU_FIELDS = (
    "index",
    "uuid",
    "name",
    "memory.total",
    "memory.reserved",
    "memory.used",
    "memory.free",
    "driver_version",
)


def query_gpu_command(fields: tuple[str, ...] = QUERY_GPU_FIELDS) -> list[str]:
    """The nvidia-smi command whose output parse_query_gpu_csv reads (with a header row)."""
    return ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,nounits"]


@dataclass(frozen=True)
class GpuMemory:
    """One GPU as nvidia-smi reports it. Byte counts are exact multiples of MiB (nvidia-smi's unit)."""

    index: int
    name: str
    uuid: str
    total_bytes: int
    reserved_bytes: int | None
    used_bytes: int | None
    free_bytes: int | None
    usable_bytes: int
    driver_version: str | None = None
    cuda_version: str | None = None
    mig_mode: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class NvidiaSmiParseError(ValueError):
    """The text is not nvidia-smi output of the expected form."""


def _mib_to_bytes(text: str | None) -> int | None:
    """'81559 MiB', '81559' or 'N/A' -> bytes (None when not reported)."""
    if text is None:
        return None
    value = text.strip()
    if value.endswith("MiB"):
        value = value[: -len("MiB")].strip()
    if not value or value.upper() in {"N/A", "[N/A]", "[NOT SUPPORTED]"}:
        return None
    try:
        return int(float(value) * MIB)
    except ValueError as error:
        raise NvidiaSmiParseError(f"not a MiB amount: {text!r}") from error


def _usable(total: int, reserved: int | None, used: int | None, free: int | None) -> int:
    if reserved is not None:
        return total - reserved
    if used is not None and free is not None:
        return used + free
    return total


def _text(element: ET.Element | None, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def parse_nvidia_smi_xml(text: str) -> list[GpuMemory]:
    """Parse `nvidia-smi -q -x` into one GpuMemory per <gpu>, in the order listed."""
    try:
        root = ET.fromstring(text)  # noqa: S314 - nvidia-smi's own output on the managed host
    except ET.ParseError as error:
        raise NvidiaSmiParseError(f"nvidia-smi XML does not parse: {error}") from error
    if root.tag != "nvidia_smi_log":
        raise NvidiaSmiParseError(f"expected <nvidia_smi_log>, got <{root.tag}>")
    driver = _text(root, "driver_version")
    cuda = _text(root, "cuda_version")
    gpus = []
    for position, gpu in enumerate(root.findall("gpu")):
        fb = gpu.find("fb_memory_usage")
        total = _mib_to_bytes(_text(fb, "total"))
        if total is None:
            raise NvidiaSmiParseError(f"GPU {position} has no fb_memory_usage/total")
        reserved = _mib_to_bytes(_text(fb, "reserved"))
        used = _mib_to_bytes(_text(fb, "used"))
        free = _mib_to_bytes(_text(fb, "free"))
        minor = _text(gpu, "minor_number")
        gpus.append(
            GpuMemory(
                index=int(minor) if minor and minor.isdigit() else position,
                name=_text(gpu, "product_name") or "unknown",
                uuid=_text(gpu, "uuid") or "",
                total_bytes=total,
                reserved_bytes=reserved,
                used_bytes=used,
                free_bytes=free,
                usable_bytes=_usable(total, reserved, used, free),
                driver_version=driver,
                cuda_version=cuda,
                mig_mode=_text(gpu, "mig_mode/current_mig"),
            )
        )
    return gpus


class CommandRunner(Protocol):
    """The part of AnsibleModule that run_nvidia_smi_xml uses."""

    def get_bin_path(self, arg: str) -> str | None: ...

    def run_command(self, args: list[str]) -> tuple[int, str, str]: ...


def run_nvidia_smi_xml(module: CommandRunner) -> tuple[str | None, str | None, str]:
    """Run `nvidia-smi -q -x` through an Ansible module's get_bin_path/run_command (passed in, so this
    file imports nothing of Ansible): (binary, xml, "") or (None, None, reason) when the host has no
    usable nvidia-smi. Every module that reads the GPUs starts here."""
    binary = module.get_bin_path("nvidia-smi")
    if binary is None:
        return None, None, "nvidia-smi is not installed"
    rc, out, err = module.run_command([binary, "-q", "-x"])
    if rc != 0:
        return None, None, f"nvidia-smi failed (rc={rc}): {(err or out).strip()}"
    return binary, out, ""


def _field_name(header: str) -> str:
    """'memory.total [MiB]' -> 'memory.total'."""
    return header.split("[", 1)[0].strip()


def parse_query_gpu_csv(text: str, fields: tuple[str, ...] | list[str] | None = None) -> list[GpuMemory]:
    """Parse `nvidia-smi --query-gpu=... --format=csv`.

    With a header row the columns are named by it; with `noheader`, pass the queried `fields` in order.
    Values may carry units (`81559 MiB`) or not (`nounits`).
    """
    rows = [
        row for row in csv.reader(io.StringIO(text), skipinitialspace=True) if any(c.strip() for c in row)
    ]
    if not rows:
        raise NvidiaSmiParseError("nvidia-smi CSV is empty")
    if fields is None:
        header = [_field_name(cell) for cell in rows[0]]
        if "memory.total" not in header:
            raise NvidiaSmiParseError(
                "nvidia-smi CSV has no header naming memory.total; pass the queried fields"
            )
        names, data = header, rows[1:]
    else:
        names, data = list(fields), rows
        if "memory.total" not in names:
            raise NvidiaSmiParseError("the queried fields must include memory.total")
    gpus = []
    for position, row in enumerate(data):
        if len(row) != len(names):
            raise NvidiaSmiParseError(f"row {position} has {len(row)} columns, expected {len(names)}: {row}")
        values = {name: cell.strip() for name, cell in zip(names, row, strict=True)}
        total = _mib_to_bytes(values["memory.total"])
        if total is None:
            raise NvidiaSmiParseError(f"row {position} has no memory.total")
        reserved = _mib_to_bytes(values.get("memory.reserved"))
        used = _mib_to_bytes(values.get("memory.used"))
        free = _mib_to_bytes(values.get("memory.free"))
        index = values.get("index", "")
        gpus.append(
            GpuMemory(
                index=int(index) if index.isdigit() else position,
                name=values.get("name", "unknown"),
                uuid=values.get("uuid", ""),
                total_bytes=total,
                reserved_bytes=reserved,
                used_bytes=used,
                free_bytes=free,
                usable_bytes=_usable(total, reserved, used, free),
                driver_version=values.get("driver_version"),
            )
        )
    return gpus


def parse_gpu_processes(text: str) -> dict[int, list[tuple[int, int]]]:
    """`nvidia-smi -q -x`'s process list: GPU index -> [(pid, bytes used)], every GPU listed (possibly
    with no process). A container or VM may show no process at all even when memory is in use."""
    try:
        root = ET.fromstring(text)  # noqa: S314 - nvidia-smi's own output on the managed host
    except ET.ParseError as error:
        raise NvidiaSmiParseError(f"nvidia-smi XML does not parse: {error}") from error
    processes: dict[int, list[tuple[int, int]]] = {}
    for position, gpu in enumerate(root.findall("gpu")):
        minor = _text(gpu, "minor_number")
        index = int(minor) if minor and minor.isdigit() else position
        found = processes.setdefault(index, [])
        for info in gpu.findall("processes/process_info"):
            pid, used = _text(info, "pid"), _mib_to_bytes(_text(info, "used_memory"))
            if pid and pid.isdigit() and used:
                found.append((int(pid), used))
    return processes


def held_by_others(
    processes: dict[int, list[tuple[int, int]]], service_name: str | None, proc: Path = Path("/proc")
) -> dict[int, int]:
    """GPU index -> bytes held by processes that are not the systemd service `service_name`'s (their
    control group does not name <service_name>.service); nothing when no service is named."""
    if not service_name:
        return {}
    held: dict[int, int] = {}
    for index, listed in processes.items():
        for pid, used in listed:
            try:
                cgroup = (proc / str(pid) / "cgroup").read_text()
            except OSError:
                cgroup = ""  # gone, or in another PID namespace: counted, to be safe
            if f"/{service_name}.service" not in cgroup:
                held[index] = held.get(index, 0) + used
    return held
