"""Ask the service for a chat completion through its front door with the official `openai` client, once
whole and once streamed, and print the endpoint. Run by playbooks/smoke.yml (`make lab` ends with it).

    OPENAI_API_KEY=<client key> python tools/front_door_smoke.py --base-url https://LB/v1 --model NAME \
        [--ca-file ca.pem]

Exit status 0 when both answers arrived, 1 otherwise. The key comes from the environment only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import httpx
import openai

PROMPT = "Say hello to the qwen-infra lab."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="the front door's OpenAI base URL (https://.../v1)")
    parser.add_argument("--model", required=True, help="a served model this client may use")
    parser.add_argument("--ca-file", default="", help="CA bundle to trust instead of the system's")
    parser.add_argument("--max-tokens", type=int, default=16)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.environ.get("OPENAI_API_KEY"):
        print("set OPENAI_API_KEY to a client key of the front door", file=sys.stderr)
        return 1
    verify: str | bool = args.ca_file or True
    client = openai.OpenAI(
        base_url=args.base_url, http_client=httpx.Client(verify=verify), max_retries=0, timeout=120
    )
    # Sampled with a fixed seed: the lab model's greedy reply is only new lines.
    request = {
        "model": args.model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": args.max_tokens,
        "temperature": 1.0,
        "seed": 7,
    }
    started = time.monotonic()
    whole = client.chat.completions.create(**request)
    whole_s = time.monotonic() - started

    started = time.monotonic()
    first_chunk_s = None
    parts = []
    for chunk in client.chat.completions.create(**request, stream=True):
        if first_chunk_s is None:
            first_chunk_s = time.monotonic() - started
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    streamed_s = time.monotonic() - started

    print(f"endpoint: {args.base_url} (OpenAI API over TLS; send 'Authorization: Bearer <client key>')")
    print(f"model: {whole.model}")
    tokens = whole.usage.completion_tokens if whole.usage else 0
    print(f"answer: {json.dumps(whole.choices[0].message.content)} ({tokens} tokens, {whole_s:.2f} s)")
    print(
        f"streamed: {json.dumps(''.join(parts))} ({len(parts)} chunks with text, first chunk after "
        f"{(first_chunk_s or 0) * 1000:.0f} ms, {streamed_s:.2f} s in all)"
    )
    return 0 if whole.choices[0].message.content is not None and first_chunk_s is not None else 1


if __name__ == "__main__":
    sys.exit(main())
