"""Filters of the nccl_fabric role: a host's RDMA ports and the role's choices become NCCL settings.

Pure functions over gpu_facts' `rdma_devices` (qwen_infra.gpu_host.read_infiniband), so the tests
call them directly. Which settings each fabric needs is in docs/gpu-stack.md ("NCCL fabric").
"""

from __future__ import annotations

PROFILES = ("infiniband", "roce", "efa", "ethernet")
NVLS_VALUES = {"enable": "1", "disable": "0"}


def hca_ports(rdma_devices: list[dict], kind: str) -> list[str]:
    """'mlx5_0:1' for every ACTIVE port of the devices of `kind` (infiniband or roce)."""
    return [
        f"{device['name']}:{port}"
        for device in rdma_devices
        if device["kind"] == kind
        for port in device["active_ports"]
    ]


def missing_hcas(requested: list[str], rdma_devices: list[dict]) -> list[str]:
    """The NCCL_IB_HCA entries ('mlx5_0' or 'mlx5_0:1') whose device or port the host does not have."""
    ports = {device["name"]: {str(port["port"]) for port in device["ports"]} for device in rdma_devices}
    missing = []
    for entry in requested:
        name, _, port = str(entry).partition(":")
        if name not in ports or (port and port not in ports[name]):
            missing.append(str(entry))
    return missing


# The link layer each RDMA profile runs over (sysfs ports/N/link_layer).
LINK_LAYER = {"infiniband": "InfiniBand", "roce": "Ethernet"}


def port_listing(rdma_devices: list[dict]) -> str:
    """'mlx5_0:1 ACTIVE InfiniBand, mlx5_1:1 DOWN InfiniBand' (what the host has, for messages)."""
    ports = [
        f"{device['name']}:{port['port']} {port['state'] or 'no state'} {port['link_layer'] or 'no layer'}"
        for device in rdma_devices
        for port in device["ports"]
    ]
    return ", ".join(ports) or "no RDMA port"


def unusable_hcas(requested: list[str], rdma_devices: list[dict], profile: str) -> list[str]:
    """Why NCCL_IB_HCA entries that exist cannot carry the profile: a port that is not ACTIVE, or one
    whose link layer is not the profile's (RoCE on an InfiniBand port and the reverse)."""
    wanted_layer = LINK_LAYER.get(profile)
    by_name = {device["name"]: device for device in rdma_devices}
    problems = []
    for entry in requested:
        name, _, number = str(entry).partition(":")
        device = by_name.get(name)
        if device is None:
            continue  # missing_hcas names it
        for port in device["ports"]:
            if number and str(port["port"]) != number:
                continue
            label = f"{name}:{port['port']}"
            if port["state"] != "ACTIVE":
                problems.append(f"{label} is {port['state'] or 'in no state'}, not ACTIVE")
            if wanted_layer and port["link_layer"] != wanted_layer:
                problems.append(
                    f"{label} runs {port['link_layer'] or 'no link layer'}, but the {profile} profile needs "
                    f"{wanted_layer}"
                )
    return problems


def fabric_settings(
    profile: str,
    hcas: list[str],
    socket_ifnames: list[str],
    *,
    gid_index: int = 3,
    efa_fork_safe: bool = False,
    nvls: str = "auto",
    debug: bool = False,
) -> dict:
    """{'nccl_conf': NCCL_* for /etc/nccl.conf, 'environment': those plus what other libraries read}."""
    if profile not in PROFILES:
        raise ValueError(f"unknown NCCL fabric profile {profile!r}; known: {', '.join(PROFILES)}")
    # '=' makes NCCL match names exactly: a bare prefix 'mlx5_1' also selects mlx5_10..mlx5_17, and
    # 'eth0' also selects eth01.
    nccl = {"NCCL_SOCKET_IFNAME": "=" + ",".join(socket_ifnames)}
    if profile in ("infiniband", "roce"):
        nccl["NCCL_IB_HCA"] = "=" + ",".join(hcas)
    if profile == "roce":
        nccl["NCCL_IB_GID_INDEX"] = str(gid_index)  # RoCEv2 over IPv4
    if profile == "ethernet":
        nccl["NCCL_IB_DISABLE"] = "1"
    if nvls in NVLS_VALUES:
        nccl["NCCL_NVLS_ENABLE"] = NVLS_VALUES[nvls]
    if debug:
        nccl["NCCL_DEBUG"] = "INFO"
        nccl["NCCL_DEBUG_SUBSYS"] = "INIT,NET"  # transport choice and "GPU Direct RDMA Enabled"
    # Gloo (torch.distributed's CPU group) takes plain interface names, no '=' or prefixes.
    environment = {**nccl, "GLOO_SOCKET_IFNAME": ",".join(socket_ifnames)}
    if profile == "efa" and efa_fork_safe:
        # libfabric reads it from the environment only; needed only where fork() fails.
        environment["FI_EFA_USE_HUGE_PAGE"] = "0"
    return {"nccl_conf": nccl, "environment": environment}


class FilterModule:
    """nccl_fabric_hca_ports, nccl_fabric_missing_hcas, nccl_fabric_unusable_hcas, nccl_fabric_port_listing,
    nccl_fabric_settings."""

    def filters(self):
        return {
            "nccl_fabric_hca_ports": hca_ports,
            "nccl_fabric_missing_hcas": missing_hcas,
            "nccl_fabric_unusable_hcas": unusable_hcas,
            "nccl_fabric_port_listing": port_listing,
            "nccl_fabric_settings": fabric_settings,
        }
