"""One request through an OpenAI-compatible endpoint, streamed and timed with httpx.

Times are read at each server-sent event: the first one carrying text is the time to first token; the
gaps between later ones are the inter-token latencies (an event may carry several tokens, as in vLLM's
own benchmark, so the gap is spread over them). The token count is the server's `usage` when it sends
one (stream_options.include_usage), else one per text event.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .workload import RequestShape


@dataclass
class RequestRecord:
    """What happened to one request; times in seconds from the run's start."""

    started: float
    status: int  # HTTP status; 0 when no response came (connection refused, timeout)
    error: str = ""
    ttft: float | None = None
    latency: float | None = None
    output_tokens: int = 0
    prompt_tokens: int = 0
    token_gaps: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def finished(self) -> float:
        return self.started + (self.latency or 0.0)


def request_body(model: str, shape: RequestShape, chat: bool) -> dict[str, Any]:
    """The request: fixed output length (ignore_eos, vLLM's extension) so lengths are what was asked."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": shape.output_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
        "ignore_eos": True,
    }
    if chat:
        body["messages"] = [{"role": "user", "content": shape.prompt}]
    else:
        body["prompt"] = shape.prompt
    return body


def _text_of(event: dict[str, Any], chat: bool) -> str:
    choices = event.get("choices") or []
    if not choices:
        return ""
    text: str = ((choices[0].get("delta") or {}).get("content") if chat else choices[0].get("text")) or ""
    return text


async def send(
    client: httpx.AsyncClient, url: str, shape: RequestShape, *, model: str, chat: bool, clock_zero: float
) -> RequestRecord:
    """Send one streamed request and time it."""
    started = time.perf_counter()
    record = RequestRecord(started=started - clock_zero, status=0, prompt_tokens=shape.prompt_tokens)
    events, last = 0, None
    try:
        async with client.stream("POST", url, json=request_body(model, shape, chat)) as reply:
            record.status = reply.status_code
            if reply.status_code != 200:
                body = (await reply.aread()).decode(errors="replace")
                record.error = _error_message(body) or f"HTTP {reply.status_code}"
                return _done(record, started)
            async for line in reply.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if event.get("usage"):
                    record.output_tokens = int(event["usage"].get("completion_tokens") or 0)
                if _text_of(event, chat):
                    now = time.perf_counter()
                    if record.ttft is None:
                        record.ttft = now - started
                    elif last is not None:
                        record.token_gaps.append(now - last)
                    last, events = now, events + 1
    except (httpx.HTTPError, json.JSONDecodeError) as error:
        record.error = f"{type(error).__name__}: {error}"[:200]
        return _done(record, started)
    record.output_tokens = record.output_tokens or events
    if record.ttft is None:
        record.error = "the stream carried no text"
    return _done(record, started)


def _done(record: RequestRecord, started: float) -> RequestRecord:
    record.latency = time.perf_counter() - started
    return record


def _error_message(body: str) -> str:
    """The message of an OpenAI-shaped error body ({"error": {"message": ...}}), if it is one."""
    try:
        error = json.loads(body).get("error")
    except (json.JSONDecodeError, AttributeError):
        return ""
    if isinstance(error, dict):
        return str(error.get("message", ""))[:200]
    return str(error or "")[:200]
