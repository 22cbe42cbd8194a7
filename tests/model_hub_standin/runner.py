"""Run the model_fetch module through ansible-core (as a play would), returning the task's result."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ansible_module import ANSIBLE, run_ansible_module

__all__ = ["ANSIBLE", "run_model_fetch"]


def run_model_fetch(tmp_path: Path, args: dict, check: bool = False, env: dict | None = None) -> dict:
    # Requests go only to the loopback stand-ins, never through a proxy.
    return run_ansible_module(
        tmp_path,
        "model_fetch",
        json.dumps(args),
        check=check,
        extra_env={"NO_PROXY": "127.0.0.1", **(env or {})},
    )
