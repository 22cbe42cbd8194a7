"""Byte-compile what ansible-playbook and its workers import: ansible-core, the packages it requires (and
theirs), and this repository's controller plugins.

Python writes a module's compiled form on first import, unless PYTHONDONTWRITEBYTECODE is set, as it is
on this project's development and CI machines and in many container images. Then each ansible-playbook,
and each worker it forks for a task and host, compiles again every module it imports, and pip installs
with --no-compile here (the Makefile says why), so the virtualenv has none to read. compileall writes
them whatever that variable says; Python reads them either way. What it saves: docs/converge.md.

    python lab/byte_compile.py     (the Makefile's set-up runs it after each install)
"""

from __future__ import annotations

import compileall
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The controller's plugins in this repository (ansible.cfg names these directories); library/ runs on
# the hosts, from the zip ansible-core sends, which is compiled there.
PLUGIN_DIRS = ("action_plugins", "callback_plugins")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(root: str) -> set[str]:
    """`root` and every distribution it requires, transitively (extras left out), normalized names."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = _normalized(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:  # a requirement for another platform
            continue
        for requirement in requirements:
            if "extra ==" not in requirement:
                todo.append(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0])
    return seen


def import_locations(distributions: set[str]) -> list[Path]:
    """The directory (or file) of every top-level module these distributions install."""
    locations = []
    for top_level, owners in importlib.metadata.packages_distributions().items():
        if not any(_normalized(owner) in distributions for owner in owners):
            continue
        spec = importlib.util.find_spec(top_level)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            locations += [Path(path) for path in spec.submodule_search_locations]
        elif spec.origin and spec.origin.endswith(".py"):
            locations.append(Path(spec.origin))
    return sorted(set(locations))


def main() -> int:
    targets = import_locations(requirement_closure("ansible-core"))
    targets += [REPO / name for name in PLUGIN_DIRS]
    compiled = True
    for target in targets:
        if target.is_dir():
            compiled &= bool(compileall.compile_dir(target, quiet=1, workers=0))
        else:
            compiled &= bool(compileall.compile_file(target, quiet=1))
    print(f"[setup] byte-compiled {len(targets)} packages and plugin directories for ansible-playbook")
    return 0 if compiled else 1


if __name__ == "__main__":
    sys.exit(main())
