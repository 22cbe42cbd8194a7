"""The quantize role end to end on this machine (connection local): check mode on a fresh host changes
nothing, a run quantizes the tiny lab model with GPTQ, and a second run reports no change. The role's
virtualenv is stood in for by this test's own interpreter, which carries the pinned llmcompressor, so
nothing is installed; the apt step is skipped by its tag (quantize_os_packages) so the test never changes
the machine's packages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from qwen_infra import lab_model

from tests.paths import REPO

PLAYBOOK = """
- name: Quantize the tiny model
  hosts: all
  gather_facts: false
  roles:
    - role: quantize
"""


def converge(tmp_path: Path, extra: dict, *options: str) -> tuple[str, dict]:
    playbook = tmp_path / "quantize.yml"
    playbook.write_text(PLAYBOOK)
    env = os.environ | {
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_LIBRARY": str(REPO / "library"),
        "ANSIBLE_MODULE_UTILS": str(REPO / "module_utils"),
        "NO_COLOR": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    argv += [
        "--connection",
        "local",
        "--skip-tags",
        "quantize_os_packages",
        "-e",
        json.dumps(extra),
        *options,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)", done.stdout)
    assert recap, done.stdout[-2000:]
    return done.stdout, {"ok": int(recap[1]), "changed": int(recap[2])}


def test_role_quantizes_then_does_nothing(tmp_path):
    lab_model.make_model(tmp_path / "qwen3-tiny")
    calibration = tmp_path / "calibration.txt"
    calibration.write_text("Qwen is a family of large language models.\nvLLM serves models.\n" * 8)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    wrapper = venv / "bin" / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    extra = {
        "ansible_python_interpreter": sys.executable,
        "quantize_method": "gptq",
        "quantize_source_dir": str(tmp_path / "qwen3-tiny"),
        "quantize_output_dir": str(tmp_path / "out" / "qwen3-tiny-gptq"),
        "quantize_calibration_data": str(calibration),
        "quantize_group_size": 64,
        "quantize_venv_dir": str(venv),
    }
    # Check mode on a fresh host (no virtualenv yet) says what it would do and changes nothing.
    checked, recap = converge(tmp_path, extra | {"quantize_venv_dir": str(tmp_path / "fresh")}, "--check")
    assert "would install llmcompressor==0.14.0.1" in checked
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "fresh").exists()

    first, recap = converge(tmp_path, extra)
    assert recap["changed"] >= 1
    assert "Serve it with vllm_model_path" in first
    output = tmp_path / "out" / "qwen3-tiny-gptq"
    assert (
        json.loads((output / "config.json").read_text())["quantization_config"]["format"] == "pack-quantized"
    )
    assert (output / ".qwen-infra-quantize.json").is_file()

    second, recap = converge(tmp_path, extra)
    assert recap["changed"] == 0, second[-3000:]
    assert "already holds this quantization" in second
