"""Filters of playbooks/rolling.yml: the rollout goes server by server, and a multi-node group is one server.

A single-host server is its host; a multi-node group (vllm_nnodes > 1) is every host with its head's
address (vllm_master_addr), changed, restarted and gated together. Pure functions over hostvars, so the
tests call them directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def server_of(host: str, variables: Mapping) -> str:
    """The server a host belongs to: its group's head address, or the host itself."""
    if int(variables.get("vllm_nnodes", 1)) > 1:
        # A missing address is refused by validate.yml, after the plan.
        return str(variables.get("vllm_master_addr") or "(no vllm_master_addr)")
    return host


def batch_size(serial: int | str, singles: int) -> int:
    """How many single-host servers go at once: a number, or a share of them ("25%", as Ansible's serial
    takes it, rounded down), at least one."""
    text = str(serial).strip()
    if text.endswith("%"):
        return max(int(singles * float(text[:-1]) / 100), 1)
    return max(int(text), 1)


def rollout_plan(hosts: Sequence[str], hostvars: Mapping, serial: int | str = 1) -> dict:
    """The rollout's batches over `hosts` (the play's, after --limit), in their order.

    A group is a batch of its own, with every node; single-host servers go `serial` at a time (a number
    or a share of them). Returns order (the hosts, batch after batch), sizes (each batch's host count,
    for the play's `serial`), server (each host's server) and partial (a message per group that is not
    whole in `hosts`)."""
    servers: dict[str, list[str]] = {}
    for host in hosts:
        servers.setdefault(server_of(host, hostvars[host]), []).append(host)
    serial = batch_size(serial, sum(1 for host in hosts if int(hostvars[host].get("vllm_nnodes", 1)) == 1))
    batches: list[list[str]] = []
    singles: list[str] = []
    partial = []
    for name, members in servers.items():
        expected = int(hostvars[members[0]].get("vllm_nnodes", 1))
        if expected == 1:
            singles.append(members[0])
            if len(singles) == serial:
                batches.append(singles)
                singles = []
            continue
        if len(members) != expected:
            partial.append(
                f"the group with head {name} has {expected} nodes and this rollout holds {len(members)} "
                f"({', '.join(members)})"
            )
        batches.append(sorted(members, key=lambda host: int(hostvars[host].get("vllm_node_rank", 0))))
    if singles:
        batches.append(singles)
    return {
        "order": [host for batch in batches for host in batch],
        "sizes": [len(batch) for batch in batches],
        "server": {host: name for name, members in servers.items() for host in members},
        "partial": partial,
    }


class FilterModule:
    def filters(self):
        return {"rollout_plan": rollout_plan}
