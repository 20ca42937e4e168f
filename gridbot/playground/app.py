"""The playground: the simulator, the real runtime on it, the observers, and the web page.

Started in this order and stopped in reverse: the log tap (so plugin loading is seen), the Redis
switch (with ``--redis``), the simulator, the runtime, the watcher, the web server.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gridbot.runtime import Runtime
from gridbot.secrets import redact
from gridbot.store.connect import connect
from gridbot.tasks import cancel_and_wait
from gridbot.testing.harness import config_for
from gridbot.testing.simulator import GridSimulator, Topology, default_topology

from . import narrate
from .faults import FaultPanel, lag_control
from .feed import Feed
from .redis_switch import RedisSwitch, relayable, through
from .stories import Stories
from .tap import LogTap
from .watch import Watcher
from .web import LOOPBACK, WILDCARD, build_app

REDIS_CHECK_TIMEOUT = 3.0


class PlaygroundError(Exception):
    """The playground cannot start (Redis does not answer, the port is taken): one line to print."""


def redis_label(url: str) -> str:
    """Where a Redis URL points, without its credentials."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


class Playground:
    def __init__(
        self,
        *,
        plugins: tuple[str, ...] = ("echo", "help"),
        redis_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8765,
        seed: int = 0,
        log_level: str = "info",
        topology: Topology | None = None,
    ) -> None:
        self.topology = topology or default_topology()
        self.names = narrate.Names(self.topology)
        self.feed = Feed()
        self.stories = Stories(lambda story: self.feed.publish("message", story=story))
        self._plugins = plugins
        self._redis_url = redis_url
        self._host = host
        self._port = port
        self._seed = seed
        self._tap = LogTap(self._on_log, log_level)
        self._key_prefix = f"gridbot-playground:{uuid.uuid4().hex[:8]}"
        self._switch: RedisSwitch | None = None
        self._redis_note: str | None = "the playground runs on the in-memory store (start it with --redis)"
        self._sim: GridSimulator | None = None
        self._runtime: Runtime | None = None
        self._faults: FaultPanel | None = None
        self._watcher: Watcher | None = None
        self._watching: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._url = ""

    # -- what the web routes read --------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    @property
    def sim(self) -> GridSimulator:
        assert self._sim is not None, "the playground is not started"
        return self._sim

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "the playground is not started"
        return self._runtime

    @property
    def faults(self) -> FaultPanel:
        assert self._faults is not None, "the playground is not started"
        return self._faults

    @property
    def watcher(self) -> Watcher:
        assert self._watcher is not None, "the playground is not started"
        return self._watcher

    def org(self) -> dict[str, Any]:
        """The org as the page shows it: ids and names, never a token."""
        topo = self.topology
        return {
            "enterprise": {"id": topo.enterprise.id, "name": topo.enterprise.name},
            "teams": [
                {
                    "id": t.id,
                    "name": t.name,
                    "domain": t.domain,
                    "bots": [
                        {"app": b.app.name, "app_id": b.app.id, "bot_user_id": b.installation.bot_user_id}
                        for b in topo.bots_on(t.id)
                    ],
                }
                for t in topo.teams
            ],
            "users": [
                {
                    "id": u.id,
                    "name": u.name,
                    "real_name": u.real_name,
                    "home_team": u.home_team,
                    "teams": u.teams,
                }
                for u in topo.users
            ],
            "conversations": [
                {
                    "id": c.id,
                    "label": self.names.conv(c.id),
                    "kind": c.kind,
                    "teams": c.teams,
                    "host_team": c.host_team,
                    "members": c.members,
                    "bot_teams": c.bot_teams,
                }
                for c in topo.conversations
            ],
            "plugins": [
                {"name": p.name, "handlers": [r.name for r in p.routes]} for p in self.runtime.plugins
            ],
            "store": redis_label(self._redis_url) if self._redis_url else "in-memory",
            "faults": self.faults.available(),
        }

    def state(self) -> dict[str, Any]:
        return self.watcher.state

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to draw itself, then follow the stream from ``seq`` on."""
        return {
            "seq": self.feed.last_seq,
            "org": self.org(),
            "state": self.state(),
            "messages": self.stories.all(),
            "timeline": list(self.feed.timeline),
        }

    async def post(
        self, *, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """Type ``text`` as ``user`` in ``channel``; ValueError (said to the page) when it cannot be."""
        ts = await self.sim.post_message(user=user, channel=channel, text=text, thread_ts=thread_ts)
        stored = self.sim.message(channel, ts) or {}
        source = stored.get("source_team")
        self.stories.posted(
            channel, ts, user=user, text=text, source_team=source if isinstance(source, str) else None
        )
        story = self.stories.get(channel, ts)
        assert story is not None
        return story.to_json()

    # -- observing -----------------------------------------------------------------------------

    def _on_log(self, name: str, level: str, fields: dict[str, Any]) -> None:
        if name == "event.decided":
            self.stories.decided(fields)
            return
        if name == "election.moved" and fields.get("team_id"):
            self.stories.took_over(fields.get("channel") or "", fields.get("previous"), fields.get("team_id"))
        elif name in ("handler.failed", "handler.timeout"):
            self.stories.failed(fields)
        text = narrate.line(name, fields, self.names)
        if text is not None:
            self.feed.note(text, level=level, event=name, channel=fields.get("channel"))

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._tap.install()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        runtime_url = self._redis_url
        if self._redis_url is not None:
            await _check_redis(self._redis_url)
            upstream = relayable(self._redis_url)
            if isinstance(upstream, str):
                self._redis_note = upstream
            else:
                self._redis_note = None
                self._switch = RedisSwitch(upstream)
                await self._switch.start()
                runtime_url = through(self._redis_url, self._switch.port)
        self._sim = GridSimulator(self.topology, seed=self._seed)
        await self._sim.start()
        config = config_for(
            self._sim, redis_url=runtime_url, key_prefix=self._key_prefix, plugins=self._plugins
        )
        self._runtime = Runtime(config)
        await self._runtime.start()
        note = self.feed.note
        self._faults = FaultPanel(
            self._sim,
            self.names,
            note,
            switch=self._switch,
            redis_note=self._redis_note,
            lag=lag_control(self._sim),
        )
        store_kind = "redis" if self._redis_url else "memory"
        self._watcher = Watcher(
            self._sim, self._runtime, self.stories, self.feed, self._faults, self.names, store_kind=store_kind
        )
        await self._watcher.refresh()
        self._watching = asyncio.create_task(self._watcher.run(), name="playground:watcher")
        self._runner = web.AppRunner(
            build_app(self, self._host), handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            raise PlaygroundError(
                f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}"
            ) from None
        port = self._runner.addresses[0][1]
        host = "127.0.0.1" if self._host in WILDCARD else self._host  # where this machine's browser goes
        shown = f"[{host}]" if ":" in host else host
        self._url = f"http://{shown}:{port}/"

    async def stop(self) -> None:
        self.feed.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._watching is not None:
            await cancel_and_wait([self._watching])
            self._watching = None
        if self._switch is not None:
            await self._switch.start()  # a stopped Redis would hold the runtime's drain up
        wrote = self._runtime is not None  # the store was written to only once the runtime ran
        if self._runtime is not None:
            await self._runtime.stop()
            self._runtime = None
        if self._sim is not None:
            await self._sim.stop()
            self._sim = None
        if self._switch is not None:
            await self._switch.stop()
            self._switch = None
        if self._redis_url is not None and wrote:
            await _delete_keys(self._redis_url, self._key_prefix)
        self._tap.remove()

    async def __aenter__(self) -> Playground:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _check_redis(url: str) -> None:
    client = connect(url)
    try:
        async with asyncio.timeout(REDIS_CHECK_TIMEOUT):
            await client.ping()
    except Exception as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        raise PlaygroundError(f"cannot use Redis at {redis_label(url)}: {redact(reason)}") from None
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


async def _delete_keys(url: str, prefix: str) -> None:
    """The playground's keys go with it (never anything outside its own prefix)."""
    client = connect(url)
    try:
        async with asyncio.timeout(5):
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
            if keys:
                await client.delete(*keys)
    except Exception:
        pass  # best effort: Redis may be gone by now
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


def exposed(host: str) -> bool:
    return host not in LOOPBACK
