"""The vram_check module: its logic (report.check_host, on real nvidia-smi output) and its interface."""

import ast
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from qwen_infra import nvidia_smi
from qwen_infra.server import FIELD_NAMES
from qwen_infra.sizing.architecture import Architecture, resolve_model
from qwen_infra.sizing.errors import SizingError
from qwen_infra.sizing.layout import Plan
from qwen_infra.sizing.report import check_host, not_checked
from qwen_infra.sizing.vllm_rules import DEFAULT_GPU_MEMORY_UTILIZATION, DEFAULT_VLLM_RELEASE, release_rules
from qwen_infra.units import GIB

from tests.paths import REPO

MODULE = REPO / "library" / "vram_check.py"
H100_XML = REPO / "tests" / "fixtures" / "gpu" / "h100-80gb-hbm3" / "nvidia-smi-q.xml"
H200_XML = REPO / "tests" / "fixtures" / "gpu" / "h200" / "nvidia-smi-q.xml"


def host(xml: Path, copies: int = 1):
    [gpu] = nvidia_smi.parse_nvidia_smi_xml(xml.read_text())
    return [gpu.__class__(**{**gpu.as_dict(), "index": i}) for i in range(copies)]


def model(name: str) -> Architecture:
    return resolve_model(name)[0]


def test_fitting_plan_on_the_real_h100():
    facts = check_host(model("Qwen/Qwen3-8B"), Plan(max_model_len=32768), gpus=host(H100_XML))
    assert facts["checked"] is True
    assert facts["fits"] is True
    assert facts["gpu"] == "NVIDIA H100 80GB HBM3"
    assert facts["gpus"] == [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "usable_gib": 79.179}]
    assert facts["msg"].startswith("Qwen/Qwen3-8B fits 1 x NVIDIA H100 80GB HBM3 (79.18 GiB usable)")
    # nvidia-smi's product name keeps vLLM's large-GPU batch defaults.
    assert facts["breakdown"]["plan"]["max_num_seqs"] == 1024


def test_misfit_names_the_shortfall_and_fixes():
    facts = check_host(model("Qwen/Qwen3-32B"), Plan(), gpus=host(H100_XML))
    assert facts["fits"] is False
    assert "does not fit 1 x NVIDIA H100 80GB HBM3" in facts["msg"]
    assert "needs 10.00 GiB of KV cache per GPU" in facts["msg"]
    assert "fix: lower --max-model-len to" in facts["msg"]
    assert "fix: raise --tensor-parallel-size to 2" in facts["msg"]


def test_more_gpus_than_the_host_has():
    facts = check_host(model("Qwen/Qwen3-32B"), Plan(tensor_parallel_size=2), gpus=host(H200_XML))
    assert facts["fits"] is False
    assert any("2 GPUs, but 1 are available" in p for p in facts["problems"])
    facts = check_host(model("Qwen/Qwen3-32B"), Plan(tensor_parallel_size=2), gpus=host(H200_XML, copies=2))
    assert facts["fits"] is True


def test_smallest_gpu_decides():
    gpus = host(H100_XML) + host(H200_XML)
    facts = check_host(model("Qwen/Qwen3-8B"), Plan(tensor_parallel_size=2), gpus=gpus)
    assert facts["gpu"] == "NVIDIA H100 80GB HBM3"


def test_memory_override_needs_no_gpu():
    facts = check_host(model("Qwen/Qwen3-8B"), Plan(), gpu_memory_bytes=85017493504)
    assert facts["checked"] is True
    assert facts["fits"] is True
    assert facts["gpus"] == []
    with pytest.raises(SizingError, match="must be positive"):
        check_host(model("Qwen/Qwen3-8B"), Plan(), gpu_memory_bytes=0)


def test_mig_slices_are_not_sized_as_whole_gpus():
    [gpu] = host(H100_XML)
    mig = gpu.__class__(**{**gpu.as_dict(), "mig_mode": "Enabled"})
    facts = check_host(model("Qwen/Qwen3-0.6B"), Plan(), gpus=[mig])
    assert facts["fits"] is False
    assert any("MIG is enabled" in p for p in facts["problems"])


def test_host_without_gpu_is_reported_not_failed():
    facts = not_checked("this host has no NVIDIA GPU (nvidia-smi is not installed)")
    assert facts == {
        "checked": False,
        "fits": None,
        "msg": "this host has no NVIDIA GPU (nvidia-smi is not installed)",
        "problems": [],
        "gpus": [],
    }
    with pytest.raises(SizingError, match="no GPU was listed"):
        check_host(model("Qwen/Qwen3-8B"), Plan(), gpus=[])


# --- the module file: documentation and argument_spec agree ---------------------------------------------


def module_source():
    return ast.parse(MODULE.read_text())


def documented_options():
    for node in module_source().body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION":
            return yaml.safe_load(ast.literal_eval(node.value))["options"]
    raise AssertionError("no DOCUMENTATION")


def argument_spec():
    for node in ast.walk(module_source()):
        if isinstance(node, ast.keyword) and node.arg == "argument_spec":
            return ast.literal_eval(node.value)
    raise AssertionError("no argument_spec")


def test_documentation_matches_argument_spec():
    docs, spec = documented_options(), argument_spec()
    assert set(docs) == set(spec)
    for name, option in spec.items():
        assert docs[name]["type"] == option["type"], name
        assert docs[name].get("default") == option.get("default"), name
        assert docs[name].get("choices") == option.get("choices"), name
        assert docs[name].get("required", False) == option.get("required", False), name


def test_the_module_takes_the_server_description_whole():
    """Server settings (and their defaults) live in qwen_infra.server only, never again as options."""
    spec = argument_spec()
    assert spec["server"] == {"type": "dict", "required": True}
    assert not set(spec) & set(FIELD_NAMES)
    assert "supports_check_mode=True" in MODULE.read_text()


def test_without_a_version_the_module_sizes_the_release_the_role_pins():
    assert "default" not in argument_spec()["vllm_version"]
    pinned = yaml.safe_load((REPO / "roles" / "vllm" / "defaults" / "main.yml").read_text())[
        "vllm_cuda_version"
    ]
    assert release_rules(pinned).version == DEFAULT_VLLM_RELEASE == ".".join(pinned.split(".")[:2])
    assert release_rules(None).default_gpu_memory_utilization == DEFAULT_GPU_MEMORY_UTILIZATION


def with_process(xml: Path, pid: int, mib: int) -> str:
    """The fixture's XML with one process on its GPU (the captures were taken on an idle GPU)."""
    process = (
        f"<process_info><pid>{pid}</pid><type>C</type><process_name>python3</process_name>"
        f"<used_memory>{mib} MiB</used_memory></process_info>"
    )
    return xml.read_text().replace("<processes>", "<processes>" + process, 1)


def test_processes_are_read_per_gpu():
    assert nvidia_smi.parse_gpu_processes(H200_XML.read_text()) == {0: []}
    listed = nvidia_smi.parse_gpu_processes(with_process(H200_XML, 4242, 70000))
    assert listed == {0: [(4242, 70000 * 1024 * 1024)]}


def test_only_other_services_processes_count(tmp_path):
    for pid, group in ((1, "0::/system.slice/vllm.service\n"), (2, "0::/system.slice/other.service\n")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cgroup").write_text(group)
    processes = {0: [(1, 10 * GIB), (2, 20 * GIB), (3, 5 * GIB)], 1: [(1, 7 * GIB)]}
    # pid 3 has left /proc (or lives in another namespace): counted, to be safe.
    assert nvidia_smi.held_by_others(processes, "vllm", proc=tmp_path) == {0: 25 * GIB}
    assert nvidia_smi.held_by_others(processes, None, proc=tmp_path) == {}


def test_a_gpu_shared_with_another_server_is_refused_before_it_runs_out_of_memory():
    gpus = host(H200_XML)
    plan = Plan(max_model_len=32768, vllm_version="0.26")
    alone = check_host(model("Qwen/Qwen3-32B"), plan, gpus=gpus)
    assert alone["fits"]
    # Another server holds 68 GiB: vLLM's own start check (free >= reservation) would pass at
    # utilization 0.5 (69.9 GiB asked, 71.8 free), then the graphs and the sampler come on top.
    shared = check_host(
        model("Qwen/Qwen3-8B"), replace(plan, gpu_memory_utilization=0.5), gpus=gpus,
        gpu_memory_in_use={0: 68 * GIB},
    )  # fmt: skip
    assert not shared["fits"]
    assert "GPU 0, where other processes hold 68.00 GiB, has 71.80 GiB" in shared["problems"][0]
    assert "lower --gpu-memory-utilization to 0.48" in shared["problems"][0]
    assert check_host(
        model("Qwen/Qwen3-8B"), replace(plan, gpu_memory_utilization=0.5), gpus=gpus,
        gpu_memory_in_use={1: 68 * GIB},
    )["fits"]  # fmt: skip
