"""What the load generator sends and when: request shapes from options or a dataset file, and arrival
times for a fixed concurrency (closed loop) or a request rate (open loop, Poisson arrivals)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # an optional dependency, imported by the caller that has one
    from tokenizers import Tokenizer

# Words that tokenize to about one token each in Qwen's BPE (plain, frequent English words).
_FILLER = (
    "the",
    "model",
    "serves",
    "requests",
    "for",
    "many",
    "users",
    "across",
    "the",
    "cluster",
    "while",
    "the",
    "service",
    "keeps",
    "running",
    "and",
    "the",
    "operators",
    "watch",
    "latency",
    "and",
    "throughput",
)


class WorkloadError(ValueError):
    """A workload that cannot be run as asked (bad dataset, impossible numbers)."""


@dataclass(frozen=True)
class RequestShape:
    """One request: its prompt and how many tokens to generate."""

    prompt: str
    output_tokens: int
    prompt_tokens: int  # as counted by the tokenizer when one is given, else estimated (words)


def synthetic_prompt(tokens: int, seed: int, tokenizer: Tokenizer | None = None) -> tuple[str, int]:
    """A prompt of about `tokens` tokens (exactly, with a tokenizer), different for each seed so no
    prefix cache serves it whole."""
    rng = random.Random(seed)  # noqa: S311 - varied prompts, not secrets
    words = [f"request {seed}:"] + [rng.choice(_FILLER) for _ in range(max(1, tokens - 2))]
    text = " ".join(words)
    if tokenizer is None:
        return text, len(words) + 1
    ids = tokenizer.encode(text).ids
    while len(ids) < tokens:
        text += " " + rng.choice(_FILLER)
        ids = tokenizer.encode(text).ids
    return tokenizer.decode(ids[:tokens]), tokens


def synthetic_shapes(
    prompt_tokens: int, output_tokens: int, tokenizer: Tokenizer | None = None
) -> Iterator[RequestShape]:
    """An endless stream of requests of the given lengths."""
    if prompt_tokens < 1 or output_tokens < 1:
        raise WorkloadError("--prompt-tokens and --output-tokens must be at least 1")
    seed = 0
    while True:
        prompt, counted = synthetic_prompt(prompt_tokens, seed, tokenizer)
        yield RequestShape(prompt, output_tokens, counted)
        seed += 1


def dataset_shapes(
    path: Path, default_output_tokens: int, tokenizer: Tokenizer | None = None
) -> Iterator[RequestShape]:
    """Requests from a JSONL file, one object a line: {"prompt": "...", "output_tokens": N} (output_tokens
    optional), replayed in order and again from the start when the run is longer than the file."""
    shapes = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise WorkloadError(f"cannot read the dataset {path}: {error.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            prompt, output = str(item["prompt"]), int(item.get("output_tokens", default_output_tokens))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise WorkloadError(
                f"{path}:{number}: each line must be a JSON object with a prompt ({error})"
            ) from None
        if output < 1 or not prompt:
            raise WorkloadError(f"{path}:{number}: an empty prompt or an output_tokens below 1")
        counted = len(tokenizer.encode(prompt).ids) if tokenizer is not None else len(prompt.split())
        shapes.append(RequestShape(prompt, output, counted))
    if not shapes:
        raise WorkloadError(f"the dataset {path} holds no request")
    while True:
        yield from shapes


def poisson_gaps(rate: float, seed: int = 0) -> Iterator[float]:
    """Seconds between arrivals of an open-loop load at `rate` requests per second."""
    rng = random.Random(seed)  # noqa: S311 - arrival times, not secrets
    while True:
        yield rng.expovariate(rate)
