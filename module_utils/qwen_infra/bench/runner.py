"""Run a workload against an endpoint: a fixed number of requests in flight (closed loop) or arrivals at
a fixed rate (open loop), until a request count, a duration or SIGINT / SIGTERM, with a progress line on
stderr."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from .client import RequestRecord, send
from .workload import RequestShape, poisson_gaps


@dataclass(frozen=True)
class Target:
    """Where requests go: the OpenAI base URL (ending in /v1), the key and the model."""

    base_url: str
    api_key: str
    model: str
    chat: bool = True
    timeout_s: float = 600.0
    ca_bundle: str | None = None

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + ("/chat/completions" if self.chat else "/completions")


@dataclass(frozen=True)
class Load:
    """How much: `concurrency` requests in flight, or `rate` arrivals per second; stop after `requests`
    requests or `duration_s` seconds (in-flight requests are waited for)."""

    concurrency: int | None = None
    rate: float | None = None
    requests: int | None = None
    duration_s: float | None = None


class Progress:
    """One line on stderr, rewritten: done, failed, in flight, elapsed."""

    def __init__(self, enabled: bool, total: int | None, duration_s: float | None):
        self.enabled, self.total, self.duration_s = enabled, total, duration_s
        self.done = self.failed = self.in_flight = 0
        self.started = time.perf_counter()

    def update(self, force: bool = False) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        goal = f"/{self.total}" if self.total else ""
        limit = f"/{self.duration_s:g}" if self.duration_s else ""
        sys.stderr.write(
            f"\r[bench] {self.done}{goal} done, {self.failed} failed, {self.in_flight} in flight, "
            f"{elapsed:.1f}{limit} s "
        )
        if force:
            sys.stderr.write("\n")
        sys.stderr.flush()


async def _closed_loop(
    client: httpx.AsyncClient,
    target: Target,
    shapes: Iterator[RequestShape],
    load: Load,
    *,
    progress: Progress,
    records: list[RequestRecord],
    clock_zero: float,
    stop_at: float | None,
    stopping: asyncio.Event,
) -> None:
    issued = itertools.count()

    async def worker() -> None:
        while True:
            if load.requests is not None and next(issued) >= load.requests:
                return
            if _stop_now(stopping, stop_at):
                return
            progress.in_flight += 1
            record = await send(
                client, target.url, next(shapes), model=target.model, chat=target.chat, clock_zero=clock_zero
            )
            progress.in_flight -= 1
            _count(record, records, progress)

    await asyncio.gather(*(worker() for _ in range(load.concurrency or 1)))


async def _open_loop(
    client: httpx.AsyncClient,
    target: Target,
    shapes: Iterator[RequestShape],
    load: Load,
    *,
    progress: Progress,
    records: list[RequestRecord],
    clock_zero: float,
    stop_at: float | None,
    stopping: asyncio.Event,
) -> None:
    tasks: list[asyncio.Task[None]] = []
    gaps = poisson_gaps(load.rate or 1.0)

    async def one(shape: RequestShape) -> None:
        progress.in_flight += 1
        record = await send(
            client, target.url, shape, model=target.model, chat=target.chat, clock_zero=clock_zero
        )
        progress.in_flight -= 1
        _count(record, records, progress)

    for index in itertools.count():
        if load.requests is not None and index >= load.requests:
            break
        if _stop_now(stopping, stop_at):
            break
        tasks.append(asyncio.create_task(one(next(shapes))))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), next(gaps))
    await asyncio.gather(*tasks)


def _stop_now(stopping: asyncio.Event, stop_at: float | None) -> bool:
    """Whether to send no more requests: a signal came, or the duration is over."""
    return stopping.is_set() or (stop_at is not None and time.perf_counter() >= stop_at)


def _count(record: RequestRecord, records: list[RequestRecord], progress: Progress) -> None:
    records.append(record)
    progress.done += 1
    progress.failed += 0 if record.ok else 1
    progress.update()


async def _run(
    target: Target, shapes: Iterator[RequestShape], load: Load, show_progress: bool
) -> tuple[list[RequestRecord], float]:
    records: list[RequestRecord] = []
    progress = Progress(show_progress, load.requests, load.duration_s)
    in_flight = load.concurrency or 256
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    timeout = httpx.Timeout(target.timeout_s, connect=10.0)
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    verify: str | bool = target.ca_bundle or True
    # SIGINT / SIGTERM end the run as its limit would: no new requests, those in flight finish, and the
    # report covers what was sent (a run alongside another job is stopped when that job ends).
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers, verify=verify) as client:
        clock_zero = time.perf_counter()
        stop_at = clock_zero + load.duration_s if load.duration_s else None
        loop = _closed_loop if load.concurrency else _open_loop
        await loop(
            client,
            target,
            shapes,
            load,
            progress=progress,
            records=records,
            clock_zero=clock_zero,
            stop_at=stop_at,
            stopping=stopping,
        )
        wall = time.perf_counter() - clock_zero
    progress.update(force=True)
    records.sort(key=lambda r: r.started)
    return records, wall


def run(
    target: Target, shapes: Iterator[RequestShape], load: Load, show_progress: bool = True
) -> tuple[list[RequestRecord], float]:
    """(records, wall-clock seconds) of one run."""
    return asyncio.run(_run(target, shapes, load, show_progress))
