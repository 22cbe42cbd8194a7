#!/usr/bin/env python3
"""NCCL all-reduce bus bandwidth across this host's GPUs with PyTorch (used when nccl-tests is absent).

Prints one JSON object: gpus, size_bytes, dtype, time_s (mean per all-reduce), algbw_gbps and busbw_gbps
computed the way nccl-tests does (busbw = algbw * 2 * (n - 1) / n, GB = 1e9 bytes), plus the torch and
NCCL versions. Exits 2 with a JSON error when fewer than two GPUs are visible.
"""

import argparse
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank: int, world: int, settings: dict, queue) -> None:
    size_bytes, iters, warmup = settings["size_bytes"], settings["iters"], settings["warmup"]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(settings["port"]))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world, device_id=torch.device("cuda", rank))
    buffer = torch.ones(size_bytes // 2, dtype=torch.bfloat16, device="cuda")
    for _ in range(warmup):
        dist.all_reduce(buffer)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    dist.barrier()
    start.record()
    for _ in range(iters):
        dist.all_reduce(buffer)
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000 / iters
    slowest = torch.tensor([seconds], device="cuda")
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    if rank == 0:
        queue.put(slowest.item())
    dist.destroy_process_group()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--port", type=int, default=29511)
    args = parser.parse_args()
    world = torch.cuda.device_count()
    if world < 2:
        print(json.dumps({"error": f"{world} GPU visible; an all-reduce check needs at least 2"}))
        return 2
    size = args.size_mib << 20
    context = mp.get_context("spawn")
    queue = context.Queue()
    settings = {"size_bytes": size, "iters": args.iters, "warmup": args.warmup, "port": args.port}
    mp.spawn(worker, args=(world, settings, queue), nprocs=world)
    seconds = queue.get(timeout=60)
    algbw = size / seconds / 1e9
    print(
        json.dumps(
            {
                "tool": "torch",
                "gpus": world,
                "size_bytes": size,
                "dtype": "bfloat16",
                "time_s": seconds,
                "algbw_gbps": round(algbw, 2),
                "busbw_gbps": round(algbw * 2 * (world - 1) / world, 2),
                "torch": torch.__version__,
                "nccl": ".".join(map(str, torch.cuda.nccl.version())),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
