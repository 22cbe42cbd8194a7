"""The sandbox a vLLM server's systemd unit runs under, stated once.

The vllm role writes these properties into the unit; the GPU validation gate runs its NCCL check as a
transient unit (`systemd-run -p ...`) with the same ones, so a sandbox that hides the fabric's devices
fails the gate (NCCL reports the TCP socket transport) instead of slowing the service.

Device names are /proc/devices' groups: systemd's DeviceAllow=char-NAME allows every minor of NAME's
major, looked up when the unit starts (tests/fixtures/gpu/h200/proc-devices.txt is a driver-580 host).
"""

from __future__ import annotations

import re
from typing import Any

# "nvidia" (/dev/nvidia0..N) and "nvidiactl" share major 195; the uvm and caps majors are dynamic, so
# they are named, never numbered.
NVIDIA_DEVICES = ["char-nvidia", "char-nvidiactl", "char-nvidia-uvm", "char-nvidia-caps"]

# The RDMA devices each fabric's NCCL transport opens. EFA and InfiniBand/RoCE verbs go through
# /dev/infiniband/uverbsN ("infiniband_verbs", one or more majors); RDMA-CM address resolution
# (/dev/infiniband/rdma_cm, a misc device) only on InfiniBand and RoCE.
RDMA_DEVICES_BY_FABRIC = {
    "efa": ["char-infiniband_verbs"],
    "infiniband": ["char-infiniband_verbs", "/dev/infiniband/rdma_cm"],
    "roce": ["char-infiniband_verbs", "/dev/infiniband/rdma_cm"],
    "ethernet": [],
    "none": [],
}

# The network NCCL names in its log ("NCCL INFO Using network IB") when it uses each fabric. RoCE is
# verbs too (IB); EFA goes through the aws-ofi-nccl plugin ("Libfabric", "AWS Libfabric" before 1.7).
# "Socket" on an RDMA fabric is the silent fallback the gate exists to catch.
NCCL_NETWORKS_BY_FABRIC = {
    "efa": ["Libfabric", "AWS Libfabric"],
    "infiniband": ["IB"],
    "roce": ["IB"],
    "ethernet": ["Socket"],
    "none": [],
}

DEVICES = ("cuda", "cpu")

_FABRIC_LINE = re.compile(r"^QWEN_INFRA_FABRIC=(\w+)$", re.MULTILINE)
_NCCL_NETWORK_LINE = re.compile(r"NCCL INFO Using network (.+?)\s*$", re.MULTILINE)


class SandboxError(ValueError):
    """An input the sandbox cannot be built from; the message says what to change."""


def recorded_fabric(env_text: str | None) -> str:
    """The fabric the nccl_fabric role recorded in its environment file (QWEN_INFRA_FABRIC=...), or
    "none" where it did not run (CPU hosts, GPU hosts without a fabric)."""
    match = _FABRIC_LINE.search(env_text or "")
    return match.group(1) if match else "none"


def properties(device: str, fabric: str) -> list[tuple[str, str]]:
    """The unit's hardening, in order: the server needs its model (read-only), its cache and the network,
    the GPUs and the fabric's devices, nothing more. Paths and the user are the unit's own."""
    if device not in DEVICES:
        raise SandboxError(f"device is {device!r}; choose one of {', '.join(DEVICES)}")
    if fabric not in RDMA_DEVICES_BY_FABRIC:
        raise SandboxError(f"fabric is {fabric!r}; choose one of {', '.join(RDMA_DEVICES_BY_FABRIC)}")
    result = [
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
    ]
    if device == "cpu":
        result.append(("PrivateDevices", "yes"))
    else:
        result.append(("DevicePolicy", "closed"))
        result += [("DeviceAllow", f"{name} rw") for name in NVIDIA_DEVICES + RDMA_DEVICES_BY_FABRIC[fabric]]
        if RDMA_DEVICES_BY_FABRIC[fabric]:
            # RDMA registers (pins) NCCL's buffers: the 8 MiB default locked-memory limit fails it.
            result.append(("LimitMEMLOCK", "infinity"))
    result += [
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("ProtectProc", "invisible"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("RemoveIPC", "yes"),
        ("SystemCallArchitectures", "native"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX AF_NETLINK"),
        ("UMask", "0027"),
    ]
    return result


def nccl_networks_used(output: str) -> list[str]:
    """The networks NCCL's log names ("NCCL INFO Using network IB"), each once, sorted."""
    return sorted(set(_NCCL_NETWORK_LINE.findall(output)))


def nccl_network_problem(output: str, fabric: str) -> str | None:
    """Why NCCL's log does not show the fabric's transport, or None when it does (or when the fabric
    expects none in particular). `output`: a run's output with NCCL_DEBUG=INFO, NCCL_DEBUG_SUBSYS=INIT,NET."""
    expected = NCCL_NETWORKS_BY_FABRIC[fabric]
    if not expected:
        return None
    used = nccl_networks_used(output)
    if not used:
        return f"NCCL named no network ('Using network ...' with NCCL_DEBUG=INFO); expected {expected[0]}"
    wrong = [name for name in used if name not in expected]
    if wrong:
        hint = " (TCP sockets: the RDMA devices are hidden or absent)" if "Socket" in wrong else ""
        return f"NCCL used network {', '.join(wrong)}{hint}; the {fabric} fabric needs {expected[0]}"
    return None


def answer(device: str, fabric: str, env_text: str | None, nccl_log: str | None = None) -> dict[str, Any]:
    """The unit_sandbox module's result: `fabric` as asked (`auto`: the one `env_text`, the nccl_fabric
    role's environment file or None where absent, records), the unit's properties and the fabric's
    devices and NCCL networks; with `nccl_log`, whether NCCL used that network. Computed alike on the host
    (the module) and on the controller (its action plugin, from the file's text host_facts read)."""
    if fabric == "auto":
        fabric = recorded_fabric(env_text)
    result: dict[str, Any] = {
        "fabric": fabric,
        "properties": [list(pair) for pair in properties(device, fabric)],
        "rdma_devices": RDMA_DEVICES_BY_FABRIC[fabric] if device == "cuda" else [],
        "nccl_networks": NCCL_NETWORKS_BY_FABRIC[fabric],
    }
    if nccl_log is not None:
        result["nccl_networks_used"] = nccl_networks_used(nccl_log)
        result["nccl_problem"] = nccl_network_problem(nccl_log, fabric)
    return result
