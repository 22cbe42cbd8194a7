"""The GPU nodes: a cluster placement group, one launch template carrying the instance type's full EFA
layout, and the instances (with an Elastic IP on the primary interface when wanted)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
from efa_layout import ENA, interface_layout
from qwen_infra.catalogs import aws_instances

USER_DATA = Path(__file__).resolve().parents[1] / "userdata" / "model-cache.sh"
# IMDSv2 only, one hop: the services (vLLM under systemd) run on the host itself, so no container
# network hop has to reach the metadata service, and a container on the host cannot borrow the
# instance role. A containerised vLLM would need 2.
METADATA_HOP_LIMIT = 1


@dataclass
class GpuNodesArgs:
    instance_type: str
    nodes: int
    subnet_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    image_id: str
    root_device_name: str
    instance_profile_name: pulumi.Input[str]
    key_name: str
    root_volume_gib: int = 200
    kms_key_id: str = ""  # empty: the account's default EBS key
    capacity_reservation_id: str = ""
    capacity_block: bool = False
    placement_group: str = ""  # empty: create a cluster placement group
    public_ip: bool = True
    tags: dict[str, str] = field(default_factory=dict)


def metadata_options() -> aws.ec2.LaunchTemplateMetadataOptionsArgs:
    return aws.ec2.LaunchTemplateMetadataOptionsArgs(
        http_endpoint="enabled",
        http_tokens="required",
        http_put_response_hop_limit=METADATA_HOP_LIMIT,
        instance_metadata_tags="disabled",
    )


def encrypted_root(
    device_name: str, size_gib: int, kms_key_id: str
) -> aws.ec2.LaunchTemplateBlockDeviceMappingArgs:
    return aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
        device_name=device_name,
        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
            volume_size=size_gib,
            volume_type="gp3",
            encrypted="true",
            kms_key_id=kms_key_id or None,
            delete_on_termination="true",
        ),
    )


class GpuNodes(pulumi.ComponentResource):
    """instances: [(name, aws.ec2.Instance)], public_ips: {name: Output[str]}, placement_group_name."""

    def __init__(self, name: str, args: GpuNodesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("qwen-infra:compute:GpuNodes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.placement_group:
            placement_group_name: pulumi.Input[str] = args.placement_group
        else:
            # EFA traffic between nodes needs them in one cluster placement group (one zone, one spine).
            group = aws.ec2.PlacementGroup(
                f"{name}-placement",
                strategy="cluster",
                tags={**args.tags, "Name": f"{name}-placement"},
                opts=child,
            )
            placement_group_name = group.name
        template = self._launch_template(name, args, placement_group_name, child)
        self.instances: list[tuple[str, aws.ec2.Instance]] = []
        self.public_ips: dict[str, pulumi.Output[str]] = {}
        for index in range(args.nodes):
            host = f"{name}-{index}"
            instance = aws.ec2.Instance(
                host,
                launch_template=aws.ec2.InstanceLaunchTemplateArgs(
                    id=template.id, version=template.latest_version.apply(str)
                ),
                tags={**args.tags, "Name": host},
                opts=child,
            )
            self.instances.append((host, instance))
            if args.public_ip:
                # An instance launched with several interfaces gets no automatic public IPv4 address.
                address = aws.ec2.Eip(
                    f"{host}-ip",
                    domain="vpc",
                    network_interface=instance.primary_network_interface_id,
                    tags={**args.tags, "Name": host},
                    opts=child,
                )
                self.public_ips[host] = address.public_ip
        self.placement_group_name = pulumi.Output.from_input(placement_group_name)
        self.launch_template_id = template.id
        self.register_outputs(
            {
                "instance_ids": [instance.id for _, instance in self.instances],
                "placement_group_name": self.placement_group_name,
                "launch_template_id": self.launch_template_id,
            }
        )

    @staticmethod
    def _launch_template(
        name: str, args: GpuNodesArgs, placement_group_name: pulumi.Input[str], child: pulumi.ResourceOptions
    ) -> aws.ec2.LaunchTemplate:
        entry = aws_instances.instance(args.instance_type)
        interfaces = [
            aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                network_card_index=interface.network_card_index,
                device_index=interface.device_index,
                interface_type=interface.interface_type,
                subnet_id=args.subnet_id,
                # EFA needs a group that allows all traffic to and from itself on every EFA interface.
                security_groups=[args.security_group_id],
                delete_on_termination="true",
                description="primary (ENA)" if interface.interface_type == ENA else "EFA-only",
            )
            for interface in interface_layout(entry)
        ]
        reservation = None
        if args.capacity_reservation_id:
            reservation = aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                    capacity_reservation_id=args.capacity_reservation_id
                )
            )
        tag_specifications = [
            aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=args.tags)
            for kind in ("instance", "volume", "network-interface")
        ]
        return aws.ec2.LaunchTemplate(
            f"{name}-template",
            image_id=args.image_id,
            instance_type=args.instance_type,
            key_name=args.key_name,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(
                name=args.instance_profile_name
            ),
            metadata_options=metadata_options(),
            block_device_mappings=[
                encrypted_root(args.root_device_name, args.root_volume_gib, args.kms_key_id)
            ],
            network_interfaces=interfaces,
            placement=aws.ec2.LaunchTemplatePlacementArgs(group_name=placement_group_name),
            capacity_reservation_specification=reservation,
            instance_market_options=(
                aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(market_type="capacity-block")
                if args.capacity_block
                else None
            ),
            ebs_optimized="true",
            user_data=base64.b64encode(USER_DATA.read_bytes()).decode(),
            update_default_version=True,
            tag_specifications=tag_specifications,
            tags={**args.tags, "Name": f"{name}-template"},
            opts=child,
        )
