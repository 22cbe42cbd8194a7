"""An instance profile with least privilege: Session Manager, and read access to one model-mirror
prefix when one is configured. Nothing else: no wildcard actions, no write access anywhere."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

# AWS's managed policy for the SSM agent (Session Manager, Run Command); nothing beyond that.
SSM_CORE_POLICY = "AmazonSSMManagedInstanceCore"


@dataclass
class IdentityArgs:
    partition: str = "aws"
    model_mirror_bucket: str = ""  # empty: no S3 permission at all
    model_mirror_prefix: str = "models/"
    tags: dict[str, str] = field(default_factory=dict)


def model_mirror_policy(partition: str, bucket: str, prefix: str) -> dict[str, Any]:
    """Read-only: list the prefix, get the objects under it."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListModelPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            },
            {
                "Sid": "ReadModelObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn}/{prefix}*",
            },
        ],
    }


class InstanceIdentity(pulumi.ComponentResource):
    """profile_name: the instance profile to launch hosts with."""

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("qwen-infra:identity:InstanceIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps(trust), tags=args.tags, opts=child)
        aws.iam.RolePolicyAttachment(
            f"{name}-ssm",
            role=role.name,
            policy_arn=f"arn:{args.partition}:iam::aws:policy/{SSM_CORE_POLICY}",
            opts=child,
        )
        if args.model_mirror_bucket:
            aws.iam.RolePolicy(
                f"{name}-model-mirror",
                role=role.id,
                policy=json.dumps(
                    model_mirror_policy(args.partition, args.model_mirror_bucket, args.model_mirror_prefix)
                ),
                opts=child,
            )
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, tags=args.tags, opts=child)
        self.profile_name = profile.name
        self.role_name = role.name
        self.register_outputs({"profile_name": self.profile_name, "role_name": self.role_name})
