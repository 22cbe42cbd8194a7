"""The vram_check module's runs on a real H100 are reproduced by the engine from the captured XML."""

import re
from pathlib import Path

import pytest
import yaml
from qwen_infra.nvidia_smi import parse_nvidia_smi_xml
from qwen_infra.sizing.architecture import architecture_from_config, catalog_config
from qwen_infra.sizing.layout import Plan
from qwen_infra.sizing.report import check_host

from tests.paths import REPO

H100 = REPO / "tests" / "fixtures" / "gpu" / "h100-80gb-hbm3"
RUNS = {
    # recorded file: (catalog model, plan arguments given to the module)
    "vram-check-h100-qwen3-32b-len32768.txt": ("Qwen/Qwen3-32B", {"max_model_len": 32768}),
    "vram-check-h100-qwen3-32b-default-len.txt": ("Qwen/Qwen3-32B", {}),
    "vram-check-h100-qwen3-32b-tp2-on-1gpu.txt": ("Qwen/Qwen3-32B", {"tensor_parallel_size": 2}),
    "vram-check-h100-qwen3-32b-awq.txt": ("Qwen/Qwen3-32B-AWQ", {}),
}


def recorded_facts(name: str) -> dict:
    """The module's returned facts: the YAML that follows `localhost | SUCCESS =>` (or FAILED!)."""
    text = (H100 / "vram_check" / name).read_text()
    body = re.split(r"^localhost \| (?:SUCCESS|FAILED!) => *$", text, flags=re.MULTILINE)[1]
    return yaml.safe_load(body)["ansible_facts"]["vram_check"]


@pytest.fixture(scope="module")
def h100_gpus():
    return parse_nvidia_smi_xml((H100 / "nvidia-smi-q.xml").read_text())


@pytest.mark.parametrize("name", sorted(RUNS))
def test_module_read_the_same_gpu_the_fixture_describes(name, h100_gpus):
    facts = recorded_facts(name)
    assert facts["gpus"][0]["name"] == h100_gpus[0].name
    assert facts["gpus"][0]["usable_gib"] == pytest.approx(h100_gpus[0].usable_bytes / 2**30, abs=1e-3)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_engine_reproduces_the_real_host_verdict(name, h100_gpus, tmp_path):
    model, plan_args = RUNS[name]
    arch = architecture_from_config(catalog_config(model), name=Path(model).name)
    result = check_host(arch, Plan(**plan_args), gpus=h100_gpus)
    facts = recorded_facts(name)
    assert result["fits"] == facts["fits"]
    assert result["kv_cache_tokens"] == facts["kv_cache_tokens"]
    assert result["weights_gib_per_rank"] == facts["weights_gib_per_rank"]
