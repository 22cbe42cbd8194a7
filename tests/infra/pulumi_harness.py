"""Run the Pulumi program under the SDK's mocks and record every resource it registers.

The SDK's mock state is process-global, so each run installs a fresh FakeAws and MockMonitor and its
own PULUMI_CONFIG (the variable the language host passes a real program its configuration in), and
restores the environment afterwards: runs do not see each other.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor
from qwen_infra.catalogs import aws_instances

INFRA = Path(__file__).resolve().parents[2] / "infra"
PROJECT = "qwen-infra"
EXAMPLE_STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in INFRA.glob("Pulumi.*.yaml")
)


GPU_AMI = "ami-0dlami000000000"
UBUNTU_AMI = "ami-0ubuntu00000000"


@dataclass
class Recorded:
    """One registered resource: its URN, type token, logical name and the inputs the program gave."""

    urn: str
    type: str
    name: str
    inputs: dict
    custom: bool


@dataclass
class StackRun:
    stack: str
    config: dict
    resources: list[Recorded] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    calls: list[tuple[str, dict]] = field(default_factory=list)

    def of_type(self, token: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == token]

    def one(self, token: str) -> Recorded:
        found = self.of_type(token)
        assert len(found) == 1, f"expected one {token}, found {len(found)}"
        return found[0]


class FakeAws(pulumi.runtime.Mocks):
    """Answers the program's AWS lookups and gives resources the outputs AWS would."""

    def __init__(
        self, offered: set[str] | None = None, described: dict | None = None, subnet: dict | None = None
    ):
        self.offered = set(aws_instances.INSTANCES) if offered is None else offered
        self.described = described or {}
        self.subnet = subnet or {}
        self.inputs: dict[tuple[str, str], tuple[dict, bool]] = {}
        self.calls: list[tuple[str, dict]] = []
        self._count = 0

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self._count += 1
        self.inputs[(args.typ, args.name)] = (dict(args.inputs), bool(args.custom))
        state = dict(args.inputs)
        if args.typ == "aws:ec2/instance:Instance":
            state |= {
                "privateIp": f"10.42.0.{10 + self._count}",
                "primaryNetworkInterfaceId": f"eni-{self._count}",
            }
        elif args.typ == "aws:ec2/eip:Eip":
            state["publicIp"] = f"198.51.100.{self._count}"
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            state["latestVersion"] = 1
        elif args.typ in {"aws:ec2/placementGroup:PlacementGroup", "aws:iam/instanceProfile:InstanceProfile"}:
            state["name"] = f"{args.name}-generated"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        name = args.token.rsplit(":", 1)[-1]
        if name == "getInstanceTypeOfferings":
            wanted = next(f["values"] for f in args.args["filters"] if f["name"] == "instance-type")
            return {"instanceTypes": sorted(self.offered & set(wanted)), "id": "offerings"}
        if name == "getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if name == "getParameter":
            return {
                "value": UBUNTU_AMI if "canonical" in args.args["name"] else GPU_AMI,
                "id": args.args["name"],
            }
        if name == "getAmi":
            image = args.args["filters"][0]["values"][0]
            return {"id": image, "rootDeviceName": "/dev/sda1"}
        if name == "getInstanceType":
            entry = aws_instances.INSTANCES[args.args["instanceType"]]
            described = {
                "efaMaximumInterfaces": entry["efa_interfaces"],
                "maximumNetworkCards": entry["network_cards"],
            }
            return described | self.described.get(args.args["instanceType"], {})
        if name == "getSubnet":
            return {"id": args.args["id"], **self.subnet}
        raise AssertionError(f"the program asked AWS something the fake does not answer: {args.token}")


def stack_values(stack: str) -> dict:
    """The example stack's config, keyed as Pulumi keys it (`qwen-infra:model`, `aws:region`)."""
    document = yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text())
    return dict(document["config"])


def as_pulumi_config(values: dict) -> str:
    """PULUMI_CONFIG as the CLI writes it: every value a string, lists and maps as JSON."""

    def text(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value) if isinstance(value, (list, dict)) else str(value)

    return json.dumps({key: text(value) for key, value in values.items()})


@contextmanager
def _environment(config: str) -> Iterator[None]:
    before = os.environ.get("PULUMI_CONFIG")
    os.environ["PULUMI_CONFIG"] = config
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PULUMI_CONFIG", None)
        else:
            os.environ["PULUMI_CONFIG"] = before


def _thread_event_loop() -> None:
    """Pulumi's mocks run on this thread's event loop; asyncio.run (the bench tests) leaves none set."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


@contextmanager
def mocked(
    stack: str, values: dict, *, preview: bool = False, fake: FakeAws | None = None
) -> Iterator[MockMonitor]:
    """Within the block, a program run sees these config values and talks to a fresh FakeAws."""
    fake = fake or FakeAws()
    monitor = MockMonitor(fake)
    _thread_event_loop()
    with _environment(as_pulumi_config(values)):
        pulumi.runtime.set_mocks(fake, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
        yield monitor


def run_program(stack: str, values: dict, *, preview: bool = False, fake: FakeAws | None = None) -> StackRun:
    """Run stack.main() with these config values; raises what the program raises."""
    import stack as program  # noqa: PLC0415  (importable once conftest put infra/ on sys.path)

    fake = fake or FakeAws()
    run = StackRun(stack, values)

    @pulumi.runtime.test
    def execute():
        outputs = program.main()
        return pulumi.Output.from_input(outputs).apply(run.outputs.update)

    with mocked(stack, values, preview=preview, fake=fake) as monitor:
        try:
            execute()
        finally:
            run.calls = fake.calls
            for urn in monitor.get_registered_resources():
                token, name = urn.split("::")[-2].split("$")[-1], urn.split("::")[-1]
                inputs, custom = fake.inputs[(token, name)]
                run.resources.append(Recorded(urn, token, name, inputs, custom))
    return run


def changed(stack: str, **changes) -> dict:
    """An example stack's config with keys changed (`model="..."`) or removed (`model=None`)."""
    values = stack_values(stack)
    for key, value in changes.items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if value is None:
            values.pop(full, None)
        else:
            values[full] = value
    return values


def run_example(stack: str, *, preview: bool = False, fake: FakeAws | None = None, **changes) -> StackRun:
    """Run an example stack's program, with config keys changed or removed (see `changed`)."""
    return run_program(stack, changed(stack, **changes), preview=preview, fake=fake)
