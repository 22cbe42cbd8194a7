"""What the stack hands to Ansible: one record per host, the serving layout and how to connect.

The stack exports these as `hosts`, `serving` and `access`; infra/inventory.py turns
`pulumi stack output --json` into inventories/prod/hosts.yml from exactly these keys. GPU hosts
(gpu_expected_count > 0) get their instance type as the GPU validation gate's profile, from which the gate
reads what each host must show.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from config import StackConfig
from hardware import Selection
from qwen_infra.catalogs import aws_instances
from qwen_infra.server import ServerConfig, command_line, node_server, role_variables

# Roles a host can have; serving hosts form the `vllm_servers` group (head first, then workers).
SERVING_HEAD = "serving-head"
SERVING_WORKER = "serving-worker"
MONITORING = "monitoring"
LOAD_BALANCER = "load-balancer"
ROLES = (SERVING_HEAD, SERVING_WORKER, MONITORING, LOAD_BALANCER)

# The Deep Learning AMI mounts the instance-store NVMe here (infra/userdata/model-cache.sh does it on
# other AMIs): the model cache lives on local NVMe, not on EBS.
MODEL_CACHE_DIR = "/opt/dlami/nvme/models"
# What a plan made before the head exists (python infra/plan.py) names the head's address as.
HEAD_ADDRESS_UNKNOWN = "HEAD_PRIVATE_IP"
# The login user of Ubuntu AMIs, the Deep Learning Base AMI included.
SSH_USER = "ubuntu"
# The load balancer host's TLS listener.
LOAD_BALANCER_PORT = 443

# The server settings the plan decides; the inventory sets each as its vllm role variable. The model's
# path and served name come from the inventory's group_vars (qwen_model_cache_dir / qwen_model_name).
PLANNED_SETTINGS = (
    "port",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "enable_expert_parallel",
    "max_model_len",
    "kv_cache_dtype",
    "quantization",
    "gpu_memory_utilization",
    # Across nodes (vLLM's native launch): the group's size and rendezvous; each host's vllm_node_rank
    # comes from its place in the hosts list (infra/inventory.py: the head 0, the workers 1..n in order).
    "nnodes",
    "master_addr",
    "master_port",
)

HOST_KEYS = (
    "name",
    "role",
    "instance_id",
    "instance_type",
    "private_ip",
    "public_ip",
    "availability_zone",
    "gpu_expected_count",
    "gpu_expected_efa_count",
    "gpu_expected_nvswitch",
)


def gpu_expectations(instance_type: str) -> dict[str, Any]:
    """What the GPU validation gate must find on a host of this type (zeros for CPU-only hosts)."""
    entry = aws_instances.INSTANCES.get(instance_type)
    if entry is None:
        return {"gpu_expected_count": 0, "gpu_expected_efa_count": 0, "gpu_expected_nvswitch": False}
    return {
        "gpu_expected_count": entry["gpus"],
        "gpu_expected_efa_count": entry["efa_interfaces"],
        "gpu_expected_nvswitch": entry["nvswitch"],
    }


def host_record(
    name: str, role: str, instance_type: str, availability_zone: str, resolved: dict[str, Any]
) -> dict[str, Any]:
    """One host as exported; `resolved` holds the instance's instance_id, private_ip and public_ip."""
    if role not in ROLES:
        raise ValueError(f"unknown host role {role!r}")
    return {
        "name": name,
        "role": role,
        "instance_id": resolved["instance_id"],
        "instance_type": instance_type,
        "private_ip": resolved["private_ip"],
        "public_ip": resolved.get("public_ip") or "",
        "availability_zone": availability_zone,
        **gpu_expectations(instance_type),
    }


def served(config: StackConfig, selection: Selection, head_address: str | None = None) -> ServerConfig:
    """The vLLM server the hosts run: the model from the NVMe cache under its short name, on the API port,
    with the layout the sizing engine chose; across nodes, the group meets at the head's private address
    (`head_address`, known once the head exists; None names a placeholder, for plans before `pulumi up`)."""
    name = model_name(selection)
    server = selection.server(model=f"{MODEL_CACHE_DIR}/{name}", served_model_name=name, port=config.api_port)
    if server.nnodes > 1:
        server = replace(server, master_addr=head_address or HEAD_ADDRESS_UNKNOWN)
    return server


def node_servers(server: ServerConfig, addresses: list[str]) -> list[ServerConfig]:
    """The server as each serving host runs it, by node rank: listening on the host's private address
    (the inventory's vllm_host: inventories/prod/group_vars/vllm_servers/vllm.yml), with its node rank."""
    return [replace(node_server(server, rank), host=address) for rank, address in enumerate(addresses)]


def model_name(selection: Selection) -> str:
    return selection.model.rsplit("/", 1)[-1]


def serving(config: StackConfig, selection: Selection, addresses: list[str] | None = None) -> dict[str, Any]:
    """The vLLM layout the sizing engine chose: the vllm role's variables for every setting the plan
    decides, and the command line each serving host's unit will run (built by qwen_infra.server), given
    the serving hosts' private `addresses` (head first): `command` is the head's (the only host's on one
    node), `node_commands` every host's by node rank."""
    server = served(config, selection, addresses[0] if addresses else None)
    plan = selection.plan
    nodes = (
        node_servers(server, addresses)
        if addresses
        else [node_server(server, rank) for rank in range(server.nnodes)]
    )
    return {
        "model": selection.model,
        "model_name": model_name(selection),
        "quantization": selection.quantization,
        "tensor_parallel_size": plan.tensor_parallel_size,
        "pipeline_parallel_size": plan.pipeline_parallel_size,
        "enable_expert_parallel": plan.enable_expert_parallel,
        "max_model_len": plan.max_model_len,
        "nodes": selection.nodes,
        "api_port": config.api_port,
        "model_cache_dir": MODEL_CACHE_DIR,
        "vllm_variables": role_variables(server, PLANNED_SETTINGS),
        "command": command_line(nodes[0]),
        "node_commands": [command_line(node) for node in nodes],
    }


def access(config: StackConfig) -> dict[str, Any]:
    """How Ansible reaches the hosts."""
    return {
        "mode": config.access,
        "ssh_user": SSH_USER,
        "region": config.region,
        "key_name": config.ssh_key_name,
    }
