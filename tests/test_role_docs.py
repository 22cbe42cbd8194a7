"""Each role's README variable table is what tools/role_docs.py makes of its meta/argument_specs.yml."""

from pathlib import Path

import pytest
import yaml

from tests.paths import REPO
from tools import role_docs

ROLES = sorted(path.parent.parent for path in (REPO / "roles").glob("*/meta/argument_specs.yml"))


def test_every_role_is_covered():
    assert [role.name for role in role_docs.roles()] == [role.name for role in ROLES]
    assert len(ROLES) >= 7


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_readme_table_is_current(role: Path):
    readme = (role / "README.md").read_text()
    assert readme == role_docs.rendered(readme, role_docs.specs_of(role), role / "README.md"), (
        f"roles/{role.name}/README.md is stale: run .venv/bin/python tools/role_docs.py"
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_table_lists_every_variable_once(role: Path):
    """The generated table names each option of each entry point, and nothing else."""
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    readme = (role / "README.md").read_text()
    generated = readme.split(role_docs.BEGIN, 1)[1].split(role_docs.END, 1)[0]
    rows = [
        line.split("|")[1].strip().strip("`") for line in generated.splitlines() if line.startswith("| `")
    ]
    assert sorted(rows) == sorted(specs["main"]["options"])


def test_a_changed_spec_makes_the_table_stale():
    """The check can fail: a changed default, choice or description changes the table."""
    role = REPO / "roles" / "gpu_validate"
    specs = role_docs.specs_of(role)
    readme = (role / "README.md").read_text()
    specs["main"]["options"]["gpu_validate_nccl_size_mib"]["default"] = 512
    assert role_docs.rendered(readme, specs, role / "README.md") != readme


def test_table_cells():
    specs = {
        "main": {
            "options": {
                "x_mode": {
                    "type": "str",
                    "default": "auto",
                    "choices": ["auto", "off"],
                    "description": "A|B",
                },
                "x_list": {"type": "list", "elements": "str", "default": [], "description": ["one", "two"]},
                "x_key": {"type": "str", "required": True, "no_log": True, "description": "The key."},
                "x_len": {"type": "int", "default": None, "description": "Null: vLLM's."},
            }
        },
        "other": {"options": {}},
    }
    assert role_docs.table(specs).splitlines() == [
        "| variable | type | default | description |",
        "|---|---|---|---|",
        '| `x_mode` | str | `"auto"` | A\\|B One of `auto`, `off`. |',
        "| `x_list` | list of str | `[]` | one two |",
        "| `x_key` | str | required | The key. Secret: never logged (no_log). |",
        "| `x_len` | int | `null` | Null: vLLM's. |",
        "",
        "Entry point `other`:",
        "",
        "| variable | type | default | description |",
        "|---|---|---|---|",
    ]


def test_a_readme_without_markers_is_refused(tmp_path: Path):
    with pytest.raises(SystemExit, match="no variable table markers"):
        role_docs.rendered("# role\n", {"main": {"options": {}}}, tmp_path / "README.md")
