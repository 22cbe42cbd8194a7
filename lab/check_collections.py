"""Check that the collections in requirements.yml are installed at their pinned versions.

Galaxy is unreachable from the machines this project runs on, so collections come from the pinned
`ansible` PyPI package. This check replaces `ansible-galaxy collection install`: it never touches the
network and says exactly which collection is missing or at the wrong version.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


def installed_collections() -> dict[str, str]:
    # The ansible-galaxy of the interpreter running this check, not whichever is first on PATH.
    galaxy = Path(sys.executable).with_name("ansible-galaxy")
    listing = subprocess.run(  # noqa: S603 - fixed arguments
        [str(galaxy), "collection", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, str] = {}
    for collections in json.loads(listing).values():
        for name, info in collections.items():
            found.setdefault(name, info["version"])
    return found


def main(requirements: str) -> int:
    wanted = yaml.safe_load(Path(requirements).read_text())["collections"]
    found = installed_collections()
    problems = [
        f"{item['name']} {item['version']} is required but "
        + (f"{found[item['name']]} is installed" if item["name"] in found else "it is not installed")
        for item in wanted
        if found.get(item["name"]) != item["version"]
    ]
    for problem in problems:
        print(f"[setup] {problem}; install the `ansible` version pinned in pyproject.toml", file=sys.stderr)
    if not problems:
        print(f"[setup] collections present: {', '.join(i['name'] + ' ' + i['version'] for i in wanted)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "requirements.yml"))
