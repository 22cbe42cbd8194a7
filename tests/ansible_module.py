"""Run one Ansible module on localhost through ansible-core, as a play would, and return its result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO

ANSIBLE = Path(sys.executable).parent / "ansible"


def run_ansible_module(
    tmp_path: Path, module: str, args: str, check: bool = False, extra_env: dict | None = None
) -> dict:
    """`args` is what `ansible -a` takes (key=value words or a JSON object)."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        **(extra_env or {}),
    }
    command = [str(ANSIBLE), "localhost", "-c", "local", "-m", module, "-a", args]
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
