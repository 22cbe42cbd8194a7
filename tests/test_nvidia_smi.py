"""nvidia-smi parsers, on output captured from real GPUs (tests/fixtures/gpu) and on edge cases."""

import json
from pathlib import Path

import pytest
from qwen_infra import nvidia_smi as smi

FIXTURES = Path(__file__).parent / "fixtures" / "gpu"
H100 = FIXTURES / "h100-80gb-hbm3"
H200 = FIXTURES / "h200"
MIB = 1 << 20
# The H100 fixture's CSV was taken with noheader,nounits: these are its columns.
H100_CSV_FIELDS = (
    "index",
    "uuid",
    "name",
    "pci.bus_id",
    "memory.total",
    "memory.used",
    "memory.free",
    "driver_version",
    "compute_cap",
    "persistence_mode",
)


def torch_total(fixture: Path) -> int:
    return json.loads((fixture / "torch-mem.json").read_text())["total"]


@pytest.mark.parametrize(
    ("fixture", "name", "total_mib", "reserved_mib"),
    [
        (H100, "NVIDIA H100 80GB HBM3", 81559, 480),
        (H200, "NVIDIA H200", 143771, 616),
    ],
)
def test_xml_from_real_gpus(fixture, name, total_mib, reserved_mib):
    [gpu] = smi.parse_nvidia_smi_xml((fixture / "nvidia-smi-q.xml").read_text())
    assert gpu.name == name
    assert gpu.index == 0
    assert gpu.uuid.startswith("GPU-")
    assert gpu.total_bytes == total_mib * MIB
    assert gpu.reserved_bytes == reserved_mib * MIB
    assert gpu.driver_version == "580.159.04"
    assert gpu.cuda_version == "13.0"
    assert gpu.mig_mode == "Disabled"
    # Usable is what torch (and so vLLM) reports as the device total, to nvidia-smi's 1 MiB rounding.
    assert abs(gpu.usable_bytes - torch_total(fixture)) <= MIB


def test_h100_xml_usable_equals_torch_total():
    [gpu] = smi.parse_nvidia_smi_xml((H100 / "nvidia-smi-q.xml").read_text())
    assert abs(gpu.usable_bytes - 85017493504) <= MIB
    assert gpu.usable_bytes == 81079 * MIB


def test_h100_csv_without_header_needs_the_fields():
    text = (H100 / "query-gpu.csv").read_text()
    with pytest.raises(smi.NvidiaSmiParseError, match="pass the queried fields"):
        smi.parse_query_gpu_csv(text)
    [gpu] = smi.parse_query_gpu_csv(text, H100_CSV_FIELDS)
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.total_bytes == 81559 * MIB
    assert gpu.reserved_bytes is None  # not queried, so usable comes from used + free
    assert gpu.usable_bytes == torch_total(H100)
    assert gpu.driver_version == "580.159.04"


def test_h200_csv_with_header_and_units():
    [gpu] = smi.parse_query_gpu_csv((H200 / "query-gpu.csv").read_text())
    assert gpu.name == "NVIDIA H200"
    assert gpu.reserved_bytes == 616 * MIB
    assert gpu.usable_bytes == (143771 - 616) * MIB
    assert abs(gpu.usable_bytes - torch_total(H200)) <= MIB


def test_multi_gpu_xml_and_not_reported_fields():
    xml = """<?xml version="1.0" ?>
<nvidia_smi_log>
  <driver_version>550.54.15</driver_version>
  <cuda_version>12.4</cuda_version>
  <gpu id="00000000:07:00.0">
    <product_name>NVIDIA A100-SXM4-80GB</product_name>
    <uuid>GPU-1</uuid>
    <minor_number>3</minor_number>
    <mig_mode><current_mig>Enabled</current_mig></mig_mode>
    <fb_memory_usage><total>81920 MiB</total><reserved>N/A</reserved>
      <used>10 MiB</used><free>81040 MiB</free></fb_memory_usage>
  </gpu>
  <gpu id="00000000:08:00.0">
    <product_name>NVIDIA A100-SXM4-80GB</product_name>
    <fb_memory_usage><total>81920 MiB</total></fb_memory_usage>
  </gpu>
</nvidia_smi_log>"""
    first, second = smi.parse_nvidia_smi_xml(xml)
    assert first.index == 3
    assert first.mig_mode == "Enabled"
    assert first.reserved_bytes is None
    assert first.usable_bytes == 81050 * MIB  # used + free when reserved is N/A
    assert second.index == 1  # no minor_number: position
    assert second.usable_bytes == 81920 * MIB  # nothing else reported: the total
    assert second.driver_version == "550.54.15"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not xml at all <", "does not parse"),
        ("<other/>", "expected <nvidia_smi_log>"),
        ("<nvidia_smi_log><gpu><product_name>x</product_name></gpu></nvidia_smi_log>", "no fb_memory_usage"),
        (
            "<nvidia_smi_log><gpu><fb_memory_usage><total>lots</total></fb_memory_usage></gpu></nvidia_smi_log>",
            "not a MiB amount",
        ),
    ],
)
def test_xml_errors(text, message):
    with pytest.raises(smi.NvidiaSmiParseError, match=message):
        smi.parse_nvidia_smi_xml(text)


@pytest.mark.parametrize(
    ("text", "fields", "message"),
    [
        ("", None, "empty"),
        ("index, name\n0, x\n", None, "memory.total"),
        ("0, x\n", ("index", "name"), "must include memory.total"),
        ("0, 100\n", ("index", "memory.total", "memory.used"), "columns"),
        ("0, [N/A]\n", ("index", "memory.total"), "no memory.total"),
    ],
)
def test_csv_errors(text, fields, message):
    with pytest.raises(smi.NvidiaSmiParseError, match=message):
        smi.parse_query_gpu_csv(text, fields)


def test_query_command_asks_for_every_field_the_parser_reads():
    command = smi.query_gpu_command()
    assert command[0] == "nvidia-smi"
    assert "memory.reserved" in command[1]
    assert command[2] == "--format=csv,nounits"
    header = ", ".join(
        f"{field} [MiB]" if field.startswith("memory") else field for field in smi.QUERY_GPU_FIELDS
    )
    [gpu] = smi.parse_query_gpu_csv(f"{header}\n0, GPU-x, NVIDIA L4, 23034, 500, 0, 22534, 570.1\n")
    assert gpu.usable_bytes == 22534 * MIB
    assert gpu.as_dict()["name"] == "NVIDIA L4"


class _FakeModule:
    """What run_nvidia_smi_xml uses of an AnsibleModule: get_bin_path and run_command."""

    def __init__(self, binary, result):
        self.binary, self.result, self.commands = binary, result, []

    def get_bin_path(self, name):
        return self.binary

    def run_command(self, command):
        self.commands.append(command)
        return self.result


def test_run_nvidia_smi_xml_returns_the_xml():
    module = _FakeModule("/usr/bin/nvidia-smi", (0, "<nvidia_smi_log/>", ""))
    assert smi.run_nvidia_smi_xml(module) == ("/usr/bin/nvidia-smi", "<nvidia_smi_log/>", "")
    assert module.commands == [["/usr/bin/nvidia-smi", "-q", "-x"]]


def test_run_nvidia_smi_xml_explains_a_missing_or_failing_binary():
    assert smi.run_nvidia_smi_xml(_FakeModule(None, None)) == (None, None, "nvidia-smi is not installed")
    failing = _FakeModule("/usr/bin/nvidia-smi", (9, "", "NVIDIA-SMI has failed\n"))
    assert smi.run_nvidia_smi_xml(failing) == (None, None, "nvidia-smi failed (rc=9): NVIDIA-SMI has failed")
