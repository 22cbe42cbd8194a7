"""Each role's argument spec and its defaults describe the same public interface."""

import re

import pytest
import yaml

from tests.paths import REPO

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())


class VaultLoader(yaml.SafeLoader):
    """Reads inventories holding `!vault` values without decrypting them."""


VaultLoader.add_constructor("!vault", lambda loader, node: "<vaulted>")


def load(path):
    return yaml.load(path.read_text(), Loader=VaultLoader) or {}  # noqa: S506 - SafeLoader subclass


def spec_options(role):
    return load(REPO / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


def test_every_role_has_an_argument_spec():
    assert set(ROLES) == {p.name for p in (REPO / "roles").iterdir() if p.is_dir()}


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_spec_name_the_same_variables(role):
    options = spec_options(role)
    defaults = load(REPO / "roles" / role / "defaults" / "main.yml")
    optional = {name for name, option in options.items() if not option.get("required")}
    assert set(defaults) - set(options) == set(), "defaults missing from the argument spec"
    assert optional - set(defaults) == set(), "optional spec entries without a default"


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_equal_role_defaults(role):
    options = spec_options(role)
    defaults = load(REPO / "roles" / role / "defaults" / "main.yml")
    for name, option in options.items():
        if "default" in option:
            assert option["default"] == defaults[name], name


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role):
    prefix = role + "_"
    assert all(name.startswith(prefix) for name in spec_options(role))


@pytest.mark.parametrize("role", ROLES)
def test_every_option_is_described(role):
    assert all(option.get("description") for option in spec_options(role).values())


def test_every_inventory_sets_the_required_vllm_variables():
    required = {name for name, option in spec_options("vllm").items() if option.get("required")}
    for inventory in ("lab", "sample"):
        group_vars = REPO / "inventories" / inventory / "group_vars" / "vllm_servers"
        found = set()
        for path in group_vars.glob("*.yml"):
            found |= set(load(path))
        missing = required - found - ({"vllm_api_key"} if inventory == "sample" else set())
        assert missing == set(), f"{inventory}: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_read_by_its_role(role):
    """A default nothing reads is an interface that does nothing: every one appears in the role's tasks,
    templates, vars, handlers, files or filters."""
    directory = REPO / "roles" / role
    used = "\n".join(
        path.read_text()
        for part in ("tasks", "templates", "vars", "handlers", "files", "filter_plugins")
        for path in (directory / part).rglob("*")
        if path.is_file()
    )
    defaults = load(directory / "defaults" / "main.yml")
    unread = [name for name in defaults if not re.search(rf"\b{re.escape(name)}\b", used)]
    assert unread == []
