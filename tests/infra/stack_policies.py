"""Policy checks over every resource a program run registered. Plain functions: each returns its
violations as "URN: what is wrong", so a failing test names the resource to fix."""

from __future__ import annotations

import ipaddress
import json

from pulumi_harness import Recorded
from qwen_infra.catalogs import aws_instances

INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
PLACEMENT_GROUP = "aws:ec2/placementGroup:PlacementGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EBS_VOLUME = "aws:ebs/volume:Volume"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

# Every AWS type the program may create, and whether it takes tags. A new type must be added here,
# which forces a decision on its tags.
TAGGABLE = {
    "aws:ec2/vpc:Vpc",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/vpcEndpoint:VpcEndpoint",
    SECURITY_GROUP,
    INGRESS_RULE,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:iam/role:Role",
    "aws:iam/instanceProfile:InstanceProfile",
    PLACEMENT_GROUP,
    LAUNCH_TEMPLATE,
    INSTANCE,
    "aws:ec2/eip:Eip",
}
UNTAGGABLE = {"aws:ec2/routeTableAssociation:RouteTableAssociation", POLICY_ATTACHMENT, ROLE_POLICY}
REQUIRED_TAGS = ("Project", "Stack", "ManagedBy")
SSH_PORT = 22
ALLOWED_MANAGED_POLICIES = {"AmazonSSMManagedInstanceCore"}


def _custom(resources: list[Recorded]) -> list[Recorded]:
    return [r for r in resources if r.custom]


def known_types(resources: list[Recorded]) -> list[str]:
    return [
        f"{r.urn}: type {r.type} is neither TAGGABLE nor UNTAGGABLE in stack_policies.py"
        for r in _custom(resources)
        if r.type not in TAGGABLE | UNTAGGABLE
    ]


def tagged(resources: list[Recorded]) -> list[str]:
    problems = []
    for r in _custom(resources):
        if r.type in TAGGABLE:
            missing = [tag for tag in REQUIRED_TAGS if tag not in (r.inputs.get("tags") or {})]
            if missing:
                problems.append(f"{r.urn}: missing tags {', '.join(missing)}")
    return problems


def imdsv2_required(resources: list[Recorded]) -> list[str]:
    """Launch templates and stand-alone instances require IMDSv2 tokens with a hop limit of 1 or 2."""
    problems = []
    for r in resources:
        if r.type == INSTANCE and "launchTemplate" in r.inputs:
            continue  # its launch template is checked
        if r.type in {INSTANCE, LAUNCH_TEMPLATE}:
            options = r.inputs.get("metadataOptions") or {}
            if options.get("httpTokens") != "required":
                problems.append(f"{r.urn}: IMDSv2 is not required (httpTokens {options.get('httpTokens')!r})")
            if options.get("httpPutResponseHopLimit") not in {1, 2}:
                problems.append(
                    f"{r.urn}: metadata hop limit {options.get('httpPutResponseHopLimit')!r} is not 1 or 2"
                )
    return problems


def volumes_encrypted(resources: list[Recorded]) -> list[str]:
    """Every EBS volume is encrypted gp3: launch template mappings, root devices, stand-alone volumes."""
    problems = []
    for r in resources:
        volumes = []
        if r.type == LAUNCH_TEMPLATE:
            volumes = [m.get("ebs") or {} for m in r.inputs.get("blockDeviceMappings") or []]
            if not volumes:
                problems.append(
                    f"{r.urn}: no root volume mapping (the AMI's unencrypted default would apply)"
                )
        elif r.type == INSTANCE and "launchTemplate" not in r.inputs:
            volumes = [r.inputs.get("rootBlockDevice") or {}]
        elif r.type == EBS_VOLUME:
            volumes = [{**r.inputs, "volumeType": r.inputs.get("type")}]
        for volume in volumes:
            if str(volume.get("encrypted")).lower() != "true":
                problems.append(f"{r.urn}: volume not encrypted")
            if volume.get("volumeType") != "gp3":
                problems.append(f"{r.urn}: volume type {volume.get('volumeType')!r}, not gp3")
    return problems


def _open_to_internet(cidr: str | None) -> bool:
    return bool(cidr) and ipaddress.ip_network(cidr, strict=False).prefixlen == 0


def _covers(rule: dict, port: int) -> bool:
    if str(rule.get("ipProtocol", rule.get("protocol"))) in {"-1", "all"}:
        return True
    low, high = rule.get("fromPort"), rule.get("toPort")
    return low is not None and high is not None and low <= port <= high


def no_internet_on_admin_or_api_ports(resources: list[Recorded], api_port: int) -> list[str]:
    """No ingress from 0.0.0.0/0 or ::/0 reaches SSH or the API port (rules and inline ingress)."""
    problems = []
    for r in resources:
        rules = []
        if r.type == INGRESS_RULE:
            rules = [{**r.inputs, "cidrs": [r.inputs.get("cidrIpv4"), r.inputs.get("cidrIpv6")]}]
        elif r.type == SECURITY_GROUP:
            rules = [
                {**rule, "cidrs": [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]}
                for rule in r.inputs.get("ingress") or []
            ]
        for rule in rules:
            for port in (SSH_PORT, api_port):
                if _covers(rule, port) and any(_open_to_internet(c) for c in rule["cidrs"]):
                    problems.append(f"{r.urn}: port {port} is open to the internet")
    return problems


def gpu_instances_in_placement_group(resources: list[Recorded], placement_group: str = "") -> list[str]:
    """Every launch template (the GPU nodes') places them in a cluster placement group of this stack,
    or in the existing one the configuration names."""
    groups = {
        f"{r.name}-generated"
        for r in resources
        if r.type == PLACEMENT_GROUP and r.inputs.get("strategy") == "cluster"
    }
    allowed = groups | ({placement_group} if placement_group else set())
    placed = {
        r.urn: (r.inputs.get("placement") or {}).get("groupName")
        for r in resources
        if r.type == LAUNCH_TEMPLATE
    }
    return [
        f"{urn}: placement group {group!r} is not a cluster group of this stack"
        for urn, group in placed.items()
        if group not in allowed
    ]


def full_efa_layout(resources: list[Recorded]) -> list[str]:
    """Each launch template attaches every EFA interface its type supports, one per network card."""
    problems = []
    for r in resources:
        if r.type != LAUNCH_TEMPLATE:
            continue
        entry = aws_instances.INSTANCES[r.inputs["instanceType"]]
        interfaces = r.inputs.get("networkInterfaces") or []
        slots = [(int(i["networkCardIndex"]), int(i["deviceIndex"])) for i in interfaces]
        efa = [i for i in interfaces if i["interfaceType"] in {"efa", "efa-only"}]
        if len(efa) != entry["efa_interfaces"]:
            problems.append(
                f"{r.urn}: {len(efa)} EFA interfaces, the type supports {entry['efa_interfaces']}"
            )
        if len(set(slots)) != len(slots):
            problems.append(f"{r.urn}: two interfaces share a network card and device index")
        if not interfaces or slots[0] != (0, 0) or interfaces[0]["interfaceType"] != "interface":
            problems.append(f"{r.urn}: the primary interface is not an ENA at network card 0, device 0")
    return problems


def least_privilege(resources: list[Recorded]) -> list[str]:
    """Only the SSM core managed policy, and inline policies without wildcard actions or resources."""
    problems = []
    for r in resources:
        if r.type == POLICY_ATTACHMENT:
            policy = str(r.inputs.get("policyArn", "")).rsplit("/", 1)[-1]
            if policy not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{r.urn}: managed policy {policy} is more than the hosts need")
        if r.type == ROLE_POLICY:
            for statement in json.loads(r.inputs["policy"])["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                if any("*" in action for action in actions) or statement["Resource"] == "*":
                    problems.append(f"{r.urn}: statement {statement.get('Sid', '?')} uses a wildcard")
    return problems


def all_violations(resources: list[Recorded], api_port: int, placement_group: str = "") -> list[str]:
    return [
        *known_types(resources),
        *tagged(resources),
        *imdsv2_required(resources),
        *volumes_encrypted(resources),
        *no_internet_on_admin_or_api_ports(resources, api_port),
        *gpu_instances_in_placement_group(resources, placement_group),
        *full_efa_layout(resources),
        *least_privilege(resources),
    ]
