"""playbooks/filter_plugins/rollout.py: the batches of a rollout, server by server, a multi-node group being
one server with every node in one batch."""

import importlib.util

from tests.paths import REPO

_spec = importlib.util.spec_from_file_location(
    "rollout", REPO / "playbooks" / "filter_plugins" / "rollout.py"
)
rollout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rollout)


def node(host, nnodes=1, rank=0, head=""):
    """A host's facts as rolling.yml states them (_rolling_node)."""
    return {"host": host, "nnodes": nnodes, "rank": rank, "head": head}


def group(head, *hosts):
    return [node(host, len(hosts), rank, head) for rank, host in enumerate(hosts)]


HEAD, WORKER = group("10.0.0.1", "head", "worker")
A, B, C = node("a"), node("b"), node("c")


def test_a_group_is_one_batch_head_first_and_singles_go_one_at_a_time():
    plan = rollout.rollout_plan([A, WORKER, B, HEAD, C])
    assert plan["order"] == ["a", "head", "worker", "b", "c"]
    assert plan["sizes"] == [1, 2, 1, 1]
    assert plan["server"] == {"a": "a", "worker": "10.0.0.1", "head": "10.0.0.1", "b": "b", "c": "c"}
    assert plan["partial"] == []


def test_serial_batches_single_hosts_but_never_joins_them_to_a_group():
    plan = rollout.rollout_plan([A, WORKER, B, HEAD, C], serial=2)
    assert plan["sizes"] == [2, 2, 1]
    assert plan["order"] == ["head", "worker", "a", "b", "c"]


def test_a_group_missing_a_node_is_named():
    plan = rollout.rollout_plan([A, WORKER])
    assert plan["partial"] == ["the group with head 10.0.0.1 has 2 nodes and this rollout holds 1 (worker)"]


def test_two_groups_are_two_servers():
    h2, w2 = group("10.0.0.9", "h2", "w2")
    plan = rollout.rollout_plan([w2, HEAD, h2, WORKER])
    assert plan["order"] == ["h2", "w2", "head", "worker"]
    assert plan["sizes"] == [2, 2]


def test_a_share_counts_the_single_host_servers():
    singles = [node(f"s{i}") for i in range(8)]
    plan = rollout.rollout_plan([*singles, HEAD, WORKER], serial="25%")
    assert plan["sizes"] == [2, 2, 2, 2, 2]  # 25 % of 8 single hosts; the group's batch is its 2 nodes
    assert rollout.batch_size("10%", 3) == 1 and rollout.batch_size(3, 10) == 3


def test_the_front_door_knows_single_hosts_and_heads_only():
    hostvars = {
        "a": {},
        "head": {"vllm_nnodes": 2, "vllm_node_rank": 0},
        "worker": {"vllm_nnodes": 2, "vllm_node_rank": 1},
        "b": {"vllm_nnodes": "1"},
    }
    assert rollout.front_door_servers(["a", "head", "worker", "b"], hostvars) == ["a", "head", "b"]
