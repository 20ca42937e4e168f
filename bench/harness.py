"""The processes a benchmark runs (frame server, workers), and the small statistics it reports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from .frameserver import team_id

REDIS_URL = os.environ.get("GRIDBOT_BENCH_REDIS", "redis://127.0.0.1:6379/0")


class BenchError(RuntimeError):
    """A run that did not do what it must (e.g. a message handled twice): no figure is printed."""


class FrameServer:
    """``python -m bench.frameserver`` as a child process; ``async with`` starts and stops it."""

    def __init__(self, teams: int, channels: dict[str, Sequence[int]]) -> None:
        self.args = ["--teams", str(teams)]
        for name, members in channels.items():
            self.args += ["--channel", f"{name}={','.join(map(str, members))}"]
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FrameServer:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.frameserver", *self.args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.port = int((await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode())
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()
        if self.proc is not None:
            await _end(self.proc)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def flood(self, **spec: Any) -> dict[str, Any]:
        assert self.session is not None
        timeout = aiohttp.ClientTimeout(total=None)
        async with self.session.post(
            f"http://127.0.0.1:{self.port}/bench/flood", json=spec, timeout=timeout
        ) as response:
            result: dict[str, Any] = await response.json()
            return result

    async def stats(self) -> dict[str, Any]:
        assert self.session is not None
        async with self.session.get(f"http://127.0.0.1:{self.port}/bench/stats") as response:
            result: dict[str, Any] = await response.json()
            return result


class Worker:
    """``python -m bench.worker SPEC`` as a child process, one JSON line per command."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}

    async def start(self, timeout: float = 120) -> Worker:
        self.proc = await asyncio.create_subprocess_exec(
            *_profiled(self.spec["mode"]), sys.executable, "-m", "bench.worker", json.dumps(self.spec),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 26,
        )  # fmt: skip
        self.ready = await self._line(timeout)
        return self

    async def _line(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        while line and not line.startswith(b"{"):  # py-spy's own chatter, when profiling
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise BenchError(f"worker {self.spec['mode']} exited with {await self.proc.wait()}")
        result: dict[str, Any] = json.loads(line)
        return result

    async def ask(self, command: str, timeout: float = 120) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._line(timeout)

    async def stop(self) -> dict[str, Any]:
        try:
            return await self.ask("stop", timeout=60)
        finally:
            await self.close()

    async def close(self) -> None:
        if self.proc is not None:
            await _end(self.proc)


def _profiled(mode: str) -> list[str]:
    """With GRIDBOT_BENCH_PROFILE=DIR, each worker runs under py-spy, writing DIR/<mode>-<pid>.txt
    (collapsed stacks, idle samples left out): the profiles that guided the hot path's changes."""
    where = os.environ.get("GRIDBOT_BENCH_PROFILE")
    if not where:
        return []
    os.makedirs(where, exist_ok=True)
    out = os.path.join(where, f"{mode}-{os.getpid()}-{uuid.uuid4().hex[:6]}.txt")
    spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return [spy, "record", "--format", "raw", "--rate", "1000", "--output", out, "--"]


async def _end(proc: asyncio.subprocess.Process) -> None:
    """Close stdin (the polite stop), then terminate, then kill: never leave a child behind."""
    if proc.returncode is None and proc.stdin is not None:
        with contextlib.suppress(Exception):
            proc.stdin.close()
    for action in (None, proc.terminate, proc.kill):
        if proc.returncode is not None:
            return
        if action is not None:
            with contextlib.suppress(ProcessLookupError):
                action()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 10)


async def wait_for(probe: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def spec(mode: str, server: FrameServer, teams: Sequence[int], **extra: Any) -> dict[str, Any]:
    return {"mode": mode, "api_url": server.api_url, "teams": [team_id(t) for t in teams], **extra}


def run_prefix() -> str:
    return f"gridbot-bench:{uuid.uuid4().hex[:10]}"


async def drop_keys(prefix: str) -> None:
    """Delete one run's keys (and only those: the Redis is shared)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
