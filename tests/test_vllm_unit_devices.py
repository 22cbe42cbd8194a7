"""The vllm unit's device allow-list against the device nodes a real driver-580 host lists (captured on
the lent H200: tests/fixtures/gpu/h200/proc-devices.txt and dev-nvidia.txt).

systemd's DeviceAllow=char-NAME looks NAME up in /proc/devices and allows every minor of that major, so
a name the driver does not register allows nothing (and systemd warns), and a node whose major no name
covers stays closed to vLLM."""

import re

import jinja2
import yaml
from qwen_infra import unit_sandbox

from tests.paths import REPO

TEMPLATE = REPO / "roles" / "vllm" / "templates" / "vllm.service.j2"
CAPTURES = REPO / "tests" / "fixtures" / "gpu" / "h200"


def allowed_names() -> list[str]:
    """The char-NAME groups of the unit's GPU branch, in order."""
    return [
        name.removeprefix("char-")
        for name in device_allows(render_unit("cuda", "none"))
        if name.startswith("char-")
    ]


def character_devices(text: str) -> dict[str, int]:
    """/proc/devices' character section: name -> major."""
    section = text.split("Block devices:", maxsplit=1)[0]
    devices = {}
    for line in section.splitlines():
        match = re.match(r"^\s*(\d+)\s+(\S+)$", line)
        if match:
            devices[match.group(2)] = int(match.group(1))
    return devices


def nvidia_nodes(text: str) -> dict[str, int]:
    """`ls -l /dev/nvidia* /dev/nvidia-caps`: character node -> major (directory headers skipped)."""
    nodes, folder = {}, "/dev"
    for line in text.splitlines():
        if line.endswith(":"):
            folder = line[:-1]
            continue
        match = re.match(r"^c\S+\s+\d+\s+\S+\s+\S+\s+(\d+),\s*(\d+)\s+.*?\s(\S+)$", line)
        if match:
            name = match.group(3)
            path = name if name.startswith("/") else f"{folder}/{name}"
            nodes[path] = int(match.group(1))
    return nodes


def test_parsers_read_the_formats():
    devices = character_devices("Character devices:\n  1 mem\n195 nvidia\n\nBlock devices:\n  8 sd\n")
    assert devices == {"mem": 1, "nvidia": 195}
    nodes = nvidia_nodes(
        "crw-rw-rw- 1 root root 195,   0 Dec  2 20:00 /dev/nvidia0\n"
        "/dev/nvidia-caps:\ncr-------- 1 root root 241, 1 Dec  2 20:00 nvidia-cap1\n"
    )
    assert nodes == {"/dev/nvidia0": 195, "/dev/nvidia-caps/nvidia-cap1": 241}


def test_every_allowed_name_is_a_group_the_driver_registers():
    devices = character_devices((CAPTURES / "proc-devices.txt").read_text())
    names = allowed_names()
    assert names, "the unit allows no GPU device"
    assert [name for name in names if name not in devices] == []
    assert "nvidia-frontend" not in names  # not on driver 580


def test_every_nvidia_node_of_the_host_is_allowed():
    devices = character_devices((CAPTURES / "proc-devices.txt").read_text())
    allowed_majors = {devices[name] for name in allowed_names()}
    nodes = nvidia_nodes((CAPTURES / "dev-nvidia.txt").read_text())
    assert {"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"} <= set(nodes)
    assert {path: major for path, major in nodes.items() if major not in allowed_majors} == {}


def test_gpu_and_control_nodes_share_a_major_and_both_are_named():
    devices = character_devices((CAPTURES / "proc-devices.txt").read_text())
    assert devices["nvidia"] == devices["nvidiactl"]
    assert {"nvidia", "nvidiactl"} <= set(allowed_names())


def test_dynamic_majors_are_named_never_numbered():
    # A class by its /proc/devices name, or a node by its path (/dev/infiniband/rdma_cm, a misc device
    # with a dynamic minor): never a major number.
    for fabric in ("none", "efa", "infiniband", "roce"):
        allowed = device_allows(render_unit("cuda", fabric))
        assert [name for name in allowed if not name.startswith(("char-", "/dev/"))] == [], fabric
        assert [name for name in allowed if re.match(r"char-\d", name)] == [], fabric


# --- the fabric's RDMA devices (NCCL over EFA / InfiniBand / RoCE) ----------------------------------


def render_unit(device: str, fabric: str) -> str:
    """The unit as the role renders it (the template, its own variables; ansible_managed's comment filter
    stood in for)."""
    defaults = yaml.safe_load((REPO / "roles" / "vllm" / "defaults" / "main.yml").read_text())
    # A systemd unit, not HTML: nothing to escape.
    environment = jinja2.Environment(  # noqa: S701
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    environment.filters["comment"] = lambda text: f"# {text}"
    return environment.from_string(TEMPLATE.read_text()).render({
        **defaults, "ansible_managed": "managed", "vllm_served_model_name": "m", "vllm_model_path": "/srv/m",
        "_vllm_env_file": "/etc/vllm/vllm.env", "_vllm_device": device,
        "__vllm_sandbox": {"fabric": fabric, "properties": unit_sandbox.properties(device, fabric)},
        "__vllm_server_check": {"argv": ["/opt/vllm/venv/bin/python", "-m", "x"]},
    })  # fmt: skip


def device_allows(unit: str) -> list[str]:
    return re.findall(r"^DeviceAllow=(\S+) rw$", unit, flags=re.MULTILINE)


def test_rdma_fabrics_let_the_verbs_devices_through_by_their_proc_devices_name():
    devices = (CAPTURES / "proc-devices.txt").read_text().split("Block devices:", maxsplit=1)[0]
    # The host lists two verbs majors (231 and 244) under one name: char-NAME allows both.
    assert len(re.findall(r"^\s*\d+ infiniband_verbs$", devices, flags=re.MULTILINE)) == 2
    for fabric in ("efa", "infiniband", "roce"):
        unit = render_unit("cuda", fabric)
        rdma = [name for name in device_allows(unit) if "infiniband" in name or "rdma" in name]
        assert "char-infiniband_verbs" in rdma, fabric
        assert [n for n in rdma if n.startswith("char-") and n[5:] not in character_devices(devices)] == []
        assert "LimitMEMLOCK=infinity" in unit.splitlines(), fabric
    # EFA's libfabric provider uses verbs only; RDMA-CM is for InfiniBand and RoCE
    assert "/dev/infiniband/rdma_cm" not in device_allows(render_unit("cuda", "efa"))
    assert "/dev/infiniband/rdma_cm" in device_allows(render_unit("cuda", "roce"))


def test_hosts_without_an_rdma_fabric_keep_every_rdma_device_closed():
    for device, fabric in (("cuda", "none"), ("cuda", "ethernet"), ("cpu", "none")):
        unit = render_unit(device, fabric)
        assert not [name for name in device_allows(unit) if "infiniband" in name or "rdma" in name]
        assert "LimitMEMLOCK" not in unit
    assert device_allows(render_unit("cuda", "none")) == [
        "char-nvidia", "char-nvidiactl", "char-nvidia-uvm", "char-nvidia-caps"
    ]  # fmt: skip
    assert "PrivateDevices=yes" in render_unit("cpu", "none").splitlines()
