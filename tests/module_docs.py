"""What a module's own documentation says, read from its file the way ansible-doc reads it (the
DOCUMENTATION / RETURN strings), for tests that hold a module to its documentation."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from tests.paths import REPO

LIBRARY = REPO / "library"
MODULES = sorted(path.stem for path in LIBRARY.glob("*.py"))
# Keys Ansible itself adds to every result, or that a module returns by convention without documenting.
STANDARD_KEYS = {
    "_ansible_no_log",
    "action",
    "ansible_facts",
    "changed",
    "deprecations",
    "diff",  # Ansible's common return value for diff mode, which its callback renders
    "failed",
    "invocation",
    "skipped",
    "warnings",
}


def _tree(module: str) -> ast.Module:
    return ast.parse((LIBRARY / f"{module}.py").read_text())


def doc_string(module: str, name: str) -> dict[str, Any]:
    """DOCUMENTATION, EXAMPLES or RETURN of a module, parsed as YAML."""
    for node in _tree(module).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError(f"library/{module}.py has no {name}")


def argument_spec(module: str) -> dict[str, Any]:
    """The argument_spec the module passes to AnsibleModule (a literal in every module here)."""
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.keyword) and node.arg == "argument_spec":
            return ast.literal_eval(node.value)
    raise AssertionError(f"library/{module}.py passes no literal argument_spec")


def supports_check_mode(module: str) -> bool:
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.keyword) and node.arg == "supports_check_mode":
            return bool(ast.literal_eval(node.value))
    return False


def returns_diff(module: str) -> bool:
    """Whether the code hands Ansible a diff (a `diff=` keyword or a "diff" result key)."""
    return any(
        (isinstance(node, ast.keyword) and node.arg == "diff")
        or (isinstance(node, ast.Constant) and node.value == "diff")
        for node in ast.walk(_tree(module))
    )


def assert_return_documented(module: str, result: dict[str, Any]) -> None:
    """Every key the module returned is in its RETURN (Ansible's own keys aside)."""
    undocumented = set(result) - set(doc_string(module, "RETURN")) - STANDARD_KEYS
    assert not undocumented, f"{module} returned keys its RETURN does not document: {sorted(undocumented)}"


def module_path(module: str) -> Path:
    return LIBRARY / f"{module}.py"
