"""Build the qwen.infra Ansible collection from this repository's own files (`make collection`).

No second copy lives in the repository: the collection is assembled in a staging directory (default
.cache/collection, git-ignored) and `ansible-galaxy collection build` runs there. What goes where:

  library/*.py                      -> plugins/modules/
  action_plugins/*.py               -> plugins/action/ (a module's action plugin, by the module's name)
  module_utils/qwen_infra/          -> plugins/module_utils/qwen_infra/ (the modules import it from there)
  roles/<role>/                     -> roles/<role>/
  roles/<role>/filter_plugins/*.py  -> plugins/filter/: a role inside a collection loads no plugins of its
                                       own, so its filters become the collection's and the role's files
                                       call them by their full name (| qwen.infra.<filter>)
  docs/                             -> docs/ (the role READMEs link ../../docs/)
  docs/collection.md                -> README.md

and writes galaxy.yml (version: qwen_infra.__version__, the project's one version; dependencies: the
collections the roles call, from requirements.yml) and meta/runtime.yml (requires_ansible: the series of
the ansible-core that pyproject.toml pins). Prints the tarball's path.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
NAMESPACE, NAME = "qwen", "infra"
FQCN = f"{NAMESPACE}.{NAME}"
DEFAULT_OUT = REPO / ".cache" / "collection"
ANSIBLE_GALAXY = Path(sys.executable).parent / "ansible-galaxy"
# Collections every Ansible has, which a collection never declares.
BUILTIN = {"ansible.builtin", "ansible.legacy", FQCN}
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
# A task's action written with its full name: "  community.general.modprobe:" or "- ansible.builtin.copy:".
_TASK_ACTION = re.compile(r"^\s*(?:- )?([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+:\s*$", re.MULTILINE)

GALAXY = {
    "namespace": NAMESPACE,
    "name": NAME,
    "readme": "README.md",
    "authors": ["qwen-infra"],
    "description": (
        "Serve Qwen models with vLLM on GPU hosts: the NVIDIA driver, CUDA, NCCL and fabric roles, a "
        "validation gate, verified model fetch, quantization, and a hardened vLLM service whose settings "
        "are checked against the model and the GPUs before it starts."
    ),
    "license": ["Apache-2.0"],
    "tags": ["vllm", "qwen", "llm", "gpu", "nvidia", "inference"],
}


def version() -> str:
    """qwen_infra.__version__, read from its file as setuptools reads it (nothing imported)."""
    tree = ast.parse((REPO / "module_utils" / "qwen_infra" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__version__":
            return str(ast.literal_eval(node.value))
    raise SystemExit("module_utils/qwen_infra/__init__.py states no __version__")


def requires_ansible() -> str:
    """The ansible-core series pyproject.toml pins (2.19.14 -> '>=2.19.0'): what the roles are tested on."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    listed = [
        *project["dependencies"],
        *(dep for extra in project["optional-dependencies"].values() for dep in extra),
    ]
    pins = [dep for dep in listed if dep.startswith("ansible-core==")]
    if not pins:
        raise SystemExit("pyproject.toml pins no ansible-core (ansible-core==X.Y.Z)")
    pin = pins[0]
    major, minor = pin.removeprefix("ansible-core==").split(".")[:2]
    return f">={major}.{minor}.0"


def dependencies(roles: Path) -> dict[str, str]:
    """The collections the roles call, each from its requirements.yml version up to its next major
    release (the pin is what is tested; a consumer's newer minor release of it is accepted)."""
    text = "\n".join(path.read_text() for path in sorted(roles.rglob("*")) if path.suffix in {".yml", ".j2"})
    used = set(_TASK_ACTION.findall(text)) - BUILTIN
    pinned = {entry["name"]: entry["version"] for entry in _requirements()}
    missing = sorted(used - set(pinned))
    if missing:
        raise SystemExit(f"the roles use {', '.join(missing)}, which requirements.yml does not pin")
    return {name: f">={pinned[name]},<{int(pinned[name].split('.')[0]) + 1}.0.0" for name in sorted(used)}


def _requirements() -> list[dict[str, Any]]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "requirements.yml").read_text())
    collections: list[dict[str, Any]] = loaded["collections"]
    return collections


def filter_names(plugin: Path) -> list[str]:
    """The filter names a filter plugin file defines (the keys FilterModule.filters returns)."""
    for node in ast.walk(ast.parse(plugin.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "filters":
            returned = next(n for n in ast.walk(node) if isinstance(n, ast.Return))
            if isinstance(returned.value, ast.Dict):
                return [ast.literal_eval(key) for key in returned.value.keys if key is not None]
    raise SystemExit(f"{plugin}: no FilterModule.filters() returning a dict literal")


def lift_role_filters(collection: Path) -> list[str]:
    """Move every role's filter_plugins/ into plugins/filter/ and call its filters by full name."""
    lifted = []
    for plugin_dir in sorted(collection.glob("roles/*/filter_plugins")):
        for plugin in sorted(plugin_dir.glob("*.py")):
            target = collection / "plugins" / "filter" / plugin.name
            if target.exists():
                raise SystemExit(f"two roles ship a filter plugin file named {plugin.name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(plugin, target)
            lifted += filter_names(plugin)
        shutil.rmtree(plugin_dir)
    if lifted:
        use = re.compile(r"(\|\s*)(" + "|".join(map(re.escape, lifted)) + r")\b")
        for path in collection.glob("roles/**/*"):
            if path.suffix in {".yml", ".j2"}:
                text = path.read_text()
                rewritten = use.sub(rf"\g<1>{FQCN}.\g<2>", text)
                if rewritten != text:
                    path.write_text(rewritten)
    return lifted


def stage(out: Path) -> Path:
    """Assemble the collection under out/ansible_collections/qwen/infra and return that directory."""
    collection = out / "ansible_collections" / NAMESPACE / NAME
    if collection.exists():
        shutil.rmtree(collection)
    collection.mkdir(parents=True)
    modules = collection / "plugins" / "modules"
    modules.mkdir(parents=True)
    for module in sorted((REPO / "library").glob("*.py")):
        shutil.copy2(module, modules / module.name)
    actions = collection / "plugins" / "action"
    actions.mkdir(parents=True)
    for action in sorted((REPO / "action_plugins").glob("*.py")):
        shutil.copy2(action, actions / action.name)
    shutil.copytree(
        REPO / "module_utils" / "qwen_infra",
        collection / "plugins" / "module_utils" / "qwen_infra",
        ignore=_IGNORED,
    )
    shutil.copytree(REPO / "roles", collection / "roles", ignore=_IGNORED)
    lift_role_filters(collection)
    shutil.copytree(REPO / "docs", collection / "docs", ignore=_IGNORED)
    shutil.copy2(REPO / "docs" / "collection.md", collection / "README.md")
    galaxy = {**GALAXY, "version": version(), "dependencies": dependencies(collection / "roles")}
    header = "# Written by tools/build_collection.py; edit the script, not this file.\n"
    (collection / "galaxy.yml").write_text(header + yaml.safe_dump(galaxy, sort_keys=False, width=110))
    (collection / "meta").mkdir()
    runtime = {"requires_ansible": requires_ansible()}
    (collection / "meta" / "runtime.yml").write_text(header + yaml.safe_dump(runtime, sort_keys=False))
    return collection


def build(out: Path) -> Path:
    """Stage the collection and build its tarball in out/; returns the tarball."""
    collection = stage(out)
    # A fixed argument list, no shell: the virtualenv's ansible-galaxy on the directory staged above.
    subprocess.run(  # noqa: S603
        [str(ANSIBLE_GALAXY), "collection", "build", str(collection), "--output-path", str(out), "--force"],
        check=True,
        capture_output=True,
        text=True,
    )
    tarball = out / f"{NAMESPACE}-{NAME}-{version()}.tar.gz"
    if not tarball.is_file():
        raise SystemExit(f"ansible-galaxy built no {tarball.name} in {out}")
    return tarball


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"staging directory ({DEFAULT_OUT})")
    args = parser.parse_args(argv)
    print(build(args.out.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
