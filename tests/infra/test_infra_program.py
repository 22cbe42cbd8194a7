"""The Pulumi program under the SDK's mocks, over every example stack: what it creates, how the GPU
nodes are built, what it hands to Ansible, and what it refuses before creating anything."""

import base64
import json
from collections import Counter

import pulumi
import pytest
import stack as program
import yaml
from components.security import MONITORING_VARS
from efa_layout import interface_layout
from pulumi_harness import GPU_AMI, FakeAws, changed, mocked, run_example
from qwen_infra.catalogs import aws_instances

LT = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"

COMMON = {
    "aws:ec2/vpc:Vpc": 1,
    "aws:ec2/internetGateway:InternetGateway": 1,
    "aws:ec2/subnet:Subnet": 1,
    "aws:ec2/routeTable:RouteTable": 1,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": 1,
    "aws:ec2/vpcEndpoint:VpcEndpoint": 1,
    "aws:ec2/securityGroup:SecurityGroup": 3,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": 4,
    "aws:iam/role:Role": 2,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 2,
    "aws:iam/instanceProfile:InstanceProfile": 2,
    "aws:ec2/placementGroup:PlacementGroup": 1,
    LT: 1,
    INSTANCE: 3,  # one GPU node, the load balancer, the monitoring host
    "aws:ec2/eip:Eip": 3,
    "qwen-infra:network:ClusterNetwork": 1,
    "qwen-infra:security:ClusterSecurity": 1,
    "qwen-infra:identity:InstanceIdentity": 2,
    "qwen-infra:compute:GpuNodes": 1,
    "qwen-infra:compute:ServiceHost": 2,
}
EXPECTED_COUNTS = {
    # ssm: cluster self, API from the load balancer, 3 metrics ports on the GPU nodes and 2 on the load
    # balancer, 1 client network on HTTPS and on HTTP (which only redirects).
    "qwen3-32b-awq": {**COMMON, INGRESS: 9},
    # ssh adds port 22 from the admin network on 3 groups.
    "qwen3-32b-h100": {**COMMON, INGRESS: 12},
    # the model mirror adds the read-only S3 policy.
    "qwen3-235b-fp8": {**COMMON, INGRESS: 9, "aws:iam/rolePolicy:RolePolicy": 1},
    # two GPU nodes (head and worker), each with its Elastic IP.
    "qwen3-235b-a100": {**COMMON, INGRESS: 9, INSTANCE: 4, "aws:ec2/eip:Eip": 4},
}


def test_resource_counts(example):
    assert Counter(r.type for r in example.resources) == EXPECTED_COUNTS[example.stack]


def test_every_aws_resource_belongs_to_a_component(example):
    for resource in example.resources:
        if resource.custom:
            parents = resource.urn.split("::")[2].split("$")[:-1]
            assert parents and parents[-1].startswith("qwen-infra:"), (
                f"{resource.urn} has no component parent"
            )


def test_launch_template_has_the_documented_efa_layout(example):
    template = example.one(LT)
    entry = aws_instances.INSTANCES[template.inputs["instanceType"]]
    interfaces = template.inputs["networkInterfaces"]
    assert [(int(i["networkCardIndex"]), int(i["deviceIndex"]), i["interfaceType"]) for i in interfaces] == [
        (i.network_card_index, i.device_index, i.interface_type) for i in interface_layout(entry)
    ]
    assert sum(i["interfaceType"] == "efa-only" for i in interfaces) == entry["efa_interfaces"]
    cluster_group = example.outputs["network"]["cluster_security_group_id"]
    assert all(i["securityGroups"] == [cluster_group] for i in interfaces)
    assert {i["subnetId"] for i in interfaces} == {example.outputs["network"]["subnet_id"]}


def test_p5_launch_template_attaches_32_efa_on_32_cards(example_runs):
    interfaces = example_runs["qwen3-235b-fp8"].one(LT).inputs["networkInterfaces"]
    assert len(interfaces) == 33
    assert (
        interfaces[0]["networkCardIndex"],
        interfaces[0]["deviceIndex"],
        interfaces[0]["interfaceType"],
    ) == (
        0,
        0,
        "interface",
    )
    efa_cards = sorted(int(i["networkCardIndex"]) for i in interfaces if i["interfaceType"] == "efa-only")
    assert efa_cards == list(range(32))


def test_imdsv2_required_with_one_hop(example):
    template = example.one(LT)
    assert template.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
        "instanceMetadataTags": "disabled",
    }
    for host in example.of_type(INSTANCE):
        if "launchTemplate" not in host.inputs:
            assert host.inputs["metadataOptions"]["httpTokens"] == "required"


def test_root_volume_is_encrypted_gp3_on_the_ami_root_device(example):
    (mapping,) = example.one(LT).inputs["blockDeviceMappings"]
    size = int(example.config.get("qwen-infra:rootVolumeGib", 200))
    assert mapping == {
        "deviceName": "/dev/sda1",
        "ebs": {"encrypted": "true", "volumeType": "gp3", "volumeSize": size, "deleteOnTermination": "true"},
    }


def test_gpu_nodes_launch_from_the_template_into_the_cluster_placement_group(example):
    group = example.one("aws:ec2/placementGroup:PlacementGroup")
    template = example.one(LT)
    assert group.inputs["strategy"] == "cluster"
    assert template.inputs["placement"] == {"groupName": f"{group.name}-generated"}
    assert template.inputs["imageId"] == GPU_AMI
    gpu_nodes = [r for r in example.of_type(INSTANCE) if "launchTemplate" in r.inputs]
    assert len(gpu_nodes) == example.outputs["hardware"]["nodes"]
    assert all(r.inputs["launchTemplate"] == {"id": f"{template.name}-id", "version": "1"} for r in gpu_nodes)
    assert example.outputs["network"]["placement_group"] == f"{group.name}-generated"


def test_user_data_prepares_the_nvme_model_cache(example):
    script = base64.b64decode(example.one(LT).inputs["userData"]).decode()
    assert script.startswith("#!/bin/bash")
    assert "/opt/dlami/nvme" in script and "Amazon EC2 NVMe Instance Storage" in script


def test_ssh_is_open_only_from_the_admin_network_and_only_with_access_ssh(example):
    ssh_rules = [r for r in example.of_type(INGRESS) if r.inputs.get("fromPort") == 22]
    if example.config["qwen-infra:access"] == "ssh":
        assert len(ssh_rules) == 3
        assert {r.inputs["cidrIpv4"] for r in ssh_rules} == {example.config["qwen-infra:adminCidr"]}
    else:
        assert ssh_rules == []


def test_api_port_is_reached_only_from_the_load_balancer_and_monitoring_groups(example):
    api_rules = [r for r in example.of_type(INGRESS) if r.inputs.get("fromPort") == 8000]
    assert len(api_rules) == 2
    assert all("cidrIpv4" not in r.inputs and r.inputs["referencedSecurityGroupId"] for r in api_rules)


def test_no_client_network_reaches_a_gpu_node(example):
    """The front door is the only way in: client networks reach the load balancer's 443 and 80, and no
    rule of the GPU nodes' group names a CIDR except the admin network's SSH."""
    cluster = example.outputs["network"]["cluster_security_group_id"]
    cluster_rules = [r for r in example.of_type(INGRESS) if r.inputs["securityGroupId"] == cluster]
    cidr_rules = [r for r in cluster_rules if r.inputs.get("cidrIpv4")]
    assert all(r.inputs["fromPort"] == 22 for r in cidr_rules), [r.name for r in cidr_rules]
    clients = set(example.config.get("qwen-infra:clientCidrs", []))
    balancer_rules = [r for r in example.of_type(INGRESS) if "-load-balancer-" in r.name]
    client_rules = [r for r in balancer_rules if r.inputs.get("cidrIpv4") in clients]
    assert sorted((r.inputs["fromPort"], r.inputs["cidrIpv4"]) for r in client_rules) == sorted(
        (port, cidr) for cidr in clients for port in (80, 443)
    )


def group_id(example, role: str) -> str:
    """The id the SDK's mocks gave the security group of this role (the harness: "<name>-id")."""
    (group,) = [r for r in example.of_type(SECURITY_GROUP) if r.name.endswith(f"-{role}")]
    return f"{group.name}-id"


def test_the_monitoring_group_reaches_every_exporter_the_playbooks_start(example):
    """The ports come from the playbooks' one definition, so the groups open what the hosts listen on."""
    ports = yaml.safe_load(MONITORING_VARS.read_text())
    groups = {role: group_id(example, role) for role in ("cluster", "load-balancer", "monitoring")}
    from_monitoring = {
        (r.inputs["securityGroupId"], r.inputs["fromPort"])
        for r in example.of_type(INGRESS)
        if r.inputs.get("referencedSecurityGroupId") == groups["monitoring"]
    }
    assert from_monitoring == {
        (groups["cluster"], ports["qwen_node_exporter_port"]),
        (groups["cluster"], ports["qwen_dcgm_exporter_port"]),
        (groups["cluster"], 8000),
        (groups["load-balancer"], ports["qwen_node_exporter_port"]),
        (groups["load-balancer"], ports["qwen_haproxy_metrics_port"]),
    }


def test_nothing_reaches_the_monitoring_host_but_ssh_from_the_admin_network(example):
    monitoring = group_id(example, "monitoring")
    rules = [r for r in example.of_type(INGRESS) if r.inputs["securityGroupId"] == monitoring]
    admin = example.config.get("qwen-infra:adminCidr")
    assert [(r.inputs["fromPort"], r.inputs.get("cidrIpv4")) for r in rules] == (
        [(22, admin)] if example.config.get("qwen-infra:access") == "ssh" else []
    )


def test_a_direct_api_cidr_is_refused_before_any_resource():
    with pytest.raises(pulumi.RunError, match="apiCidr is no longer supported"):
        run_example("qwen3-32b-awq", preview=True, apiCidr="203.0.113.0/24")


def test_cluster_group_allows_all_traffic_to_and_from_itself(example):
    rules = [r for r in example.resources if r.name.endswith(("-cluster-self-in", "-cluster-self-out"))]
    assert len(rules) == 2
    for rule in rules:
        assert rule.inputs["ipProtocol"] == "-1"
        assert rule.inputs["referencedSecurityGroupId"] == rule.inputs["securityGroupId"]


def test_every_resource_carries_the_stack_and_user_tags(example):
    user_tags = example.config.get("qwen-infra:tags", {})
    for resource in example.resources:
        if "tags" in resource.inputs:
            tags = resource.inputs["tags"]
            assert {
                "Project": "qwen-infra",
                "Stack": example.stack,
                "ManagedBy": "pulumi",
            }.items() <= tags.items()
            assert user_tags.items() <= tags.items(), resource.urn


def test_outputs_hand_ansible_every_host_with_its_role_and_expectations(example):
    hosts = example.outputs["hosts"]
    hardware = example.outputs["hardware"]
    entry = aws_instances.INSTANCES[hardware["instance_type"]]
    nodes = hardware["nodes"]
    roles = ["serving-head"] + ["serving-worker"] * (nodes - 1) + ["load-balancer", "monitoring"]
    assert [h["role"] for h in hosts] == roles
    head = hosts[0]
    assert head["instance_type"] == hardware["instance_type"]
    assert (head["gpu_expected_count"], head["gpu_expected_efa_count"], head["gpu_expected_nvswitch"]) == (
        entry["gpus"], entry["efa_interfaces"], entry["nvswitch"]
    )  # fmt: skip
    assert all(h["private_ip"].startswith("10.42.") and h["public_ip"] for h in hosts)
    assert all(h["gpu_expected_count"] == entry["gpus"] for h in hosts[:nodes])
    assert all(h["gpu_expected_count"] == 0 for h in hosts[nodes:])
    assert example.outputs["estimated_usd_per_hour"] == pytest.approx(entry["usd_per_hour"] * nodes)
    assert f"${entry['usd_per_hour'] * nodes:,.2f}/h on demand in us-east-1" in example.outputs["cost"]
    serving = example.outputs["serving"]
    assert (
        serving["tensor_parallel_size"] * serving["pipeline_parallel_size"]
        == entry["gpus"] * hardware["nodes"]
    )
    assert serving["vllm_variables"]["vllm_tensor_parallel_size"] == serving["tensor_parallel_size"]
    assert serving["command"][:2] == ["--model", f"{serving['model_cache_dir']}/{serving['model_name']}"]
    assert example.outputs["access"]["mode"] == example.config["qwen-infra:access"]
    json.dumps(example.outputs)  # `pulumi stack output --json` must be able to print them


def test_model_mirror_policy_reads_one_prefix_only(example_runs):
    (policy,) = example_runs["qwen3-235b-fp8"].of_type("aws:iam/rolePolicy:RolePolicy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("s3:ListBucket", "arn:aws:s3:::example-model-mirror"),
        ("s3:GetObject", "arn:aws:s3:::example-model-mirror/qwen/*"),
    ]
    assert statements[0]["Condition"] == {"StringLike": {"s3:prefix": ["qwen/*"]}}


def test_outputs_resolve_inside_a_pulumi_test():
    """The SDK's own style: assert inside @pulumi.runtime.test on Output.all(...).apply(...)."""

    @pulumi.runtime.test
    def check():
        outputs = program.main()

        def verify(args):
            hosts, cost = args
            assert hosts[0]["instance_type"] == "g6e.12xlarge"
            assert cost == pytest.approx(10.49264)

        return pulumi.Output.all(outputs["hosts"], outputs["estimated_usd_per_hour"]).apply(verify)

    with mocked("qwen3-32b-awq", changed("qwen3-32b-awq")):
        check()


def test_existing_vpc_mode_creates_no_network():
    fake = FakeAws(subnet={"availabilityZone": "us-east-1a", "vpcId": "vpc-0abc"})
    run = run_example("qwen3-32b-awq", vpcId="vpc-0abc", subnetId="subnet-0def", fake=fake)
    assert not run.of_type("aws:ec2/vpc:Vpc")
    assert not run.of_type("aws:ec2/subnet:Subnet")
    assert {i["subnetId"] for i in run.one(LT).inputs["networkInterfaces"]} == {"subnet-0def"}
    assert {r.inputs["vpcId"] for r in run.of_type("aws:ec2/securityGroup:SecurityGroup")} == {"vpc-0abc"}


def test_capacity_block_and_existing_placement_group_are_targeted():
    run = run_example(
        "qwen3-235b-fp8", capacityReservationId="cr-0123", capacityBlock=True, placementGroup="reserved-pg"
    )
    template = run.one(LT).inputs
    assert template["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": "cr-0123"}
    }
    assert template["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert template["placement"] == {"groupName": "reserved-pg"}
    assert not run.of_type("aws:ec2/placementGroup:PlacementGroup")


def test_private_only_hosts_get_no_elastic_ip_and_no_service_hosts_when_not_wanted():
    run = run_example("qwen3-32b-awq", publicIp=False, loadBalancer=False, monitoring=False)
    assert not run.of_type("aws:ec2/eip:Eip")
    assert [h["role"] for h in run.outputs["hosts"]] == ["serving-head"]
    assert run.outputs["hosts"][0]["public_ip"] == ""


def test_several_nodes_are_head_and_workers():
    run = run_example("qwen3-32b-h100", instanceType="p5.48xlarge", instanceCount=2, gpuTypes=None)
    roles = [h["role"] for h in run.outputs["hosts"]]
    assert roles[:2] == ["serving-head", "serving-worker"]
    serving = run.outputs["serving"]
    head_ip = run.outputs["hosts"][0]["private_ip"]
    assert "vllm_distributed_executor_backend" not in serving["vllm_variables"]  # native launch, no Ray
    assert serving["vllm_variables"]["vllm_nnodes"] == 2
    assert serving["vllm_variables"]["vllm_master_addr"] == head_ip
    head, worker = serving["node_commands"]
    assert head == serving["command"] and "--headless" not in head
    assert worker[worker.index("--node-rank") + 1] == "1" and worker[-1] == "--headless"
    assert worker[worker.index("--master-addr") + 1] == head_ip
    # every node runs the same arguments but its own address, its rank and --headless
    addresses = [host["private_ip"] for host in run.outputs["hosts"][:2]]
    assert head[head.index("--host") + 1] == addresses[0]
    assert worker[worker.index("--host") + 1] == addresses[1]

    def common(words):
        return [w for i, w in enumerate(words) if words[i - 1] not in ("--host", "--node-rank")]

    assert common(worker) == [*common(head), "--headless"]


# --- refused at preview, before any resource -------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fake", "message"),
    [
        ({"model": None}, None, "qwen-infra:model is required"),
        ({"instanceType": "p9.huge"}, None, "instance type 'p9.huge' is not in the catalog"),
        (
            {"instanceType": "p5.48xlarge"},
            FakeAws(offered={"g5.xlarge"}),
            "us-east-1a does not offer p5.48xlarge",
        ),
        ({}, FakeAws(offered={"g5.xlarge"}), "does not offer it"),
        ({"concurrency": 1_000_000}, None, "fits no catalog hardware"),
        ({"adminCidr": "0.0.0.0/0", "access": "ssh"}, None, "opens this port to the whole internet"),
        (
            {},
            FakeAws(described={"p5.48xlarge": {"efaMaximumInterfaces": 16}}),
            "fix qwen_infra.catalogs.aws_instances",
        ),
        (
            {"vpcId": "vpc-0abc", "subnetId": "subnet-0def"},
            FakeAws(subnet={"availabilityZone": "us-east-1b", "vpcId": "vpc-0abc"}),
            "subnet-0def is in vpc-0abc / us-east-1b",
        ),
    ],
    # config.load's refusals (every rule is in test_infra_config) once per kind: a required key, a
    # hardware key, a network key; the others are the program's own preview-time checks, one each
    ids=[
        "config-required-key",
        "config-instance-type-not-in-catalog",
        "zone-does-not-offer-the-set-type",
        "zone-does-not-offer-what-fits",
        "nothing-fits",
        "config-admin-port-to-internet",
        "catalog-disagrees-with-aws",
        "existing-subnet-in-another-zone",
    ],
)
def test_refused_at_preview_before_any_resource(changes, fake, message):
    stack = "qwen3-32b-h100"
    with pytest.raises(pulumi.RunError, match=message) as error:
        run_example(stack, preview=True, fake=fake, **changes)
    assert "Traceback" not in str(error.value)


def test_a_refusal_registers_nothing():
    fake = FakeAws(offered={"g5.xlarge"})
    with pytest.raises(pulumi.RunError):
        run_example("qwen3-32b-h100", preview=True, fake=fake)
    assert fake.inputs == {}
