"""One measured process: ``python -m bench.worker '<json spec>'``, driven over stdin/stdout.

It connects the spec's teams to the frame server, prints ``{"ready": ...}``, then answers one JSON
line per command read from stdin: ``stats`` (progress), ``idle <seconds>`` (CPU and RSS over a
quiet window), ``stop`` (shut down, final figures). Modes:

* ``parse``: gridbot's transports (websocket read, orjson, normalise) into a sink that counts
  unique messages: no store, no dispatch. The ceiling every other mode is compared with.
* ``naive``: the same transports, then one awaited store decision per delivery.
* ``memory`` / ``redis``: the real :class:`gridbot.runtime.Runtime` with a no-op plugin handler.
* ``bolt``: slack_bolt's ``AsyncApp`` over Socket Mode (aiohttp adapter), a no-op listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from gridbot import logs
from gridbot.config import Config, PluginsConfig, RedisConfig, RuntimeConfig, SlackConfig, TeamConfig
from gridbot.context import Context
from gridbot.events import Event, normalise
from gridbot.plugins import Plugin
from gridbot.runtime import Runtime, tune_gc
from gridbot.secrets import Secret
from gridbot.slack import SlackClients
from gridbot.store import Decision, MemoryStore, Outcome, RedisStore, Store
from gridbot.supervisor import Supervisor
from gridbot.transport.rtm import RtmLink

from .frameserver import APP_TOKEN, bot_token

# The store calls a delivery can cause (leases and plugin storage are not on that path).
_DECISION_CALLS = ("decide", "decide_many", "claim", "claim_many", "elect", "election", "takeover", "alive")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Tally:
    """What the measured pipeline did: handler starts, their times, and latencies."""

    def __init__(self, latency: bool) -> None:
        self.count = 0
        self.seen: set[str] = set()
        self.first = 0.0
        self.last = 0.0
        self.cpu_first = 0.0
        self.latency = latency
        self.added: list[float] = []

    def hit(self, key: str, raw: Any = None) -> None:
        now = time.perf_counter()
        self.count += 1
        self.seen.add(key)
        if not self.first:
            self.first = now
            self.cpu_first = cpu_seconds()
        self.last = now
        if self.latency and raw is not None:
            received = raw.get("_bench_rx")
            if received is not None:
                self.added.append(now - received)


def counting(store: Store) -> tuple[Store, dict[str, int]]:
    """Count the store round trips the delivery path makes (each call is one round trip)."""
    calls: dict[str, int] = {name: 0 for name in _DECISION_CALLS}
    for name in _DECISION_CALLS:
        method = getattr(store, name, None)
        if method is None:
            continue

        def wrap(method: Any = method, name: str = name) -> Any:
            async def counted(*args: Any, **kwargs: Any) -> Any:
                calls[name] += 1
                return await method(*args, **kwargs)

            return counted

        setattr(store, name, wrap())
    return store, calls


def stamp_receipt() -> None:
    """Record when each RTM frame reached gridbot (after the websocket read and JSON parse)."""
    original = RtmLink.on_frame

    async def on_frame(self: RtmLink, sock: Any, frame: dict[str, Any]) -> None:
        frame["_bench_rx"] = time.perf_counter()
        await original(self, sock, frame)

    RtmLink.on_frame = on_frame  # type: ignore[method-assign]


def make_config(spec: dict[str, Any]) -> Config:
    teams = tuple(
        TeamConfig(
            transport=spec.get("transport", "rtm"),
            bot_token=Secret(bot_token(team)),
            app_token=Secret(APP_TOKEN) if spec.get("transport") == "socket_mode" else None,
            name=team,
        )
        for team in spec["teams"]
    )
    url = spec.get("redis_url")
    return Config(
        slack=SlackConfig(api_url=spec["api_url"]),
        redis=RedisConfig(url=Secret(url) if url else None, key_prefix=spec.get("prefix", "bench")),
        teams=teams,
        plugins=PluginsConfig(enabled=()),
        runtime=RuntimeConfig(**spec.get("runtime", {})),
    )


class Worker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.mode: str = spec["mode"]
        self.config = make_config(spec)
        self.tally = Tally(bool(spec.get("latency")))
        self.calls: dict[str, int] = {}
        self.deliveries = 0
        self.store: Store | None = None
        self.runtime: Runtime | None = None
        self.supervisor: Supervisor | None = None
        self.clients: SlackClients | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.bolt: Any = None
        self.backlog_fn = lambda: 0
        self.deliveries_fn = lambda: self.deliveries

    # -- the pipelines -------------------------------------------------------------------------

    def _store(self) -> Store:
        if self.config.redis.url is None:
            return MemoryStore()
        return RedisStore.from_url(self.config.redis.url.get(), key_prefix=self.config.redis.key_prefix)

    async def start(self) -> None:
        if self.mode == "bolt":
            await self._start_bolt()
            return
        if self.spec.get("latency"):
            stamp_receipt()
        self.store, self.calls = counting(self._store())
        if self.mode in ("parse", "naive"):
            self.clients = SlackClients(self.config.slack.api_url)
            intake = _Normalising(self._parsed if self.mode == "parse" else self._queued)
            self.supervisor = Supervisor(
                self.clients, self.store, intake, self.config.runtime, instance_id=f"bench-{os.getpid()}"
            )
            if self.mode == "naive":
                self.queue: deque[Event] = deque()
                self.wake = asyncio.Event()
                self.tasks.append(asyncio.create_task(self._naive_worker(), name="bench:naive"))
                self.backlog_fn = lambda: len(self.queue)
            self.supervisor.start(self.config.teams)
            return
        plugin = Plugin("bench")
        tally = self.tally

        @plugin.event("message")
        async def noop(ctx: Context) -> None:
            tally.hit(f"{ctx.event.channel}:{ctx.event.ts}", ctx.event.raw)

        self.runtime = Runtime(self.config, store=self.store, plugins=[plugin])
        await self.runtime.start()
        assert self.runtime.dedup is not None and self.runtime.dispatcher is not None
        dedup, dispatcher, metrics = self.runtime.dedup, self.runtime.dispatcher, self.runtime.metrics
        self.deliveries_fn = lambda: sum(metrics.events.values())  # every delivery, joined or not
        self.backlog_fn = lambda: dedup.backlog + dispatcher.running
        self.supervisor = self.runtime.supervisor

    def _parsed(self, event: Event) -> None:
        self.deliveries += 1
        key = f"{event.channel}:{event.ts}"
        if key not in self.tally.seen:
            self.tally.hit(key, event.raw)

    def _queued(self, event: Event) -> None:
        self.deliveries += 1
        self.queue.append(event)
        self.wake.set()

    async def _naive_worker(self) -> None:
        """The design the issue compares against: await one store decision per delivery."""
        assert self.store is not None
        store = self.store
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            event = self.queue.popleft()
            assert event.channel is not None and event.dedup_key is not None
            decision: Decision = await store.decide(event.channel, event.dedup_key, (event.team_id,))
            if decision.outcome is Outcome.UNELECTED:
                await store.elect(event.channel, min(self.spec["teams"]), self.spec["teams"])
                decision = await store.decide(event.channel, event.dedup_key, (event.team_id,))
            if decision.outcome is Outcome.HANDLED:
                self.tally.hit(f"{event.channel}:{event.ts}", event.raw)

    async def _start_bolt(self) -> None:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
        from slack_bolt.async_app import AsyncApp
        from slack_sdk.web.async_client import AsyncWebClient

        team = self.spec["teams"][0]
        client = AsyncWebClient(token=bot_token(team), base_url=self.spec["api_url"])
        app = AsyncApp(client=client, process_before_response=False)
        tally = self.tally

        @app.event("message")
        async def noop(event: dict[str, Any]) -> None:
            tally.hit(f"{event.get('channel')}:{event.get('ts')}")

        handler = AsyncSocketModeHandler(app, APP_TOKEN)
        await handler.connect_async()
        self.bolt = handler

    # -- readiness and commands ----------------------------------------------------------------

    async def wait_ready(self) -> None:
        if self.mode == "bolt":
            return
        assert self.supervisor is not None
        sup = self.supervisor
        want = len(self.spec["teams"])
        while len(sup.connected()) < want:  # noqa: ASYNC110 (no event to wait on: poll, cheaply)
            await asyncio.sleep(0.02)

    def stats(self) -> dict[str, Any]:
        return {
            "count": self.tally.count,
            "unique": len(self.tally.seen),
            "first": self.tally.first,
            "last": self.tally.last,
            "backlog": self.backlog_fn(),
            "deliveries": self.deliveries_fn(),
            "cpu_s": cpu_seconds(),
            "cpu_first": self.tally.cpu_first,
        }

    async def idle(self, seconds: float) -> dict[str, Any]:
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu1, t1 = cpu_seconds(), time.perf_counter()
        return {"cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0), "rss_mb": rss_mb()}

    async def stop(self) -> dict[str, Any]:
        result = self.stats()
        result["calls"] = {k: v for k, v in self.calls.items() if v}
        result["added"] = self.tally.added
        result["rss_mb"] = rss_mb()
        if self.spec.get("report_keys"):
            result["keys"] = sorted(self.tally.seen)
        if self.runtime is not None:
            assert self.runtime.dedup is not None
            result["counters"] = vars(self.runtime.dedup.counters)
            await self.runtime.stop()
        elif self.supervisor is not None:
            await self.supervisor.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.clients is not None:
            await self.clients.close()
        if self.bolt is not None:
            await self.bolt.close_async()
        if self.store is not None:
            await self.store.close()
        return result


def emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def main(argv: Sequence[str]) -> None:
    spec = json.loads(argv[0])
    # Every mode runs with the daemon's process settings (gridbot run applies them the same way).
    tune_gc(int(os.environ.get("GRIDBOT_BENCH_GC", RuntimeConfig().gc_threshold)))
    # Logs as in production (JSON at info), written nowhere so they cost what they cost.
    devnull = open(os.devnull, "w")  # noqa: ASYNC230 (once, before anything runs)
    logs.configure(spec.get("log_level", "info"), stream=devnull, json=True)
    worker = Worker(spec)
    started = time.perf_counter()
    await worker.start()
    await worker.wait_ready()
    emit({"ready": True, "connect_s": time.perf_counter() - started, "rss_mb": rss_mb()})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "stop":
            emit(await worker.stop())
            return
        if line == "stats":
            emit(worker.stats())
        elif line.startswith("idle"):
            emit(await worker.idle(float(line.split()[1])))


class _Normalising:
    """The ``parse`` and ``naive`` pipelines' intake: every delivery normalised and handed on."""

    def __init__(self, take: Callable[[Event], None]) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self._take = take

    def offer(
        self,
        frame: dict[str, Any],
        team_id: str,
        enterprise_id: str | None,
        covers: tuple[str, ...],
        event_id: str | None = None,
    ) -> None:
        self._take(normalise(frame, team_id=team_id, enterprise_id=enterprise_id, event_id=event_id))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1:]))

