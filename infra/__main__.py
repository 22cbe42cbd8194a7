"""Pulumi program of qwen-infra.

The walking skeleton provisions nothing yet: it exports the contract later components fill in, so the
inventory hand-off (inventories/prod) can be built against a stable shape.
"""

import pulumi

# Each host Ansible will configure: address, role and what the GPU validation gate should expect.
pulumi.export("hosts", [])
pulumi.export("estimated_usd_per_hour", 0.0)
