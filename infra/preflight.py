"""Questions for AWS asked at preview, before any resource is registered.

`pulumi preview` runs these lookups against the real account, so a zone without the instance type, a
catalog entry AWS contradicts, a subnet in another zone or a missing AMI stops the run with a clear
message before `pulumi up` could create half a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi_aws as aws
from config import PROJECT, ConfigError, StackConfig
from qwen_infra.catalogs import aws_instances

# Canonical's published Ubuntu 22.04 image for the small CPU hosts (load balancer, monitoring).
UBUNTU_PARAMETER = "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"


@dataclass(frozen=True)
class Image:
    id: str
    root_device_name: str


@dataclass(frozen=True)
class CloudFacts:
    offered: frozenset[str]  # catalog instance types the availability zone sells
    partition: str  # aws, aws-cn, aws-us-gov: IAM ARNs depend on it
    gpu_image: Image
    service_image: Image


def offered_types(config: StackConfig) -> frozenset[str]:
    result = aws.ec2.get_instance_type_offerings(
        location_type="availability-zone",
        filters=[
            {"name": "location", "values": [config.availability_zone]},
            {"name": "instance-type", "values": sorted(aws_instances.INSTANCES)},
        ],
    )
    return frozenset(result.instance_types or [])


def image(ami_id: str, parameter: str) -> Image:
    """The AMI named, or the one the SSM parameter currently points to."""
    if not ami_id:
        ami_id = aws.ssm.get_parameter(name=parameter).value
    found = aws.ec2.get_ami(filters=[{"name": "image-id", "values": [ami_id]}])
    return Image(found.id, found.root_device_name)


def check_subnet(config: StackConfig) -> None:
    if not config.subnet_id:
        return
    subnet = aws.ec2.get_subnet(id=config.subnet_id)
    if subnet.availability_zone != config.availability_zone or subnet.vpc_id != config.vpc_id:
        raise ConfigError(
            f"{PROJECT}:subnetId {config.subnet_id} is in {subnet.vpc_id} / {subnet.availability_zone}, "
            f"not {config.vpc_id} / {config.availability_zone}: a cluster placement group needs one zone"
        )


def check_catalog(instance_type: str) -> None:
    """Refuse when AWS describes the type differently from the catalog the EFA layout is built from."""
    described = aws.ec2.get_instance_type(instance_type=instance_type)
    # Read as a plain mapping: the keys compared are the ones in `actual`.
    entry: Mapping[str, object] = aws_instances.INSTANCES[instance_type]
    actual = {
        "efa_interfaces": described.efa_maximum_interfaces or 0,
        "network_cards": described.maximum_network_cards,
    }
    wrong = {key: value for key, value in actual.items() if entry[key] != value}
    if wrong:
        raise ConfigError(
            f"AWS describes {instance_type} with {wrong}, the catalog with "
            f"{ {key: entry[key] for key in wrong} }: fix qwen_infra.catalogs.aws_instances first"
        )


def gather(config: StackConfig) -> CloudFacts:
    check_subnet(config)
    return CloudFacts(
        offered=offered_types(config),
        partition=aws.get_partition().partition,
        gpu_image=image(config.ami_id, config.ami_ssm_parameter),
        service_image=image("", UBUNTU_PARAMETER),
    )
