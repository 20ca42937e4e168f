"""The ``http`` bench: one signed Events API request stream into gridbot, slack_bolt and a floor.

The same stream (``bench.http_load``: 1,000 requests/s by default, one message each, one
``event_id`` each, over 16 keep-alive connections; the same bodies for every run of a round) goes
to gridbot's HTTP transport (with Redis dedup: every delivery is claimed in Redis before its 200)
and to slack_bolt's ``AsyncApp`` behind its aiohttp adapter (no dedup), to the floor
(``bench.http_floor``: a bare asyncio protocol that reads each request and answers 200, no
verification, JSON, Redis or logging), and to the lean server (``bench.http_lean``: the floor plus
the contract's own work, signature, JSON, a batched Redis claim, the 200 after it and a no-op
handler, in protocol callbacks and nothing else), each in a fresh process, the four modes
alternating run by run (forwards, then backwards). The floor is what any Python asyncio HTTP
server pays per request on this machine; what each side costs above it is printed too, with how
far gridbot's above-floor work would have to shrink for the 3x target. The lean server is the
ceiling: bolt / lean is the most any Python implementation of the contract on this event loop can
reach. Figures: the measured process's CPU time
per event over the stream (user + system; the system share is printed per run), and the ack
latency Slack would see (request written to answer read), p50 and p99; each ratio is the median
of the rounds' ratios. A run in which a message was not answered 2xx, or (gridbot) handled other
than once, fails instead of printing a figure.
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
MODES = ("bolt", "gridbot", "floor", "lean")


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
    """One measured process of ``mode`` under the stream named ``tag``: the runs of a round get
    the same tag, so the same request bodies (each run claims under a key prefix of its own)."""
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
    return {"cpu_us": cpu_us, "sys_us": sys_us, **result}


async def _settled(worker: Worker, count: int) -> bool:
    stats = await worker.ask("stats")
    return bool(stats["count"] >= count and stats["backlog"] == 0)


async def http(opts: Any) -> list[Any]:
    from .suite import Row

    messages = int(opts.rate * opts.duration)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    async with FrameServer(1, {}) as server:
        for n in range(opts.runs):
            tag = f"p{n}{uuid.uuid4().hex[:6]}"  # the round's stream
            for mode in MODES if n % 2 == 0 else reversed(MODES):
                runs[mode].append(await one_run(server, mode, messages, opts.rate, tag))
            bolt, grid, floor, lean = (runs[m][-1]["cpu_us"] for m in MODES)
            print(f"  http round {n + 1}: bolt / gridbot CPU per event {bolt / grid:.2f}x "
                  f"(bolt / lean {bolt / lean:.2f}x); above the floor ({floor:.0f} us) "
                  f"{bolt - floor:.0f} / {grid - floor:.0f} us = {_above(bolt, grid, floor):.2f}x",
                  file=sys.stderr, flush=True)  # fmt: skip
    cpu = {m: median([r["cpu_us"] for r in runs[m]]) for m in MODES}
    p50 = {m: median([r["p50_ms"] for r in runs[m]]) for m in MODES}
    p99 = {m: median([r["p99_ms"] for r in runs[m]]) for m in MODES}
    sys_share = {m: median([r["sys_us"] / r["cpu_us"] for r in runs[m]]) * 100 for m in MODES}
    rounds = list(zip(*(runs[m] for m in MODES), strict=True))
    ratio = median([b["cpu_us"] / g["cpu_us"] for b, g, _, _ in rounds])
    ceiling = median([b["cpu_us"] / le["cpu_us"] for b, _, _, le in rounds])
    above = median([_above(b["cpu_us"], g["cpu_us"], f["cpu_us"]) for b, g, f, _ in rounds])
    # For bolt / gridbot >= 3 gridbot may spend bolt / 3 an event, the floor included.
    allowed = cpu["bolt"] / 3 - cpu["floor"]
    grid_above = cpu["gridbot"] - cpu["floor"]
    rate = opts.rate
    return [
        Row("http", "slack_bolt AsyncApp: CPU per event", cpu["bolt"], "us"),
        Row("http", "gridbot, Redis dedup: CPU per event", cpu["gridbot"], "us"),
        Row("http", "  bolt / gridbot CPU per event", ratio, "x", ">= 3", ratio >= 3),
        Row("http", "floor, bare asyncio: CPU per event", cpu["floor"], "us"),
        Row("http", "  kernel share: bolt", sys_share["bolt"], "%"),
        Row("http", "  kernel share: gridbot", sys_share["gridbot"], "%"),
        Row("http", "  kernel share: floor", sys_share["floor"], "%"),
        Row("http", "bolt above the floor", cpu["bolt"] - cpu["floor"], "us"),
        Row("http", "gridbot above the floor", grid_above, "us"),
        Row("http", "  bolt / gridbot above the floor", above, "x"),
        Row("http", "  gridbot above floor allowed for 3x", allowed, "us"),
        Row("http", "  that / gridbot above floor now", allowed / grid_above, "x"),
        Row("http", "lean (the contract, nothing else): CPU", cpu["lean"], "us"),
        Row("http", "  bolt / lean CPU per event (ceiling)", ceiling, "x"),
        Row("http", "  gridbot / lean CPU per event", cpu["gridbot"] / cpu["lean"], "x"),
        Row("http", f"slack_bolt ack p50 / p99 @ {rate}/s", p50["bolt"], "ms"),
        Row("http", "  p99", p99["bolt"], "ms"),
        Row("http", f"gridbot ack p50 @ {rate}/s", p50["gridbot"], "ms"),
        Row("http", f"gridbot ack p99 @ {rate}/s", p99["gridbot"], "ms", "<= 5", p99["gridbot"] <= 5),
        Row("http", f"floor ack p50 / p99 @ {rate}/s", p50["floor"], "ms"),
        Row("http", "  p99", p99["floor"], "ms"),
        Row("http", f"lean ack p50 / p99 @ {rate}/s", p50["lean"], "ms"),
        Row("http", "  p99", p99["lean"], "ms"),
    ]


def _above(bolt: float, grid: float, floor: float) -> float:
    """bolt's CPU per event above the floor over gridbot's (inf if gridbot is at the floor)."""
    return (bolt - floor) / (grid - floor) if grid > floor else float("inf")
