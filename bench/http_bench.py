"""The ``http`` bench: one signed Events API request stream into gridbot and into slack_bolt.

The same stream (``bench.http_load``: 1,000 requests/s by default, one message each, one
``event_id`` each, over 16 keep-alive connections; the same bodies for both runs of a pair) goes
to gridbot's HTTP transport (with Redis dedup: every delivery is claimed in Redis before its 200)
and to slack_bolt's ``AsyncApp`` behind its aiohttp adapter (no dedup), each in a fresh process,
the two modes alternating run by run. Figures: the measured process's CPU time per event over the
stream (user + system; the system share is printed per run), and the ack latency Slack would see
(request written to answer read), p50 and p99; the CPU ratio is the median of the pairs' ratios.
A run in which a message was not answered 2xx, or (gridbot) handled other than once, fails
instead of printing a figure.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

from .frameserver import team_id
from .harness import (
    REDIS_URL,
    BenchError,
    FrameServer,
    Worker,
    _end,
    _profiled,
    drop_keys,
    median,
    run_prefix,
    wait_for,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
MODES = ("bolt", "gridbot")


class HttpWorker(Worker):
    """``python -m bench.http_worker SPEC`` as a child process."""

    async def start(self, timeout: float = 120) -> HttpWorker:
        self.proc = await asyncio.create_subprocess_exec(
            *_profiled(f"http-{self.spec['mode']}"),
            sys.executable, "-m", "bench.http_worker", json.dumps(self.spec),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self.ready = await self._line(timeout)
        return self


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.http_load", json.dumps(spec), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), spec["messages"] / spec["rate"] + 120)
        result: dict[str, Any] = json.loads(line)
        return result
    finally:
        await _end(proc)


async def one_run(server: FrameServer, mode: str, messages: int, rate: int, tag: str = "") -> dict[str, Any]:
    """One measured process of ``mode`` under the stream named ``tag``: the two runs of a pair
    get the same tag, so the same request bodies (each run claims under a key prefix of its own)."""
    prefix = run_prefix()
    tag = tag or prefix[-10:]
    team = team_id(0)
    spec = {"mode": mode, "api_url": server.api_url, "team": team, "secret": SECRET, "redis_url": REDIS_URL,
            "prefix": prefix}  # fmt: skip
    worker = await HttpWorker(spec).start()
    try:
        port = worker.ready["port"]
        warm = {"host": "127.0.0.1", "port": port, "path": "/slack/events", "secret": SECRET, "team": team,
                "channel": "C0BENCH01", "connections": 16}  # fmt: skip
        # A short warm-up (the first event elects the channel; Bolt's first request calls auth.test).
        await load({**warm, "messages": 200, "rate": 200, "run": f"w{tag}"})
        await wait_for(lambda: _settled(worker, 200), 60, "the warm-up handled")
        before = await worker.ask("stats")
        result = await load({**warm, "messages": messages, "rate": rate, "run": tag, "offset": 10_000})
        await wait_for(lambda: _settled(worker, 200 + messages), 60, f"{messages} handled")
        after = await worker.stop()
    finally:
        await worker.close()
        await drop_keys(prefix)
    handled = after["count"] - before["count"]
    if result["ok"] != messages or handled != messages or after["unique"] != after["count"]:
        raise BenchError(
            f"http/{mode}: {result['ok']} of {messages} answered 2xx ({result['statuses']}), "
            f"{handled} handler runs, {after['count'] - after['unique']} duplicates"
        )
    cpu_us = (after["cpu_s"] - before["cpu_s"]) / messages * 1e6
    sys_us = (after["sys_s"] - before["sys_s"]) / messages * 1e6
    print(f"  http {mode}: {cpu_us:.0f} us CPU/event ({sys_us:.0f} in the kernel), "
          f"ack p50 {result['p50_ms']:.2f} ms, "
          f"p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.1f} ms "
          f"({result['seconds']:.1f} s, waited for a connection {result['waited']}x)",
          file=sys.stderr, flush=True)  # fmt: skip
    return {"cpu_us": cpu_us, **result}


async def _settled(worker: Worker, count: int) -> bool:
    stats = await worker.ask("stats")
    return bool(stats["count"] >= count and stats["backlog"] == 0)


async def http(opts: Any) -> list[Any]:
    from .suite import Row

    messages = int(opts.rate * opts.duration)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    async with FrameServer(1, {}) as server:
        for n in range(opts.runs):
            tag = f"p{n}{uuid.uuid4().hex[:6]}"  # the pair's stream
            for mode in MODES if n % 2 == 0 else reversed(MODES):
                runs[mode].append(await one_run(server, mode, messages, opts.rate, tag))
            bolt, grid = runs["bolt"][-1]["cpu_us"], runs["gridbot"][-1]["cpu_us"]
            print(f"  http pair {n + 1}: bolt / gridbot CPU per event {bolt / grid:.2f}x",
                  file=sys.stderr, flush=True)  # fmt: skip
    cpu = {m: median([r["cpu_us"] for r in runs[m]]) for m in MODES}
    p50 = {m: median([r["p50_ms"] for r in runs[m]]) for m in MODES}
    p99 = {m: median([r["p99_ms"] for r in runs[m]]) for m in MODES}
    ratio = median([b["cpu_us"] / g["cpu_us"] for b, g in zip(runs["bolt"], runs["gridbot"], strict=True)])
    rate = opts.rate
    return [
        Row("http", "slack_bolt AsyncApp: CPU per event", cpu["bolt"], "us"),
        Row("http", "gridbot, Redis dedup: CPU per event", cpu["gridbot"], "us"),
        Row("http", "  bolt / gridbot CPU per event", ratio, "x", ">= 3", ratio >= 3),
        Row("http", f"slack_bolt ack p50 / p99 @ {rate}/s", p50["bolt"], "ms"),
        Row("http", "  p99", p99["bolt"], "ms"),
        Row("http", f"gridbot ack p50 @ {rate}/s", p50["gridbot"], "ms"),
        Row("http", f"gridbot ack p99 @ {rate}/s", p99["gridbot"], "ms", "<= 5", p99["gridbot"] <= 5),
    ]
