"""The gpu_facts module end to end: run by ansible-core against a fake nvidia-smi and a fake sysfs tree."""

import os
from pathlib import Path

from tests.ansible_module import REPO, run_ansible_module

H100 = REPO / "tests" / "fixtures" / "gpu" / "h100-80gb-hbm3"


def run_module(tmp_path: Path, path_dirs: list[Path], args: str = "", check: bool = False) -> dict:
    # Only the given directories (and the system's) on PATH: decides which nvidia-smi the module finds.
    path = os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"])
    return run_ansible_module(
        tmp_path, "gpu_facts", f"sysfs_root={tmp_path} {args}", check=check, extra_env={"PATH": path}
    )


def fake_nvidia_smi(tmp_path: Path) -> Path:
    """A bin/ directory whose nvidia-smi prints the real H100 captures."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = topo ]; then cat {H100}/topo-m.txt; else cat {H100}/nvidia-smi-q.xml; fi\n'
    )
    script.chmod(0o755)
    return bin_dir


def test_real_h100_output_in_check_mode(tmp_path):
    result = run_module(tmp_path, [fake_nvidia_smi(tmp_path)], check=True)
    assert result["changed"] is False
    facts = result["ansible_facts"]["gpu_facts"]
    assert facts["gpu_present"] is True
    assert facts["gpu_model"] == "NVIDIA H100 80GB HBM3"
    assert facts["topology"]["gpus"] == ["GPU0"]
    assert result["gpu_count"] == 1


def test_no_gpu_is_a_fact_not_a_failure(tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run_module(tmp_path, [empty])
    assert result.get("failed") is not True
    assert result["gpu_present"] is False
    assert "nvidia-smi is not installed" in result["msg"]


def test_require_gpu_fails_without_one(tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run_module(tmp_path, [empty], args="require_gpu=true")
    assert result["failed"] is True
    assert result["msg"] == "no NVIDIA GPU on this host: nvidia-smi is not installed"


def test_broken_nvidia_smi_is_reported(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(
        "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the driver.'\nexit 9\n"
    )
    (bin_dir / "nvidia-smi").chmod(0o755)
    result = run_module(tmp_path, [bin_dir])
    assert result["gpu_present"] is False
    assert "nvidia-smi failed (rc=9)" in result["msg"]
