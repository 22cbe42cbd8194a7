"""The multi-node launcher's group watch (roles/vllm/files/qwen_vllm_node.py) against the connections
of a real two-node vLLM group (tests/fixtures/multinode): it counts the links to the rendezvous a node
must keep, and ends the node only after the group formed and then lost a node."""

import importlib.util

import pytest

from tests.paths import REPO

LAUNCHER = REPO / "roles" / "vllm" / "files" / "qwen_vllm_node.py"
CAPTURES = REPO / "tests" / "fixtures" / "multinode"
HEAD, PORT = "10.199.0.1", 29561


@pytest.fixture(scope="module")
def node():
    spec = importlib.util.spec_from_file_location("qwen_vllm_node", LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # no vLLM needed: it is imported only in main()
    return module


def links(node, who):
    return node.established(str(CAPTURES / f"proc-net-{who}"))


def test_the_tables_are_read_with_ipv4_mapped_addresses_as_ipv4(node):
    head = links(node, "head")
    assert (HEAD, PORT, "10.199.0.2", 34954) in head  # the worker's rank, over tcp6 (IPv4-mapped)
    assert (HEAD, 58406, HEAD, PORT) in head  # the head's own rank, over its own address
    assert all(isinstance(port, int) for _, port, _, _ in head)


def test_each_node_of_the_running_group_sees_its_link(node):
    assert node.group_links(links(node, "head"), node_rank=0, master_addr=HEAD, master_port=PORT) == 1
    assert node.group_links(links(node, "worker"), node_rank=1, master_addr=HEAD, master_port=PORT) == 1


def test_the_heads_own_ranks_and_other_ports_do_not_count(node):
    head = links(node, "head")
    assert node.group_links(head, node_rank=0, master_addr=HEAD, master_port=PORT + 1) == 0
    own_only = [link for link in head if link[2] == HEAD]
    assert node.group_links(own_only, node_rank=0, master_addr=HEAD, master_port=PORT) == 0


class StopWatchingError(Exception):
    """Ends a watch under test when its scripted reads run out."""


def run_watch(node, monkeypatch, tables, node_rank):
    """Run the watch over `tables` (one list of links per check); the exit status it ended with, or
    None if it was still watching when the tables ran out."""
    reads = iter(tables)

    def established(proc_net="/proc/net"):
        try:
            return next(reads)
        except StopIteration:
            raise StopWatchingError from None

    def exit_now(status):
        raise SystemExit(status)

    monkeypatch.setattr(node, "established", established)
    monkeypatch.setattr(node.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(node.os, "_exit", exit_now)
    try:
        node.watch(2, node_rank, HEAD, PORT)
    except SystemExit as ended:
        return ended.code
    except StopWatchingError:
        return None


@pytest.mark.parametrize(("who", "rank"), [("head", 0), ("worker", 1)])
def test_a_node_ends_only_after_its_group_formed_then_lost_the_other(node, monkeypatch, who, rank):
    running = links(node, who)
    # the same tables without the other node's connections (on the head: from the worker's address)
    other = (
        (lambda link: link[1] == PORT and link[2] != HEAD) if rank == 0 else (lambda link: link[3] == PORT)
    )
    lost = [link for link in running if not other(link)]
    assert len(lost) < len(running)
    misses = node.MISSES_ALLOWED
    # still forming: no link yet, for as long as vLLM takes to start; never ended
    assert run_watch(node, monkeypatch, [lost] * (misses * 4), rank) is None
    # formed, then a short gap (fewer misses than allowed), then back: never ended
    assert run_watch(node, monkeypatch, [running, *[lost] * (misses - 1), running], rank) is None
    # formed, then the other node gone for good: ended, for systemd to restart it
    assert run_watch(node, monkeypatch, [running, *[lost] * misses], rank) == node.EXIT_GROUP_LOST
