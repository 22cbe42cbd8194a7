"""`qwen-infra bench`: the command line's arguments checked, the run, and its outputs."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import report, stats
from .client import RequestRecord
from .runner import Load, Target
from .runner import run as run_load
from .workload import RequestShape, WorkloadError, dataset_shapes, synthetic_shapes

NO_FAILURE, SOME_FAILED, BAD_ARGUMENTS = 0, 1, 2


class BenchArgumentError(ValueError):
    """An argument the bench cannot run with."""


def _api_key(args: argparse.Namespace) -> str:
    if args.api_key_file:
        try:
            key: str = args.api_key_file.read_text().strip()
            return key
        except OSError as error:
            raise BenchArgumentError(
                f"cannot read --api-key-file {args.api_key_file}: {error.strerror}"
            ) from None
    return os.environ.get(args.api_key_env) or os.environ.get("OPENAI_API_KEY", "")


def _load(args: argparse.Namespace) -> Load:
    if args.concurrency is not None and not 1 <= args.concurrency <= 10_000:
        raise BenchArgumentError(f"--concurrency must be 1-10000, not {args.concurrency}")
    if args.rate is not None and not (math.isfinite(args.rate) and 0 < args.rate <= 10_000):
        raise BenchArgumentError(f"--rate must be a positive number of requests per second, not {args.rate}")
    if args.requests is not None and not 1 <= args.requests <= 10_000_000:
        raise BenchArgumentError(f"--requests must be at least 1, not {args.requests}")
    if args.duration is not None and not (math.isfinite(args.duration) and 0 < args.duration <= 86_400):
        raise BenchArgumentError(f"--duration must be 0-86400 seconds, not {args.duration}")
    concurrency = args.concurrency if args.rate is None else None
    return Load(
        concurrency=concurrency if concurrency is not None or args.rate is not None else 8,
        rate=args.rate,
        requests=args.requests if args.requests is not None or args.duration is not None else 100,
        duration_s=args.duration,
    )


def _shapes(args: argparse.Namespace) -> Iterator[RequestShape]:
    if not 1 <= args.prompt_tokens <= 1_000_000 or not 1 <= args.output_tokens <= 1_000_000:
        raise BenchArgumentError("--prompt-tokens and --output-tokens must be 1-1000000")
    tokenizer = None
    if args.tokenizer:
        from tokenizers import Tokenizer  # noqa: PLC0415 - the official tokenizer, where one is given

        path = args.tokenizer / "tokenizer.json" if args.tokenizer.is_dir() else args.tokenizer
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:
            raise BenchArgumentError(f"cannot load the tokenizer {path}: {error}") from None
    if args.dataset:
        return dataset_shapes(args.dataset, args.output_tokens, tokenizer)
    return synthetic_shapes(args.prompt_tokens, args.output_tokens, tokenizer)


def prediction(sized: dict[str, Any], request_tokens: int, load: Load) -> dict[str, Any]:
    """The sizing engine's answer for the host (`qwen-infra size --json`, or a host's vram_check
    result) at this run's request length."""
    breakdown = sized.get("breakdown") or {}
    try:
        tokens = int(sized["kv_cache_tokens"])
    except (KeyError, TypeError, ValueError):
        raise BenchArgumentError("--compare needs the JSON `qwen-infra size --json` prints") from None
    return {
        "model": breakdown.get("model", "?"),
        "gpu": breakdown.get("gpu", "?"),
        "gpus": breakdown.get("gpus", "?"),
        "kv_cache_tokens": tokens,
        "request_tokens": request_tokens,
        "concurrency_at_request_length": round(tokens / request_tokens, 2),
        "concurrency_used": load.concurrency if load.concurrency else f"rate {load.rate:g}/s",
    }


def run(args: argparse.Namespace) -> int:
    try:
        load = _load(args)
        shapes = _shapes(args)
        target = Target(
            args.base_url, _api_key(args), args.model, chat=not args.completions, ca_bundle=args.ca_bundle
        )
        sized = None
        if args.compare:
            try:
                sized = json.loads(Path(args.compare).read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise BenchArgumentError(f"cannot read --compare {args.compare}: {error}") from None
        first = next(shapes)
        request_tokens = first.prompt_tokens + first.output_tokens
        compared = prediction(sized, request_tokens, load) if sized is not None else None
    except (BenchArgumentError, WorkloadError) as error:
        print(f"qwen-infra bench: error: {error}", file=sys.stderr)
        return BAD_ARGUMENTS
    progress = not args.no_progress and sys.stderr.isatty()
    records, wall = run_with_first(target, first, shapes, load, progress)
    summary = stats.summarize(records, wall)
    summary["target"] = {"base_url": target.base_url, "model": target.model, "chat": target.chat}
    summary["load"] = asdict(load)
    if compared:
        summary["prediction"] = compared
    if args.output:
        args.output.write_text(json.dumps({**summary, "records": [asdict(r) for r in records]}, indent=2))
    if args.plot:
        report.plot(records, args.plot, f"{target.model} at {target.base_url}")
    print(json.dumps(summary, indent=2) if args.json else report.table(summary, target.base_url))
    return NO_FAILURE if summary["requests"]["failed"] == 0 else SOME_FAILED


def run_with_first(
    target: Target, first: RequestShape, shapes: Iterator[RequestShape], load: Load, progress: bool
) -> tuple[list[RequestRecord], float]:
    """Run with the request already drawn (its length was needed for the comparison) sent first."""

    def again() -> Iterator[RequestShape]:
        yield first
        yield from shapes

    return run_load(target, again(), load, progress)
