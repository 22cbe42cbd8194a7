"""GPU host parsers (qwen_infra.gpu_host) on real captures and fake sysfs trees with real names."""

import json
import os
from pathlib import Path

import pytest
from qwen_infra import gpu_host as gh
from qwen_infra import nvidia_smi
from qwen_infra.catalogs import aws_instances
from qwen_infra.catalogs.gpus import GPUS

FIXTURES = Path(__file__).parent / "fixtures" / "gpu"
H100 = FIXTURES / "h100-80gb-hbm3"
H200 = FIXTURES / "h200"
SYNTHETIC = FIXTURES / "synthetic"


# ---- nvidia-smi topo -m -------------------------------------------------------------------------------


def test_topology_of_the_real_single_h100():
    topo = gh.parse_topo_matrix((H100 / "topo-m.txt").read_text())
    assert topo["gpus"] == ["GPU0"]
    assert topo["links"] == {"GPU0": {}}
    assert topo["nvlink_pairs"] == {}
    assert topo["cpu_affinity"] == {"GPU0": "0-15"}
    assert topo["nics"] == {}


def test_topology_of_four_nvlinked_gpus_with_nics():
    topo = gh.parse_topo_matrix((SYNTHETIC / "topo-m-4gpu-2nic.txt").read_text())
    assert topo["gpus"] == ["GPU0", "GPU1", "GPU2", "GPU3"]
    assert topo["nics"] == {"NIC0": "mlx5_0", "NIC1": "mlx5_1"}
    assert len(topo["nvlink_pairs"]) == 6
    assert set(topo["nvlink_pairs"].values()) == {18}
    assert topo["links"]["GPU0"]["NIC0"] == "PXB"
    assert topo["links"]["GPU2"]["NIC0"] == "SYS"
    assert topo["cpu_affinity"]["GPU3"] == "48-95"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tPHB\t0-7\nGPU1\tPHB\t X \t0-7\n", {}),
        ("\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tNV4\t0-7\nGPU1\tNV4\t X \t0-7\n", {"GPU0-GPU1": 4}),
    ],
)
def test_nvlink_pairs_only_for_nv_links(text, expected):
    assert gh.parse_topo_matrix(text)["nvlink_pairs"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "No devices were found\n",
        "\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \n",
    ],
)
def test_topology_refuses_what_it_does_not_understand(text):
    with pytest.raises(gh.GpuHostParseError):
        gh.parse_topo_matrix(text)


# ---- /sys/class/infiniband and /sys/bus/pci/devices -----------------------------------------------------


def make_rdma_device(root: Path, name: str, ports: dict, driver: str | None = None) -> None:
    """One device under a fake /sys/class/infiniband, with the kernel's file names and formats."""
    device = root / "sys/class/infiniband" / name
    (device / "fw_ver").parent.mkdir(parents=True)
    (device / "fw_ver").write_text("28.39.1002\n")
    for number, (state, layer, rate) in ports.items():
        port = device / "ports" / str(number)
        port.mkdir(parents=True)
        (port / "state").write_text(state + "\n")
        (port / "phys_state").write_text("5: LinkUp\n" if "ACTIVE" in state else "3: Disabled\n")
        (port / "link_layer").write_text(layer + "\n")
        (port / "rate").write_text(rate + "\n")
    if driver:
        target = root / "sys/bus/pci/drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        (device / "device").mkdir()
        os.symlink(target, device / "device" / "driver")


def test_infiniband_roce_and_efa_devices(tmp_path):
    make_rdma_device(tmp_path, "mlx5_0", {1: ("4: ACTIVE", "InfiniBand", "400 Gb/sec (4X NDR)")}, "mlx5_core")
    make_rdma_device(tmp_path, "mlx5_1", {1: ("1: DOWN", "InfiniBand", "10 Gb/sec (4X SDR)")}, "mlx5_core")
    make_rdma_device(tmp_path, "mlx5_2", {1: ("4: ACTIVE", "Ethernet", "200 Gb/sec (4X HDR)")}, "mlx5_core")
    make_rdma_device(tmp_path, "rdmap16s27", {1: ("4: ACTIVE", "Unspecified", "100 Gb/sec (4X EDR)")}, "efa")
    devices = gh.read_infiniband(tmp_path / "sys/class/infiniband")
    assert [(d["name"], d["kind"]) for d in devices] == [
        ("mlx5_0", "infiniband"),
        ("mlx5_1", "infiniband"),
        ("mlx5_2", "roce"),
        ("rdmap16s27", "efa"),
    ]
    assert devices[0]["ports"] == [
        {"port": 1, "state": "ACTIVE", "phys_state": "LinkUp", "link_layer": "InfiniBand", "rate_gbps": 400.0}
    ]
    assert devices[1]["active_ports"] == []
    assert devices[3]["driver"] == "efa"
    assert gh.hca_ports(devices) == ["mlx5_0:1", "mlx5_2:1"]


def test_no_infiniband_directory_means_no_devices(tmp_path):
    assert gh.read_infiniband(tmp_path / "sys/class/infiniband") == []


def make_pci_device(root: Path, address: str, vendor: str, pci_class: str) -> None:
    device = root / "sys/bus/pci/devices" / address
    device.mkdir(parents=True)
    (device / "vendor").write_text(vendor + "\n")
    (device / "class").write_text(pci_class + "\n")


def test_nvswitches_are_nvidia_bridges(tmp_path):
    make_pci_device(tmp_path, "0000:18:00.0", "0x10de", "0x030200")  # H100 GPU
    for n in range(4):
        make_pci_device(tmp_path, f"0000:0{n}:00.0", "0x10de", "0x068000")  # NVSwitch
    make_pci_device(tmp_path, "0000:00:1f.0", "0x8086", "0x068000")  # another vendor's bridge
    assert gh.count_nvswitches(tmp_path / "sys/bus/pci/devices") == 4
    assert gh.count_nvswitches(tmp_path / "nowhere") == 0


# ---- the assembled fact -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "model", "usable_gib"),
    [(H100, "NVIDIA H100 80GB HBM3", 79.18), (H200, "NVIDIA H200", 139.80)],
)
def test_facts_from_the_real_captures(fixture, model, usable_gib):
    xml = (fixture / "nvidia-smi-q.xml").read_text()
    gpus = [gpu.as_dict() for gpu in nvidia_smi.parse_nvidia_smi_xml(xml)]
    topo_file = fixture / "topo-m.txt"
    topology = gh.parse_topo_matrix(topo_file.read_text()) if topo_file.exists() else None
    facts = gh.assemble_facts(gpus, gh.parse_architectures(xml), topology, [], 0)
    assert facts["gpu_present"] is True
    assert facts["gpu_count"] == 1
    assert facts["gpu_model"] == model
    assert facts["gpu_architecture"] == "Hopper"
    assert round(facts["usable_bytes_min"] / (1 << 30), 2) == usable_gib
    assert facts["driver_version"] == "580.159.04"
    assert facts["cuda_version"] == "13.0"
    assert facts["nvlink_present"] is False
    assert facts["nvswitch_present"] is False
    assert facts["msg"].startswith(f"1 x {model} ({usable_gib:.2f} GiB usable), driver 580.159.04")


def test_facts_without_a_gpu_say_so(tmp_path):
    make_rdma_device(tmp_path, "mlx5_0", {1: ("4: ACTIVE", "InfiniBand", "400 Gb/sec (4X NDR)")})
    devices = gh.read_infiniband(tmp_path / "sys/class/infiniband")
    facts = gh.assemble_facts([], [], None, devices, 0, absent_reason="nvidia-smi is not installed")
    assert facts["gpu_present"] is False
    assert facts["gpu_count"] == 0
    assert facts["msg"] == "no NVIDIA GPU on this host: nvidia-smi is not installed"
    assert facts["hcas"] == ["mlx5_0"]
    assert facts["hca_ports"] == ["mlx5_0:1"]


def test_architectures_refuse_broken_xml():
    with pytest.raises(gh.GpuHostParseError):
        gh.parse_architectures("<nvidia_smi_log><gpu>")


# ---- the real 2x H200 machine and host profiles -------------------------------------------------------

H200_X2 = FIXTURES / "h200-x2"


def h200_x2_facts() -> dict:
    xml = (H200_X2 / "nvidia-smi-q.xml").read_text()
    gpus = [gpu.as_dict() for gpu in nvidia_smi.parse_nvidia_smi_xml(xml)]
    topology = gh.parse_topo_matrix((H200_X2 / "topo-m.txt").read_text())
    return gh.assemble_facts(gpus, gh.parse_architectures(xml), topology, [], 0)


def test_two_h200_joined_by_18_nvlinks():
    facts = h200_x2_facts()
    assert facts["gpu_count"] == 2
    assert facts["nvlink_pairs"] == {"GPU0-GPU1": 18}
    assert facts["topology"]["cpu_affinity"] == {"GPU0": "0-31", "GPU1": "0-31"}
    assert facts["msg"] == (
        "2 x NVIDIA H200 (139.80 GiB usable), driver 580.159.04, CUDA 13.0, NVLink yes, NVSwitch 0, "
        "IB/RoCE HCAs 0, EFA 0"
    )


def test_the_module_on_the_machine_reported_what_the_parsers_compute():
    """gpu_facts.json is the module's own output on the 2x H200 machine (capture.sh)."""
    reported = json.loads((H200_X2 / "gpu_facts.json").read_text())["ansible_facts"]["gpu_facts"]
    computed = h200_x2_facts()
    for key in ("gpu_count", "gpu_model", "usable_bytes_min", "nvlink_pairs", "driver_version", "msg"):
        assert reported[key] == computed[key], key
    assert reported["problems"] == []


@pytest.mark.parametrize(
    ("profile", "expected_problems"),
    [
        ("dev-h200-2", []),
        (
            "p5e.48xlarge",
            [
                "2 GPUs found, 8 expected",
                "0 EFA devices found, 32 expected",
                "no NVSwitch found, the profile has NVSwitch",
            ],
        ),
        (
            "hgx-h100-8",
            [
                "2 GPUs found, 8 expected",
                "GPU model NVIDIA H200 found, NVIDIA H100 80GB HBM3 or NVIDIA H100 expected",
                "no NVSwitch found, the profile has NVSwitch",
                "0 IB/RoCE HCAs with an active port, 8 expected",
            ],
        ),
    ],
)
def test_profiles_against_the_real_2x_h200(profile, expected_problems):
    expected = gh.profile_expectations(profile, aws_instances.INSTANCES, GPUS)
    assert gh.compare_with_profile(h200_x2_facts(), expected) == expected_problems


def test_too_little_usable_memory_is_measured_vs_expected():
    facts = {**h200_x2_facts(), "usable_bytes_min": 100 << 30}
    expected = gh.profile_expectations("dev-h200-2", aws_instances.INSTANCES, GPUS)
    assert gh.compare_with_profile(facts, expected) == [
        "100.00 GiB usable on the smallest GPU, at least 137.00 GiB expected"
    ]


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(LookupError, match=r"unknown GPU host profile 'p9.96xlarge'; known: .*p5en\.48xlarge"):
        gh.profile_expectations("p9.96xlarge", aws_instances.INSTANCES, GPUS)


@pytest.mark.parametrize(
    "profile", ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge"]
)
def test_every_nvswitch_instance_type_expects_efa(profile):
    expected = gh.profile_expectations(profile, aws_instances.INSTANCES, GPUS)
    assert expected["nvswitch"] is True
    assert expected["gpu_count"] == 8
    assert expected["efa_count"] in (4, 16, 32)


def test_one_active_port_per_hca_counts_once(tmp_path):
    make_rdma_device(tmp_path, "mlx5_0", {1: ("4: ACTIVE", "InfiniBand", "400 Gb/sec (4X NDR)")})
    devices = gh.read_infiniband(tmp_path / "sys/class/infiniband")
    facts = {**h200_x2_facts(), **{"hca_ports": gh.hca_ports(devices)}}
    expected = {**gh.profile_expectations("dev-h200-2", {}, GPUS), "ib_hcas": 2}
    assert gh.compare_with_profile(facts, expected) == ["1 IB/RoCE HCAs with an active port, 2 expected"]
