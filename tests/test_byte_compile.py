"""lab/byte_compile.py: what ansible-playbook imports is compiled where Python writes no bytecode itself,
and Python then reads it instead of compiling again."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import byte_compile

from tests.paths import REPO


def test_the_closure_is_ansible_core_and_what_it_requires():
    closure = byte_compile.requirement_closure("ansible-core")
    assert {"ansible-core", "jinja2", "markupsafe", "pyyaml", "cryptography", "resolvelib"} <= closure
    assert "pytest" not in closure  # installed here, required by nothing of ansible-core's


def source(package: str, *parts: str) -> Path:
    """A module's source file, found without importing it (ansible-core's imports change this process)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0], *parts)


def cached(prefix: Path, path: Path) -> Path:
    """Where Python looks for the compiled `path` under PYTHONPYCACHEPREFIX."""
    name = f"{path.stem}.{sys.implementation.cache_tag}.pyc"
    return prefix / path.parent.relative_to(path.anchor) / name


def test_what_ansible_playbook_imports_is_compiled_and_read_where_python_writes_no_bytecode(tmp_path):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(tmp_path)}
    script = REPO / "lab" / "byte_compile.py"
    subprocess.run([sys.executable, script], env=env, check=True, capture_output=True)
    modules = [
        source("ansible", "playbook", "play.py"),
        source("jinja2", "environment.py"),
        source("yaml", "__init__.py"),
        REPO / "callback_plugins" / "load_before_fork.py",
    ]
    for module in modules:
        assert cached(tmp_path, module).is_file(), module
    # Python's import system says where each module's code came from (-v).
    verbose = subprocess.run(
        [sys.executable, "-v", "-c", "import jinja2.environment"],
        env=env, capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    assert f"code object from '{cached(tmp_path, modules[1])}'" in verbose
