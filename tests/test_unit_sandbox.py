"""qwen_infra.unit_sandbox: the fabric a host recorded, and whether NCCL's own log shows that fabric's
transport (the GPU validation gate's check against a sandbox that hides the RDMA devices). The device
lists themselves are checked against a real host's /proc/devices in tests/test_vllm_unit_devices.py."""

import json

import pytest
from qwen_infra import unit_sandbox

from tests.ansible_module import run_ansible_module
from tests.module_docs import argument_spec

# NCCL 2.x init lines as NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,NET prints them (host:pid:tid [rank]).
SOCKET_FALLBACK = """\
gpu01:124172:124172 [0] NCCL INFO NET/IB : No device found.
gpu01:124172:124172 [0] NCCL INFO NET/Socket : Using [0]enp225s0f1:10.10.10.2<0>
gpu01:124172:124172 [0] NCCL INFO Using network Socket
"""
ON_IB = """\
gpu01:2001:2001 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB ; OOB ib0:10.0.0.1<0>
gpu01:2001:2001 [0] NCCL INFO Using network IB
gpu01:2002:2002 [1] NCCL INFO Using network IB
"""
ON_EFA = "ip-10-0-0-1:77:77 [0] NCCL INFO Using network Libfabric\n"


@pytest.mark.parametrize(
    ("text", "fabric"),
    [
        ("# written by nccl_fabric\nNCCL_IB_HCA=mlx5_0:1\nQWEN_INFRA_FABRIC=roce\n", "roce"),
        ("NCCL_IB_HCA=mlx5_0:1\n", "none"),  # an older file without the record
        (None, "none"),  # no file: the role did not run here
        ("#QWEN_INFRA_FABRIC=efa\n", "none"),  # a comment is not a record
    ],
)
def test_the_recorded_fabric(text, fabric):
    assert unit_sandbox.recorded_fabric(text) == fabric


@pytest.mark.parametrize(
    ("output", "fabric"),
    [(ON_IB, "infiniband"), (ON_IB, "roce"), (ON_EFA, "efa"), (SOCKET_FALLBACK, "ethernet")],
)
def test_the_fabrics_own_transport_passes(output, fabric):
    assert unit_sandbox.nccl_network_problem(output, fabric) is None


@pytest.mark.parametrize("fabric", ["infiniband", "roce", "efa"])
def test_the_socket_fallback_on_an_rdma_fabric_fails(fabric):
    problem = unit_sandbox.nccl_network_problem(SOCKET_FALLBACK, fabric)
    assert problem is not None
    assert "Socket" in problem and "hidden or absent" in problem and fabric in problem


def test_one_rank_on_sockets_fails_the_whole_check():
    mixed = ON_IB + "gpu01:2003:2003 [2] NCCL INFO Using network Socket\n"
    assert "Socket" in unit_sandbox.nccl_network_problem(mixed, "infiniband")


def test_no_network_named_fails_where_one_is_required():
    """Without NCCL's INFO lines (NCCL_DEBUG unset) nothing proves the transport."""
    problem = unit_sandbox.nccl_network_problem('{"busbw_gbps": 300}\n', "infiniband")
    assert problem is not None and "named no network" in problem
    assert unit_sandbox.nccl_network_problem('{"busbw_gbps": 300}\n', "none") is None


@pytest.mark.parametrize(("device", "fabric"), [("rocm", "none"), ("cuda", "omnipath")])
def test_unknown_inputs_are_refused_by_name(device, fabric):
    with pytest.raises(unit_sandbox.SandboxError, match="choose one of"):
        unit_sandbox.properties(device, fabric)


def test_rdma_pins_memory_only_where_an_rdma_fabric_is():
    limits = {
        fabric: dict(unit_sandbox.properties("cuda", fabric)).get("LimitMEMLOCK")
        for fabric in unit_sandbox.RDMA_DEVICES_BY_FABRIC
    }
    assert limits == {
        "efa": "infinity",
        "infiniband": "infinity",
        "roce": "infinity",
        "ethernet": None,
        "none": None,
    }


def test_the_module_offers_exactly_these_devices_and_fabrics():
    spec = argument_spec("unit_sandbox")
    assert spec["device"]["choices"] == list(unit_sandbox.DEVICES)
    assert spec["fabric"]["choices"] == ["auto", *unit_sandbox.RDMA_DEVICES_BY_FABRIC]


def test_the_answer_from_known_text_is_the_module_s_own(tmp_path):
    """The action plugin computes on the controller, from the environment file's text host_facts read,
    exactly what the module reads on the host; without that text the module runs."""
    env_file = tmp_path / "nccl.env"
    env_file.write_text("NCCL_IB_HCA=mlx5_0:1\nQWEN_INFRA_FABRIC=roce\n")
    args = {"device": "cuda", "fabric": "auto", "nccl_env_file": str(env_file), "nccl_log": ON_IB}
    on_host = run_ansible_module(tmp_path, "unit_sandbox", json.dumps(args))
    known = run_ansible_module(tmp_path, "host_facts", json.dumps({"read": [str(env_file)]}))
    on_controller = run_ansible_module(tmp_path, "unit_sandbox", json.dumps({**args, "known": known}))
    assert on_controller.pop("computed_on_controller") is True and "computed_on_controller" not in on_host
    assert on_host["fabric"] == "roce" and on_host["nccl_problem"] is None
    for key in (
        "fabric",
        "properties",
        "rdma_devices",
        "nccl_networks",
        "nccl_networks_used",
        "nccl_problem",
    ):
        assert on_controller[key] == on_host[key]
    elsewhere = run_ansible_module(tmp_path, "unit_sandbox", json.dumps({**args, "known": {"contents": {}}}))
    assert "computed_on_controller" not in elsewhere and elsewhere["fabric"] == "roce"


def test_an_unknown_recorded_fabric_fails_the_same_with_known_text(tmp_path):
    env_file = tmp_path / "nccl.env"
    env_file.write_text("QWEN_INFRA_FABRIC=tokenring\n")
    args = {"device": "cuda", "fabric": "auto", "nccl_env_file": str(env_file)}
    known = {"contents": {str(env_file): env_file.read_text()}}
    for done in (
        run_ansible_module(tmp_path, "unit_sandbox", json.dumps(a)) for a in (args, {**args, "known": known})
    ):
        assert done["failed"] is True and "records an unknown fabric" in done["msg"]
