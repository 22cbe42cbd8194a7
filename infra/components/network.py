"""The cluster's network: a new VPC with one public subnet in the chosen zone, or an existing subnet."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# One /20 is plenty: every host has a single IP (its EFA-only interfaces take none).
SUBNET_PREFIX = 20


@dataclass
class NetworkArgs:
    availability_zone: str
    region: str
    vpc_cidr: str
    vpc_id: str = ""  # both set: use the existing VPC and subnet, create nothing
    subnet_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class ClusterNetwork(pulumi.ComponentResource):
    """vpc_id and subnet_id of the single subnet (one zone: a cluster placement group spans no more)."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("qwen-infra:network:ClusterNetwork", name, None, opts)
        if args.vpc_id:
            self.vpc_id = pulumi.Output.from_input(args.vpc_id)
            self.subnet_id = pulumi.Output.from_input(args.subnet_id)
        else:
            self._create(name, args)
        self.register_outputs({"vpc_id": self.vpc_id, "subnet_id": self.subnet_id})

    def _create(self, name: str, args: NetworkArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        network = ipaddress.ip_network(args.vpc_cidr, strict=False)
        subnet_cidr = next(network.subnets(new_prefix=max(network.prefixlen, SUBNET_PREFIX)))
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(network),
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={**args.tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={**args.tags, "Name": f"{name}-igw"}, opts=child
        )
        subnet = aws.ec2.Subnet(
            f"{name}-subnet",
            vpc_id=vpc.id,
            cidr_block=str(subnet_cidr),
            availability_zone=args.availability_zone,
            # Public addresses are Elastic IPs given explicitly; nothing gets one by default.
            map_public_ip_on_launch=False,
            tags={**args.tags, "Name": f"{name}-subnet"},
            opts=child,
        )
        routes = aws.ec2.RouteTable(
            f"{name}-routes",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            tags={**args.tags, "Name": f"{name}-routes"},
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-routes-subnet", subnet_id=subnet.id, route_table_id=routes.id, opts=child
        )
        # Model downloads from an S3 mirror stay on AWS's network, free of data-processing charges.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[routes.id],
            tags={**args.tags, "Name": f"{name}-s3"},
            opts=child,
        )
        self.vpc_id = vpc.id
        self.subnet_id = subnet.id
