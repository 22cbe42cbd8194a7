"""`make lab` and every molecule scenario start their hosts from one container definition."""

from pathlib import Path

import pytest
import yaml

from tests.paths import REPO

SCENARIOS = sorted(p.parent for p in (REPO / "molecule").glob("*/molecule.yml"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenarios_create_and_destroy_through_the_shared_lab_playbooks(scenario):
    playbooks = yaml.safe_load((scenario / "molecule.yml").read_text())["provisioner"]["playbooks"]
    assert (scenario / playbooks["create"]).resolve() == REPO / "molecule" / "shared" / "create.yml"
    assert (scenario / playbooks["destroy"]).resolve() == REPO / "molecule" / "shared" / "destroy.yml"


@pytest.mark.parametrize(
    "playbook", [REPO / "lab" / "up.yml", REPO / "molecule" / "shared" / "create.yml"], ids=lambda p: p.name
)
def test_lab_and_molecule_start_hosts_with_the_same_tasks(playbook):
    tasks = yaml.safe_load(playbook.read_text())[0]["tasks"]
    includes = [t["ansible.builtin.include_tasks"] for t in tasks if "ansible.builtin.include_tasks" in t]
    # Hosts are started first, by the one shared file; what follows (the lab's SSH) reaches them.
    assert [Path(include).name for include in includes].count("up.yml") == 1
    assert Path(includes[0]).name == "up.yml"
    assert Path(includes[0]).parent.name == "tasks"


def test_container_definition_has_what_systemd_needs_and_no_privileged_mode():
    definition = yaml.safe_load((REPO / "lab" / "host_container.yml").read_text())
    assert definition["lab_container_command"] == "/lib/systemd/systemd"
    assert definition["lab_container_cgroupns_mode"] == "host"
    assert "/sys/fs/cgroup:/sys/fs/cgroup:rw" in definition["lab_container_volumes"]
    assert {"/run", "/run/lock"} <= set(definition["lab_container_tmpfs"])
    assert "privileged" not in (REPO / "lab" / "tasks" / "up.yml").read_text()
    up_tasks = (REPO / "lab" / "tasks" / "up.yml").read_text()
    for key in ("capabilities", "cgroupns_mode", "command", "tmpfs", "shm_size", "volumes"):
        assert f"lab_container_{key}" in up_tasks, key
