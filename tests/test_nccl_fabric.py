"""The nccl_fabric role's filters and templates: which settings each fabric profile writes."""

import importlib.util
import itertools
import re
from pathlib import Path

import jinja2
import pytest
import yaml
from qwen_infra import unit_sandbox
from qwen_infra.gpu_host import read_infiniband

ROLE = Path(__file__).resolve().parent.parent / "roles" / "nccl_fabric"
_spec = importlib.util.spec_from_file_location(
    "nccl_fabric_filters", ROLE / "filter_plugins" / "nccl_fabric.py"
)
filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filters)

# Old aws-ofi-nccl advice that current versions do not need and that breaks or slows them.
LEGACY_EFA = ("FI_PROVIDER", "NCCL_PROTO", "FI_EFA_USE_DEVICE_RDMA", "RDMAV_")
HCAS = ["mlx5_0:1", "mlx5_3:1"]


def settings(profile, **options):
    return filters.fabric_settings(profile, HCAS, ["ens5"], **options)


def every_combination():
    for profile, fork_safe, nvls, debug in itertools.product(
        filters.PROFILES, (False, True), ("auto", "enable", "disable"), (False, True)
    ):
        yield settings(profile, efa_fork_safe=fork_safe, nvls=nvls, debug=debug)


def test_no_profile_ever_sets_legacy_efa_knobs():
    for result in every_combination():
        for key in [*result["nccl_conf"], *result["environment"]]:
            assert not key.startswith(LEGACY_EFA), key


def test_efa_sets_only_bootstrap_by_default():
    assert settings("efa") == {
        "nccl_conf": {"NCCL_SOCKET_IFNAME": "=ens5"},
        "environment": {"NCCL_SOCKET_IFNAME": "=ens5", "GLOO_SOCKET_IFNAME": "ens5"},
    }


def test_efa_fork_safety_goes_to_the_environment_only():
    result = settings("efa", efa_fork_safe=True)
    assert result["environment"]["FI_EFA_USE_HUGE_PAGE"] == "0"
    assert "FI_EFA_USE_HUGE_PAGE" not in result["nccl_conf"]


def test_fork_safety_is_efa_only():
    assert "FI_EFA_USE_HUGE_PAGE" not in settings("infiniband", efa_fork_safe=True)["environment"]


def test_infiniband_lists_exact_hcas_and_keeps_ib_enabled():
    conf = settings("infiniband")["nccl_conf"]
    assert conf["NCCL_IB_HCA"] == "=mlx5_0:1,mlx5_3:1"
    assert "NCCL_IB_DISABLE" not in conf
    assert "NCCL_IB_GID_INDEX" not in conf


def test_roce_adds_the_gid_index():
    assert settings("roce")["nccl_conf"]["NCCL_IB_GID_INDEX"] == "3"
    assert settings("roce", gid_index=1)["nccl_conf"]["NCCL_IB_GID_INDEX"] == "1"
    assert settings("roce")["nccl_conf"]["NCCL_IB_HCA"] == "=mlx5_0:1,mlx5_3:1"


def test_ethernet_disables_ib_and_names_the_socket_interfaces():
    environment = filters.fabric_settings("ethernet", [], ["eth0", "eth1"])["environment"]
    assert environment["NCCL_IB_DISABLE"] == "1"
    assert environment["NCCL_SOCKET_IFNAME"] == "=eth0,eth1"
    assert environment["GLOO_SOCKET_IFNAME"] == "eth0,eth1"
    assert "NCCL_IB_HCA" not in environment


def test_debug_knobs_only_on_request():
    for result in every_combination():
        debug = "NCCL_DEBUG" in result["environment"]
        assert debug == ("NCCL_DEBUG" in result["nccl_conf"])
    assert "NCCL_DEBUG" not in settings("infiniband")["environment"]
    assert settings("infiniband", debug=True)["nccl_conf"]["NCCL_DEBUG"] == "INFO"


@pytest.mark.parametrize(("nvls", "written"), [("auto", None), ("disable", "0"), ("enable", "1")])
def test_nvls(nvls, written):
    assert settings("infiniband", nvls=nvls)["nccl_conf"].get("NCCL_NVLS_ENABLE") == written


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown NCCL fabric profile 'myrinet'"):
        settings("myrinet")


def fake_port(root, device, state, link_layer="InfiniBand", port=1):
    directory = root / device / "ports" / str(port)
    directory.mkdir(parents=True)
    (directory / "state").write_text(state + "\n")
    (directory / "link_layer").write_text(link_layer + "\n")


@pytest.fixture
def rdma_devices(tmp_path):
    fake_port(tmp_path, "mlx5_0", "4: ACTIVE")
    fake_port(tmp_path, "mlx5_1", "1: DOWN")
    fake_port(tmp_path, "mlx5_2", "4: ACTIVE", link_layer="Ethernet")
    fake_port(tmp_path, "rdmap16s27", "4: ACTIVE", link_layer="Unspecified")
    return read_infiniband(tmp_path)


def test_discovered_hcas_are_the_active_ports_of_the_profiles_kind(rdma_devices):
    assert filters.hca_ports(rdma_devices, "infiniband") == ["mlx5_0:1"]
    assert filters.hca_ports(rdma_devices, "roce") == ["mlx5_2:1"]


def test_missing_hcas_names_absent_devices_and_ports(rdma_devices):
    assert filters.missing_hcas(["mlx5_0:1", "mlx5_1", "mlx5_2:1"], rdma_devices) == []
    assert filters.missing_hcas(["mlx5_0:2", "mlx5_9:1", "mlx5_9"], rdma_devices) == [
        "mlx5_0:2",
        "mlx5_9:1",
        "mlx5_9",
    ]


def never_pattern():
    return yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_nccl_fabric_never_ifnames"]


@pytest.mark.parametrize("name", ["lo", "docker0", "virbr0", "lxcbr0", "tailscale0", "veth1a2b", "cni0"])
def test_bridges_loopback_and_overlays_are_never_socket_interfaces(name):
    assert re.match(never_pattern(), name)


@pytest.mark.parametrize("name", ["eth0", "ens5", "enp1s0f0", "ib0", "bond0", "lower0"])
def test_real_interfaces_are_allowed(name):
    assert not re.match(never_pattern(), name)


def test_spec_and_preflight_offer_every_profile_the_filter_knows():
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    choices = spec["argument_specs"]["main"]["options"]["nccl_fabric_profile"]["choices"]
    assert choices == ["auto", *filters.PROFILES]
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert role_vars["_nccl_fabric_profiles"] == list(filters.PROFILES)


def render(template, result, profile):
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"), autoescape=False)  # noqa: S701 - config files, not HTML
    environment.filters["comment"] = lambda text: "#\n# " + text + "\n#"
    return environment.get_template(template).render(
        ansible_managed="Ansible managed", _nccl_fabric_settings=result, _nccl_fabric_profile=profile
    )


@pytest.mark.parametrize(
    ("template", "part"), [("nccl.conf.j2", "nccl_conf"), ("nccl.env.j2", "environment")]
)
def test_templates_write_one_key_value_line_per_setting(template, part):
    for result in every_combination():
        text = render(template, result, "efa")
        assert text.startswith("#\n# Ansible managed\n#\n")
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        # nccl.env also records the fabric, for the units that must let its devices through
        recorded = {"QWEN_INFRA_FABRIC": "efa"} if part == "environment" else {}
        assert dict(line.split("=", 1) for line in lines) == {**result[part], **recorded}
        assert not any(line.startswith(LEGACY_EFA) for line in lines)


def test_the_vllm_unit_knows_every_fabric_this_role_records():
    """The unit_sandbox module reads QWEN_INFRA_FABRIC from nccl.env to choose the unit's RDMA devices: it
    must have an entry for every profile this role can write (and for none, where the role did not run)."""
    assert set(unit_sandbox.RDMA_DEVICES_BY_FABRIC) == {*filters.PROFILES, "none"}
    assert set(unit_sandbox.NCCL_NETWORKS_BY_FABRIC) == {*filters.PROFILES, "none"}
    for profile in filters.PROFILES:
        text = render("nccl.env.j2", settings(profile), profile)
        assert unit_sandbox.recorded_fabric(text) == profile


def test_named_hcas_must_be_active_and_of_the_profiles_link_layer(rdma_devices):
    assert filters.unusable_hcas(["mlx5_0:1"], rdma_devices, "infiniband") == []
    assert filters.unusable_hcas(["mlx5_2:1"], rdma_devices, "roce") == []
    assert filters.unusable_hcas(["mlx5_1"], rdma_devices, "infiniband") == ["mlx5_1:1 is DOWN, not ACTIVE"]
    assert filters.unusable_hcas(["mlx5_0:1", "mlx5_2"], rdma_devices, "roce") == [
        "mlx5_0:1 runs InfiniBand, but the roce profile needs Ethernet"
    ]
    assert filters.unusable_hcas(["mlx5_2:1"], rdma_devices, "infiniband") == [
        "mlx5_2:1 runs Ethernet, but the infiniband profile needs InfiniBand"
    ]
    assert filters.unusable_hcas(["mlx5_9:1"], rdma_devices, "infiniband") == []  # missing_hcas names it


def test_messages_list_the_ports_and_their_states(rdma_devices):
    assert filters.port_listing(rdma_devices) == (
        "mlx5_0:1 ACTIVE InfiniBand, mlx5_1:1 DOWN InfiniBand, mlx5_2:1 ACTIVE Ethernet, "
        "rdmap16s27:1 ACTIVE Unspecified"
    )
    assert filters.port_listing([]) == "no RDMA port"
