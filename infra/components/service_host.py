"""A small CPU host for one service next to the GPU nodes: the load balancer or the monitoring stack."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.gpu_nodes import METADATA_HOP_LIMIT

ROOT_VOLUME_GIB = 30


@dataclass
class ServiceHostArgs:
    instance_type: str
    subnet_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    image_id: str
    root_device_name: str
    instance_profile_name: pulumi.Input[str]
    key_name: str
    kms_key_id: str = ""
    public_ip: bool = True
    tags: dict[str, str] = field(default_factory=dict)


class ServiceHost(pulumi.ComponentResource):
    """instance, and public_ip (an Elastic IP: clients keep one address across stops) or None."""

    def __init__(self, name: str, args: ServiceHostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("qwen-infra:compute:ServiceHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.host_name = name
        self.instance = aws.ec2.Instance(
            name,
            ami=args.image_id,
            instance_type=args.instance_type,
            subnet_id=args.subnet_id,
            vpc_security_group_ids=[args.security_group_id],
            key_name=args.key_name,
            iam_instance_profile=args.instance_profile_name,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=METADATA_HOP_LIMIT,
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=ROOT_VOLUME_GIB,
                volume_type="gp3",
                encrypted=True,
                kms_key_id=args.kms_key_id or None,
                delete_on_termination=True,
            ),
            tags={**args.tags, "Name": name},
            volume_tags=args.tags,
            opts=child,
        )
        self.public_ip: pulumi.Output[str] | None = None
        if args.public_ip:
            address = aws.ec2.Eip(
                f"{name}-ip",
                domain="vpc",
                instance=self.instance.id,
                tags={**args.tags, "Name": name},
                opts=child,
            )
            self.public_ip = address.public_ip
        self.register_outputs({"instance_id": self.instance.id, "public_ip": self.public_ip})
