"""The roles' public interface as their meta/argument_specs.yml state it, read on the controller (the
variable-name check of playbooks/validate.yml). Not shipped to hosts: it needs PyYAML."""

from __future__ import annotations

from pathlib import Path

import yaml


def role_options(roles_dir: Path) -> dict[str, set[str]]:
    """Role name -> every option of every entry point of its argument specs."""
    options = {}
    for spec in sorted(Path(roles_dir).glob("*/meta/argument_specs.yml")):
        entry_points = (yaml.safe_load(spec.read_text()) or {}).get("argument_specs") or {}
        options[spec.parent.parent.name] = {
            name for entry in entry_points.values() for name in (entry or {}).get("options") or {}
        }
    return options
