"""Render one of a role's templates, or evaluate one of its variables, as the role does: ansible-core with
the role's defaults and vars, and the variables a test sets on top."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO

BIN = Path(sys.executable).parent


def _ansible_with_role_vars(role_dir: Path) -> list[str]:
    """`ansible` on localhost with the role's defaults and vars loaded as the role loads them."""
    return [
        str(BIN / "ansible"), "localhost", "-c", "local", "-i", "localhost,",
        "-e", f"ansible_python_interpreter={sys.executable}",
        "-e", f"@{role_dir / 'defaults' / 'main.yml'}", "-e", f"@{role_dir / 'vars' / 'main.yml'}",
    ]  # fmt: skip


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        args, capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def render_role_template(role: str, template: str, out: Path, *args: str, **extra_vars: object) -> Path:
    role_dir = REPO / "roles" / role
    command = [
        *_ansible_with_role_vars(role_dir),
        "-m", "ansible.builtin.template",
        "-a", " ".join([f"src={role_dir / 'templates' / template} dest={out}", *args]),
    ]  # fmt: skip
    for name, value in extra_vars.items():
        command += ["-e", f"{name}={value}"]
    _run(command)
    return out


def role_variable(role: str, name: str, extra_vars: dict) -> object:
    """A role variable's value as ansible-core templates it, with `extra_vars` (JSON) on top."""
    command = [
        *_ansible_with_role_vars(REPO / "roles" / role), "-e", json.dumps(extra_vars),
        "-m", "ansible.builtin.debug", "-a", f"var={name}",
    ]  # fmt: skip
    done = _run(command, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    return json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"][name]
