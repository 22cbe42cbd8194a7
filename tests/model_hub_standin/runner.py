"""Run the model_fetch module through ansible-core (as a play would), returning the task's result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"


def run_model_fetch(tmp_path: Path, args: dict, check: bool = False) -> dict:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "NO_PROXY": "127.0.0.1",
    }
    command = [str(ANSIBLE), "localhost", "-c", "local", "-m", "model_fetch", "-a", json.dumps(args)]
    done = subprocess.run(
        [*command, *(["--check"] if check else [])],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        output = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"ansible printed no JSON:\n{done.stdout}\n{done.stderr}") from error
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"]
