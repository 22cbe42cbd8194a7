"""What prometheus_server's tasks decide from host_facts' answer, evaluated with the role's own defaults and
vars by ansible-core: services systemd already runs are left alone on a re-run (a `\\.service$` pattern in
a folded YAML scalar once matched nothing, so every re-run started all three again)."""

import pytest

from tests.role_template import role_variable

SERVICES = ["prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter"]


def serving(units: dict[str, dict[str, str]]) -> list[str]:
    """`_prometheus_server_serving` for a host_facts answer whose units are `units`."""
    host = {"units": units, "paths": {}, "packages_missing": [], "checksums": {}}
    return role_variable(
        "prometheus_server", "_prometheus_server_serving", {"__prometheus_server_host": host}
    )


def unit(active: str, enabled: str) -> dict[str, str]:
    return {"active_state": active, "unit_file_state": enabled, "need_daemon_reload": False}


def test_services_systemd_runs_and_enables_are_serving():
    units = {f"{name}.service": unit("active", "enabled") for name in SERVICES}
    assert serving(units) == SERVICES


@pytest.mark.parametrize(
    ("active", "enabled"), [("inactive", "enabled"), ("active", "disabled"), ("failed", "enabled")]
)
def test_a_service_stopped_or_not_enabled_is_not(active, enabled):
    units = {f"{name}.service": unit("active", "enabled") for name in SERVICES}
    units["prometheus-alertmanager.service"] = unit(active, enabled)
    assert serving(units) == ["prometheus", "prometheus-blackbox-exporter"]
