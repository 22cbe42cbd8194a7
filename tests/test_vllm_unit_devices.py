"""The vllm unit's device allow-list against the device nodes a real driver-580 host lists (captured on
the lent H200: tests/fixtures/gpu/h200/proc-devices.txt and dev-nvidia.txt).

systemd's DeviceAllow=char-NAME looks NAME up in /proc/devices and allows every minor of that major, so
a name the driver does not register allows nothing (and systemd warns), and a node whose major no name
covers stays closed to vLLM."""

import re

from tests.paths import REPO

TEMPLATE = REPO / "roles" / "vllm" / "templates" / "vllm.service.j2"
CAPTURES = REPO / "tests" / "fixtures" / "gpu" / "h200"


def allowed_names() -> list[str]:
    """The char-NAME groups of the unit's GPU branch, in order."""
    return re.findall(r"^DeviceAllow=char-(\S+) rw$", TEMPLATE.read_text(), flags=re.MULTILINE)


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
    text = TEMPLATE.read_text()
    assert re.findall(r"^DeviceAllow=(?!char-)", text, flags=re.MULTILINE) == []
    assert not re.search(r"^DeviceAllow=char-\d", text, flags=re.MULTILINE)
