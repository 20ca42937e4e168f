"""The measured process of the ``http`` bench: ``python -m bench.http_worker '<json spec>'``.

* ``gridbot``: the real :class:`gridbot.runtime.Runtime` with one ``transport = "http"`` team,
  the Redis store (dedup on), a no-op plugin handler.
* ``bolt``: slack_bolt's ``AsyncApp`` behind its aiohttp adapter (``app.web_app()``, request
  verification on), a no-op listener, no dedup.
* ``floor``: a bare asyncio protocol that reads each request and answers 200
  (:mod:`bench.http_floor`): what every Python asyncio HTTP server pays per request.
* ``lean``: the floor plus the contract's own work (signature, JSON, a batched Redis claim, the
  200 after it, a no-op handler) in protocol callbacks and nothing else (:mod:`bench.http_lean`).

It prints ``{"port": ...}`` once it listens, then answers one JSON line per stdin command:
``stats`` (handler runs, unique messages, CPU seconds so far), ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
from collections.abc import Sequence
from typing import Any

from gridbot import logs
from gridbot.config import (
    Config,
    EventsConfig,
    PluginsConfig,
    RedisConfig,
    RuntimeConfig,
    SlackConfig,
    TeamConfig,
)
from gridbot.context import Context
from gridbot.plugins import Plugin
from gridbot.runtime import Runtime, tune_gc
from gridbot.secrets import Secret

from .frameserver import bot_token
from .http_floor import FloorServer
from .http_lean import LeanServer
from .worker import Tally, cpu_seconds, emit, rss_mb


class HttpWorker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.tally = Tally(latency=False)
        self.runtime: Runtime | None = None
        self.runner: Any = None
        self.floor: FloorServer | None = None
        self.lean: LeanServer | None = None
        self.port = 0

    async def start(self) -> None:
        if self.spec["mode"] == "bolt":
            await self._bolt()
        elif self.spec["mode"] == "lean":
            spec = self.spec
            self.lean = LeanServer(spec["secret"], spec["redis_url"], spec["prefix"], self.tally.hit)
            await self.lean.start()
            self.port = self.lean.port
        elif self.spec["mode"] == "floor":
            self.floor = FloorServer()
            await self.floor.start()
            self.port = self.floor.port
        else:
            await self._gridbot()

    async def _gridbot(self) -> None:
        spec, tally = self.spec, self.tally
        plugin = Plugin("bench")

        @plugin.event("message")
        async def noop(ctx: Context) -> None:
            tally.hit(f"{ctx.event.channel}:{ctx.event.ts}")

        team = TeamConfig(
            transport="http", bot_token=Secret(bot_token(spec["team"])), signing_secret=Secret(spec["secret"])
        )
        config = Config(
            slack=SlackConfig(api_url=spec["api_url"]),
            redis=RedisConfig(url=Secret(spec["redis_url"]), key_prefix=spec["prefix"]),
            teams=(team,),
            plugins=PluginsConfig(enabled=()),
            runtime=RuntimeConfig(),
            events=EventsConfig(port=0, batch_window=spec.get("batch_window", EventsConfig.batch_window)),
        )
        self.runtime = Runtime(config, plugins=[plugin])
        await self.runtime.start()
        assert self.runtime.events is not None and self.runtime.supervisor is not None
        sup = self.runtime.supervisor
        while not sup.connected():  # noqa: ASYNC110 (start-up only)
            await asyncio.sleep(0.02)
        self.port = self.runtime.events.port

    async def _bolt(self) -> None:
        from aiohttp import web
        from slack_bolt.async_app import AsyncApp
        from slack_sdk.web.async_client import AsyncWebClient

        spec, tally = self.spec, self.tally
        client = AsyncWebClient(token=bot_token(spec["team"]), base_url=spec["api_url"])
        app = AsyncApp(client=client, signing_secret=spec["secret"], process_before_response=False)

        @app.event("message")
        async def noop(event: dict[str, Any]) -> None:
            tally.hit(f"{event.get('channel')}:{event.get('ts')}")

        self.runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])

    def stats(self) -> dict[str, Any]:
        backlog = 0
        if (
            self.runtime is not None
            and self.runtime.dedup is not None
            and self.runtime.dispatcher is not None
        ):
            backlog = self.runtime.dedup.backlog + self.runtime.dispatcher.running
        if self.floor is not None:  # it reads no event, so it counts requests (each answered once)
            count = unique = self.floor.count
        else:
            count, unique = self.tally.count, len(self.tally.seen)
        return {
            "count": count,
            "unique": unique,
            "cpu_s": cpu_seconds(),
            "sys_s": resource.getrusage(resource.RUSAGE_SELF).ru_stime,
            "backlog": backlog,
            "rss_mb": rss_mb(),
        }

    async def stop(self) -> dict[str, Any]:
        result = self.stats()
        if self.runtime is not None:
            await self.runtime.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.floor is not None:
            await self.floor.stop()
        if self.lean is not None:
            await self.lean.stop()
        return result


async def main(argv: Sequence[str]) -> None:
    spec = json.loads(argv[0])
    tune_gc(int(os.environ.get("GRIDBOT_BENCH_GC", RuntimeConfig().gc_threshold)))
    devnull = open(os.devnull, "w")  # noqa: ASYNC230 (once, before anything runs)
    logs.configure("info", stream=devnull, json=True)
    worker = HttpWorker(spec)
    await worker.start()
    emit({"ready": True, "port": worker.port})
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


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1:]))
