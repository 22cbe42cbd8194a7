"""Pulumi program of qwen-infra: a right-sized GPU cluster for vLLM on AWS, handed to Ansible.

The work is in stack.py; this file only exports what it returns (see Pulumi.yaml for the configuration
and docs/pulumi.md for the operator's steps).
"""

import pulumi
from stack import main

for key, value in main().items():
    pulumi.export(key, value)
