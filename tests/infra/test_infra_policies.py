"""Policy checks over every resource each example stack registers, and proof that each check fails,
naming the URN, when a resource breaks its rule."""

import copy
import json

import pytest
import stack_policies
from pulumi_harness import Recorded

LT = stack_policies.LAUNCH_TEMPLATE


def test_example_stacks_break_no_policy(example):
    api_port = int(example.config.get("qwen-infra:apiPort", 8000))
    assert stack_policies.all_violations(example.resources, api_port) == []


def mutated(example, token, change):
    """A copy of the run's resources with `change(inputs)` applied to the first resource of `token`."""
    resources = copy.deepcopy(example.resources)
    target = next(r for r in resources if r.type == token)
    change(target.inputs)
    return resources, target.urn


def ingress(cidr, port=None, protocol="tcp"):
    inputs = {"cidrIpv4": cidr, "ipProtocol": protocol, "fromPort": port, "toPort": port, "tags": {}}
    return Recorded(
        "urn:pulumi:s::p::aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule::bad",
        stack_policies.INGRESS_RULE,
        "bad",
        inputs,
        True,
    )


@pytest.mark.parametrize(
    ("check", "token", "change", "message"),
    [
        (
            stack_policies.imdsv2_required,
            LT,
            lambda i: i["metadataOptions"].update(httpTokens="optional"),
            "IMDSv2",
        ),
        (
            stack_policies.imdsv2_required,
            LT,
            lambda i: i["metadataOptions"].update(httpPutResponseHopLimit=3),
            "hop limit",
        ),
        (
            stack_policies.volumes_encrypted,
            LT,
            lambda i: i["blockDeviceMappings"][0]["ebs"].update(encrypted="false"),
            "not encrypted",
        ),
        (
            stack_policies.volumes_encrypted,
            LT,
            lambda i: i["blockDeviceMappings"][0]["ebs"].update(volumeType="gp2"),
            "not gp3",
        ),
        (stack_policies.volumes_encrypted, LT, lambda i: i.pop("blockDeviceMappings"), "no root volume"),
        (
            stack_policies.gpu_instances_in_placement_group,
            LT,
            lambda i: i.pop("placement"),
            "placement group",
        ),
        (stack_policies.full_efa_layout, LT, lambda i: i["networkInterfaces"].pop(), "EFA interfaces"),
        (
            stack_policies.full_efa_layout,
            LT,
            lambda i: i["networkInterfaces"][0].update(interfaceType="efa-only"),
            "primary",
        ),
        (
            stack_policies.tagged,
            stack_policies.INSTANCE,
            lambda i: i["tags"].pop("Stack"),
            "missing tags Stack",
        ),
    ],
)
def test_each_policy_fails_naming_the_urn(example_runs, check, token, change, message):
    resources, urn = mutated(example_runs["qwen3-235b-fp8"], token, change)
    violations = check(resources)
    assert violations, "the check must fail on a broken resource"
    assert any(v.startswith(f"{urn}: ") and message in v for v in violations), violations


@pytest.mark.parametrize(
    ("rule", "failing"),
    [
        (ingress("0.0.0.0/0", 22), True),
        (ingress("0.0.0.0/0", 8000), True),
        (ingress("0.0.0.0/0", protocol="-1"), True),  # all protocols covers SSH too
        (ingress(None, 8000), False),  # from a security group, not a network
        (ingress("203.0.113.0/24", 22), False),
        (ingress("0.0.0.0/0", 443), False),  # the load balancer's HTTPS may be public
    ],
)
def test_internet_rule_on_ssh_or_api_port_is_caught(rule, failing):
    violations = stack_policies.no_internet_on_admin_or_api_ports([rule], api_port=8000)
    assert bool(violations) is failing
    assert all(v.startswith(rule.urn) for v in violations)


def test_inline_ingress_on_a_security_group_is_checked_too():
    group = Recorded(
        "urn:sg",
        stack_policies.SECURITY_GROUP,
        "sg",
        {"ingress": [{"protocol": "tcp", "fromPort": 0, "toPort": 65535, "ipv6CidrBlocks": ["::/0"]}]},
        True,
    )
    assert stack_policies.no_internet_on_admin_or_api_ports([group], api_port=8000) == [
        "urn:sg: port 22 is open to the internet",
        "urn:sg: port 8000 is open to the internet",
    ]


def test_wildcard_iam_and_extra_managed_policies_are_caught():
    wide = Recorded(
        "urn:p",
        stack_policies.ROLE_POLICY,
        "p",
        {"policy": json.dumps({"Statement": [{"Sid": "All", "Action": "s3:*", "Resource": "*"}]})},
        True,
    )
    admin = Recorded(
        "urn:a",
        stack_policies.POLICY_ATTACHMENT,
        "a",
        {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        True,
    )
    assert stack_policies.least_privilege([wide, admin]) == [
        "urn:p: statement All uses a wildcard",
        "urn:a: managed policy AdministratorAccess is more than the hosts need",
    ]


def test_an_unknown_resource_type_forces_a_tagging_decision():
    odd = Recorded("urn:x", "aws:ec2/volumeAttachment:VolumeAttachment", "x", {}, True)
    (violation,) = stack_policies.known_types([odd])
    assert violation == "urn:x: type aws:ec2/volumeAttachment:VolumeAttachment is neither TAGGABLE nor " + (
        "UNTAGGABLE in stack_policies.py"
    )
