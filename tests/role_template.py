"""Render one of a role's templates as the role does: Ansible's template module, with the role's
defaults and vars, and the variables a test sets on top."""

import os
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO

BIN = Path(sys.executable).parent


def render_role_template(role: str, template: str, out: Path, *args: str, **extra_vars: object) -> Path:
    role_dir = REPO / "roles" / role
    args = [
        BIN / "ansible", "localhost", "-c", "local", "-i", "localhost,",
        "-e", f"ansible_python_interpreter={sys.executable}",
        "-e", f"@{role_dir / 'defaults' / 'main.yml'}", "-e", f"@{role_dir / 'vars' / 'main.yml'}",
        "-m", "ansible.builtin.template",
        "-a", " ".join([f"src={role_dir / 'templates' / template} dest={out}", *args]),
    ]  # fmt: skip
    for name, value in extra_vars.items():
        args += ["-e", f"{name}={value}"]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return out
