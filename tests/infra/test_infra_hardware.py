"""Hardware selection: the cheapest catalog layout the sizing engine says fits, and clear refusals."""

import config
import hardware
import pytest
from pulumi_harness import EXAMPLE_STACKS, stack_values
from qwen_infra.catalogs import aws_instances

BASE = {
    "aws:region": "us-east-1",
    "qwen-infra:availabilityZone": "us-east-1a",
    "qwen-infra:sshKeyName": "ops",
}
EXPECTED = {
    "qwen3-32b-awq": ("g6e.12xlarge", 1, 4, 1, False),
    "qwen3-32b-h100": ("p5.48xlarge", 1, 8, 1, False),
    "qwen3-235b-fp8": ("p5.48xlarge", 1, 8, 1, True),
    "qwen3-235b-a100": ("p4d.24xlarge", 2, 8, 2, False),
}


def choose(offered=None, **values):
    return hardware.select(
        config.load({**BASE, **{f"qwen-infra:{k}": v for k, v in values.items()}}), offered
    )


def test_every_example_stack_has_an_expected_choice():
    assert sorted(EXPECTED) == EXAMPLE_STACKS


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_example_stack_choice(stack):
    loaded = config.load(stack_values(stack))
    chosen = hardware.select(loaded)
    instance_type, nodes, tp, pp, expert_parallel = EXPECTED[stack]
    assert (chosen.instance_type, chosen.nodes) == (instance_type, nodes)
    assert (chosen.plan.tensor_parallel_size, chosen.plan.pipeline_parallel_size) == (tp, pp)
    assert chosen.plan.enable_expert_parallel is expert_parallel
    assert chosen.result.max_concurrency >= loaded.concurrency
    assert chosen.usd_per_hour == pytest.approx(
        aws_instances.INSTANCES[instance_type]["usd_per_hour"] * nodes
    )


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_nothing_cheaper_fits(stack):
    loaded = config.load(stack_values(stack))
    chosen = hardware.select(loaded)
    cheaper = [
        name
        for name, entry in aws_instances.INSTANCES.items()
        if entry["usd_per_hour"] is not None and entry["usd_per_hour"] < chosen.instance["usd_per_hour"]
    ]
    restricted = config.load({**stack_values(stack), "qwen-infra:instanceTypes": cheaper})
    try:
        found = hardware.select(restricted)
    except hardware.HardwareError:
        return
    # A cheaper type may fit on more nodes, but then the cluster must not cost less in total.
    assert found.usd_per_hour >= chosen.usd_per_hour


def test_fewer_requests_choose_a_smaller_instance():
    chosen = choose(model="Qwen/Qwen3-32B-AWQ", maxModelLen=32768, concurrency=2)
    assert (chosen.instance_type, chosen.nodes, chosen.plan.tensor_parallel_size) == ("g6e.xlarge", 1, 1)


def test_several_nodes_only_on_efa_types_and_then_through_vllms_native_launch():
    chosen = choose(model="Qwen/Qwen3-235B-A22B", maxModelLen=40960, concurrency=64)
    assert chosen.nodes > 1
    assert chosen.instance["efa_interfaces"] > 0
    server = chosen.server("/m", "m", 8000)
    # one server over every node (--nnodes), no Ray; tensor parallelism within each node
    assert (server.nnodes, server.distributed_executor_backend) == (chosen.nodes, None)
    assert chosen.plan.nnodes == chosen.nodes
    assert chosen.instance["gpus"] % server.tensor_parallel_size == 0
    assert server.gpus == chosen.nodes * chosen.instance["gpus"]
    with pytest.raises(hardware.HardwareError, match=r"On the largest, 1 x g6e\.xlarge"):
        choose(model="Qwen/Qwen3-235B-A22B", instanceTypes=["g6e.xlarge"])


def test_explicit_type_that_cannot_hold_the_weights_is_refused_with_the_engine_reason():
    with pytest.raises(hardware.HardwareError, match=r"1 x g5\.xlarge .*the weights need .* GiB per GPU"):
        choose(model="Qwen/Qwen3-235B-A22B", instanceType="g5.xlarge", instanceCount=1)


def test_explicit_type_is_used_with_the_fewest_nodes():
    chosen = choose(model="Qwen/Qwen3-32B", instanceType="p4de.24xlarge")
    assert (chosen.instance_type, chosen.nodes) == ("p4de.24xlarge", 1)


def test_unpriced_type_is_never_chosen_automatically_but_can_be_named():
    assert choose(model="Qwen/Qwen3-32B", gpuTypes=["H200-141GB"]).instance_type == "p5en.48xlarge"
    named = choose(model="Qwen/Qwen3-32B", instanceType="p5e.48xlarge")
    assert named.instance_type == "p5e.48xlarge"
    assert named.usd_per_hour is None


def test_zone_offerings_steer_the_choice():
    without_g6e = {name for name in aws_instances.INSTANCES if not name.startswith("g6e")}
    chosen = choose(without_g6e, model="Qwen/Qwen3-32B-AWQ", maxModelLen=32768, concurrency=8)
    assert chosen.instance_type in without_g6e


def test_zone_without_any_fitting_type_says_so():
    with pytest.raises(
        hardware.HardwareError,
        match=r"fits 1 x p5\.48xlarge, but availability zone us-east-1a does not offer it",
    ):
        choose({"g5.xlarge"}, model="Qwen/Qwen3-32B", gpuTypes=["H100-80GB"])


def test_model_that_fits_nothing_is_refused_clearly():
    with pytest.raises(hardware.HardwareError, match=r"fits no catalog hardware .* KV cache holds only"):
        choose(model="Qwen/Qwen3-32B", maxModelLen=32768, concurrency=100000)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": "Qwen/Qwen9-1T"}, "unknown model 'Qwen/Qwen9-1T'"),
        (
            {"model": "Qwen/Qwen3-32B-AWQ", "precision": "fp8"},
            "awq checkpoint; --quantization fp8 contradicts it",
        ),
    ],
)
def test_model_and_precision_errors_name_the_keys(values, message):
    with pytest.raises(hardware.HardwareError, match=f"qwen-infra:model / precision: .*{message}"):
        choose(**values)


def test_online_quantization_is_passed_to_vllm():
    chosen = choose(model="Qwen/Qwen3-32B", precision="fp8", gpuTypes=["H100-80GB"])
    assert chosen.quantization == "fp8"
    assert chosen.server("/m", "m", 8000).quantization == "fp8"
    assert choose(model="Qwen/Qwen3-32B-AWQ").quantization is None
