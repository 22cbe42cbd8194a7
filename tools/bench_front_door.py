#!/usr/bin/env python3
"""What the front door costs: time to first token and throughput through HAProxy next to direct access
to the same vLLM servers, measured in one run from one client host.

Standard library only, so it runs on a load balancer host (the one place allowed to reach both):

    FRONT_DOOR_KEY=<client key> BACKEND_KEY=<vllm_api_key> python3 bench_front_door.py \\
        --front-door https://lb-1 --direct http://10.0.1.11:8000 --direct http://10.0.1.12:8000 \\
        --model Qwen3-32B-AWQ [--ca-file ca.pem]

playbooks/bench_front_door.yml runs it on the first load balancer with the inventory's keys. Method:
- time to first token: streamed chat completions, one at a time, alternating direct and front door in
  each round (so drift on the machine hits both alike); the time from sending the request to the first
  `data:` event, which vLLM sends with the first generated token. Median and P99 of each path, and of
  the per-round difference (front door minus direct).
- throughput: `--concurrency` workers sending whole chat completions of exactly `--max-tokens` tokens for
  `--seconds` per path, in `--slices` alternating parts; completed requests and tokens per second.
Each worker keeps one connection open (as the SDKs do), so neither path pays a handshake per request.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import ssl
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

PROMPT = "Write a short story about a lighthouse keeper."


class Target:
    """One server (URL and key) reached over one persistent connection per thread."""

    def __init__(self, url: str, key: str, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "", parts.port or (443 if self.https else 80)
        self.key, self.context = key, context
        self.local = threading.local()

    def connection(self) -> http.client.HTTPConnection:
        if getattr(self.local, "connection", None) is None:
            if self.https:
                self.local.connection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=300, context=self.context
                )
            else:
                self.local.connection = http.client.HTTPConnection(self.host, self.port, timeout=300)
        return self.local.connection

    def post(self, body: dict) -> http.client.HTTPResponse:
        payload = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile is opened again
            connection = self.connection()
            try:
                connection.request("POST", "/v1/chat/completions", payload, headers)
                return connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                self.local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def request_body(model: str, max_tokens: int, stream: bool) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        # Exactly max_tokens tokens, whatever the model would say: the same work on both paths.
        "min_tokens": max_tokens,
        "ignore_eos": True,
        "stream": stream,
    }


def time_to_first_token(target: Target, model: str, max_tokens: int) -> float:
    started = time.perf_counter()
    response = target.post(request_body(model, max_tokens, stream=True))
    if response.status != 200:
        raise RuntimeError(f"{target.host}: HTTP {response.status}: {response.read()[:300]!r}")
    first = None
    for line in response:
        if first is None and line.startswith(b"data:"):
            first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"{target.host}: the stream held no event")
    return first


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary_ms(values: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(values) * 1000, 2),
        "p99_ms": round(percentile(values, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
        "n": len(values),
    }


def throughput(targets: list[Target], model: str, max_tokens: int, workers: int, seconds: float) -> dict:
    done = {"requests": 0, "tokens": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def work(index: int) -> None:
        target = targets[index % len(targets)]
        while time.perf_counter() < deadline:
            response = target.post(request_body(model, max_tokens, stream=False))
            body = response.read()
            with lock:
                if response.status == 200:
                    done["requests"] += 1
                    done["tokens"] += json.loads(body)["usage"]["completion_tokens"]
                else:
                    done["errors"] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {**done, "seconds": elapsed}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--front-door", required=True, help="the front door's base URL (https://host)")
    parser.add_argument("--direct", action="append", required=True, help="a vLLM server's base URL (repeat)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--ca-file", default="", help="CA bundle for the front door (default: the system's)")
    parser.add_argument("--rounds", type=int, default=200, help="time-to-first-token rounds (each path once)")
    parser.add_argument("--ttft-tokens", type=int, default=4, help="tokens per time-to-first-token request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per throughput request")
    parser.add_argument("--seconds", type=float, default=40, help="throughput time per path")
    parser.add_argument("--slices", type=int, default=8, help="alternating parts of the throughput time")
    parser.add_argument("--warmup", type=int, default=10)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    client_key, backend_key = os.environ.get("FRONT_DOOR_KEY"), os.environ.get("BACKEND_KEY")
    if not client_key or not backend_key:
        print("set FRONT_DOOR_KEY (a client key) and BACKEND_KEY (vllm_api_key)", file=sys.stderr)
        return 2
    load_at_start = os.getloadavg()
    context = ssl.create_default_context(cafile=args.ca_file or None)
    front_door = Target(args.front_door, client_key, context)
    direct = [Target(url, backend_key, None) for url in args.direct]

    for index in range(args.warmup):
        time_to_first_token(front_door, args.model, args.ttft_tokens)
        time_to_first_token(direct[index % len(direct)], args.model, args.ttft_tokens)

    samples: dict[str, list[float]] = {"direct": [], "front_door": []}
    for index in range(args.rounds):
        pair = [("direct", direct[index % len(direct)]), ("front_door", front_door)]
        for name, target in pair if index % 2 == 0 else reversed(pair):
            samples[name].append(time_to_first_token(target, args.model, args.ttft_tokens))
    differences = [f - d for f, d in zip(samples["front_door"], samples["direct"], strict=True)]

    runs: dict[str, list[dict]] = {"direct": [], "front_door": []}
    part = args.seconds / args.slices
    for _ in range(args.slices):
        for name, targets in (("direct", direct), ("front_door", [front_door])):
            runs[name].append(throughput(targets, args.model, args.max_tokens, args.concurrency, part))
    rates = {}
    for name, parts in runs.items():
        seconds = sum(p["seconds"] for p in parts)
        rates[name] = {
            "requests_per_s": round(sum(p["requests"] for p in parts) / seconds, 2),
            "tokens_per_s": round(sum(p["tokens"] for p in parts) / seconds, 1),
            "errors": sum(p["errors"] for p in parts),
            "seconds": round(seconds, 1),
        }

    report = {
        # The machine's 1/5/15-minute load when the run started and ended: a busy machine skews both paths.
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "model": args.model,
        "direct": args.direct,
        "front_door": args.front_door,
        "time_to_first_token": {
            "direct": summary_ms(samples["direct"]),
            "front_door": summary_ms(samples["front_door"]),
            "added_by_front_door": summary_ms(differences),
            "tokens_per_request": args.ttft_tokens,
        },
        "throughput": {
            **rates,
            "concurrency": args.concurrency,
            "tokens_per_request": args.max_tokens,
            "front_door_vs_direct": round(
                rates["front_door"]["tokens_per_s"] / max(rates["direct"]["tokens_per_s"], 1e-9), 3
            ),
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
