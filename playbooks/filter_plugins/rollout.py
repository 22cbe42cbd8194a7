"""Filters of playbooks/rolling.yml: the rollout goes server by server, and a multi-node group is one server.

A single-host server is its host; a multi-node group (vllm_nnodes > 1) is every host with its head's
address (vllm_master_addr), changed, restarted and gated together. Pure functions over each host's
plain facts (rolling.yml's `_rolling_node`: host, nnodes, rank, head), so the tests call them directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def server_of(node: Mapping) -> str:
    """The server a host belongs to: its group's head address, or the host itself."""
    if int(node["nnodes"]) > 1:
        # A missing address is refused by validate.yml, after the plan.
        return str(node["head"] or "(no vllm_master_addr)")
    return str(node["host"])


def front_door_servers(hosts: Sequence[str], hostvars: Mapping) -> list[str]:
    """The hosts the front door sends requests to: single-host servers and the heads of groups (a group's
    workers serve no API). Reads only vllm_nnodes and vllm_node_rank, so it holds for every host of the
    inventory, in the rollout or not."""
    return [
        host
        for host in hosts
        if int(hostvars[host].get("vllm_nnodes", 1)) == 1 or int(hostvars[host].get("vllm_node_rank", 0)) == 0
    ]


def batch_size(serial: int | str, singles: int) -> int:
    """How many single-host servers go at once: a number, or a share of them ("25%", as Ansible's serial
    takes it, rounded down), at least one."""
    text = str(serial).strip()
    if text.endswith("%"):
        return max(int(singles * float(text[:-1]) / 100), 1)
    return max(int(text), 1)


def rollout_plan(nodes: Sequence[Mapping], serial: int | str = 1) -> dict:
    """The rollout's batches over `nodes` (the play's hosts, after --limit), in their order.

    A group is a batch of its own, with every node, head first; single-host servers go `serial` at a
    time (a number or a share of them). Returns order (the hosts, batch after batch), sizes (each
    batch's host count, for the play's `serial`), server (each host's server) and partial (a message
    per group that is not whole in `nodes`)."""
    servers: dict[str, list[Mapping]] = {}
    for node in nodes:
        servers.setdefault(server_of(node), []).append(node)
    size = batch_size(serial, sum(1 for node in nodes if int(node["nnodes"]) == 1))
    batches: list[list[str]] = []
    singles: list[str] = []
    partial = []
    for name, members in servers.items():
        expected = int(members[0]["nnodes"])
        if expected == 1:
            singles.append(str(members[0]["host"]))
            if len(singles) == size:
                batches.append(singles)
                singles = []
            continue
        hosts = [str(node["host"]) for node in sorted(members, key=lambda node: int(node["rank"]))]
        if len(members) != expected:
            partial.append(
                f"the group with head {name} has {expected} nodes and this rollout holds {len(members)} "
                f"({', '.join(hosts)})"
            )
        batches.append(hosts)
    if singles:
        batches.append(singles)
    return {
        "order": [host for batch in batches for host in batch],
        "sizes": [len(batch) for batch in batches],
        "server": {str(node["host"]): name for name, members in servers.items() for node in members},
        "partial": partial,
    }


class FilterModule:
    def filters(self):
        return {"rollout_plan": rollout_plan, "front_door_servers": front_door_servers}
