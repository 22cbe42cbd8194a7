"""The program: read the configuration, ask AWS the preview-time questions, choose the hardware, then
build the components and return the stack outputs. Every refusal happens before the first resource."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import config as stack_config
import handoff
import preflight
import pulumi
import pulumi_aws as aws
from components.gpu_nodes import GpuNodes, GpuNodesArgs
from components.identity import IdentityArgs, InstanceIdentity
from components.network import ClusterNetwork, NetworkArgs
from components.security import ClusterSecurity, SecurityArgs
from components.service_host import ServiceHost, ServiceHostArgs
from hardware import HardwareError, Selection, select
from qwen_infra.catalogs import aws_instances


def read_config() -> stack_config.StackConfig:
    """The stack's configuration as the language host passes it (PULUMI_CONFIG: strings, with lists and
    maps as JSON); read whole so that a misspelt key is reported, not silently ignored."""
    held = pulumi.runtime.get_config_env()
    return stack_config.load({key: value for key, value in held.items() if not key.startswith("pulumi:")})


def default_tags(config: stack_config.StackConfig) -> dict[str, str]:
    stack = pulumi.get_stack()
    return {"Project": stack_config.PROJECT, "Stack": stack, "ManagedBy": "pulumi", **config.tags}


def plan() -> tuple[stack_config.StackConfig, preflight.CloudFacts, Selection]:
    """Everything decided before any resource: refusals become a clean `pulumi preview` error."""
    try:
        config = read_config()
        facts = preflight.gather(config)
        if config.instance_type and config.instance_type not in facts.offered:
            raise HardwareError(
                f"availability zone {config.availability_zone} does not offer {config.instance_type} "
                f"(it offers {', '.join(sorted(facts.offered)) or 'none of the catalog types'})"
            )
        selection = select(config, offered=set(facts.offered))
        preflight.check_catalog(selection.instance_type)
    except (stack_config.ConfigError, HardwareError) as error:
        raise pulumi.RunError(str(error)) from None
    return config, facts, selection


@dataclass(frozen=True)
class Build:
    """What every component of this stack is built from."""

    name: str
    config: stack_config.StackConfig
    facts: preflight.CloudFacts
    selection: Selection
    tags: dict[str, str]


def main() -> dict[str, object]:
    config, facts, selection = plan()
    build = Build(f"qwen-{pulumi.get_stack()}", config, facts, selection, default_tags(config))
    network = ClusterNetwork(
        build.name,
        NetworkArgs(
            config.availability_zone,
            config.region,
            config.vpc_cidr,
            config.vpc_id,
            config.subnet_id,
            build.tags,
        ),
    )
    security = _security(build, network)
    nodes = _gpu_nodes(build, network, security)
    hosts = [
        _host(host, handoff.SERVING_HEAD if index == 0 else handoff.SERVING_WORKER, build,
              instance_type=selection.instance_type, instance=instance, public_ip=nodes.public_ips.get(host))
        for index, (host, instance) in enumerate(nodes.instances)
    ]  # fmt: skip
    hosts += [
        _host(
            host.host_name, role, build, instance_type=kind, instance=host.instance, public_ip=host.public_ip
        )
        for role, kind, host in _service_hosts(build, network, security)
    ]
    return {
        "hosts": pulumi.Output.all(*hosts),
        # Each host's command names its private address (and across nodes the head's), known once the
        # instances exist.
        "serving": pulumi.Output.all(*(instance.private_ip for _, instance in nodes.instances)).apply(
            lambda addresses: handoff.serving(config, selection, list(addresses))
        ),
        "hardware": selection.summary(),
        "access": handoff.access(config),
        "estimated_usd_per_hour": selection.usd_per_hour,
        "cost": cost_line(selection),
        "network": {
            "vpc_id": network.vpc_id,
            "subnet_id": network.subnet_id,
            "placement_group": nodes.placement_group_name,
            "cluster_security_group_id": security.cluster_group_id,
            "gpu_image_id": facts.gpu_image.id,
        },
    }


def _security(build: Build, network: ClusterNetwork) -> ClusterSecurity:
    config = build.config
    return ClusterSecurity(
        build.name,
        SecurityArgs(
            vpc_id=network.vpc_id,
            api_port=config.api_port,
            admin_cidr=config.admin_cidr,
            ssh=config.access == "ssh",
            load_balancer=config.load_balancer,
            client_cidrs=config.client_cidrs,
            monitoring=config.monitoring,
            tags=build.tags,
        ),
    )


def _gpu_nodes(build: Build, network: ClusterNetwork, security: ClusterSecurity) -> GpuNodes:
    config, facts = build.config, build.facts
    identity = InstanceIdentity(
        f"{build.name}-gpu",
        IdentityArgs(facts.partition, config.model_mirror_bucket, config.model_mirror_prefix, build.tags),
    )
    return GpuNodes(
        f"{build.name}-gpu",
        GpuNodesArgs(
            instance_type=build.selection.instance_type,
            nodes=build.selection.nodes,
            subnet_id=network.subnet_id,
            security_group_id=security.cluster_group_id,
            image_id=facts.gpu_image.id,
            root_device_name=facts.gpu_image.root_device_name,
            instance_profile_name=identity.profile_name,
            key_name=config.ssh_key_name,
            root_volume_gib=config.root_volume_gib,
            kms_key_id=config.kms_key_id,
            capacity_reservation_id=config.capacity_reservation_id,
            capacity_block=config.capacity_block,
            placement_group=config.placement_group,
            public_ip=config.public_ip,
            tags=build.tags,
        ),
    )


def _service_hosts(
    build: Build, network: ClusterNetwork, security: ClusterSecurity
) -> list[tuple[str, str, ServiceHost]]:
    """(role, instance type, host) of the load balancer and monitoring hosts the stack asks for."""
    config, facts = build.config, build.facts
    asked = [
        (handoff.LOAD_BALANCER, config.load_balancer_instance_type, security.load_balancer_group_id, "lb"),
        (handoff.MONITORING, config.monitoring_instance_type, security.monitoring_group_id, "monitoring"),
    ]
    wanted = [(role, kind, group_id, short) for role, kind, group_id, short in asked if group_id is not None]
    if not wanted:
        return []
    # CPU hosts get their own profile: Session Manager only, not the GPU nodes' model-mirror access.
    identity = InstanceIdentity(f"{build.name}-service", IdentityArgs(facts.partition, tags=build.tags))
    return [
        (
            role,
            kind,
            ServiceHost(
                f"{build.name}-{short}",
                ServiceHostArgs(
                    instance_type=kind,
                    subnet_id=network.subnet_id,
                    security_group_id=group_id,
                    image_id=facts.service_image.id,
                    root_device_name=facts.service_image.root_device_name,
                    instance_profile_name=identity.profile_name,
                    key_name=config.ssh_key_name,
                    kms_key_id=config.kms_key_id,
                    public_ip=config.public_ip,
                    tags=build.tags,
                ),
            ),
        )
        for role, kind, group_id, short in wanted
    ]


def _host(
    name: str,
    role: str,
    build: Build,
    *,
    instance_type: str,
    instance: aws.ec2.Instance,
    public_ip: pulumi.Output[str] | None,
) -> pulumi.Output[dict[str, Any]]:
    zone = build.config.availability_zone
    return pulumi.Output.all(
        instance_id=instance.id, private_ip=instance.private_ip, public_ip=public_ip or ""
    ).apply(lambda resolved: handoff.host_record(name, role, instance_type, zone, resolved))


def cost_line(selection: Selection) -> str:
    """The stack's `cost` output: what the GPU nodes cost an hour on demand, and what it leaves out."""
    entry = selection.instance
    if selection.usd_per_hour is None:
        return (
            f"{selection.nodes} x {selection.instance_type}: no published on-demand price "
            f"({entry['price_status']}); see your Capacity Block or reservation price"
        )
    return (
        f"{selection.nodes} x {selection.instance_type} at ${entry['usd_per_hour']:,.2f}/h = "
        f"${selection.usd_per_hour:,.2f}/h on demand in {aws_instances.PRICE_REGION} "
        f"({entry['price_date']}, {entry['price_status']} price); excludes the load balancer, monitoring, "
        "EBS, Elastic IPs and data transfer"
    )
