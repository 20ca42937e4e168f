"""Helpers for the Events API tests: configs, a round-robin proxy, a runtime on a fresh listener."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from gridtest import T1, T2, GridbotProcess, wait_until

from gridbot.config import Config, EventsConfig, TeamConfig, replace
from gridbot.runtime import Runtime
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator
from gridbot.testing.events_sender import EventsSender
from gridbot.testing.harness import config_for

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # a signing secret of Slack's shape (32 hex-ish chars)
OTHER_SECRET = "0123456789abcdef0123456789abcdef"
PATH = "/slack/events"
# Slack's retry schedule, a hundred times faster: about at once, 0.6 s, 3 s.
SCALE = 0.01


def http_config(
    sim: GridSimulator,
    teams: tuple[str, ...] = (T1, T2),
    *,
    secret: str = SECRET,
    events: Mapping[str, Any] | None = None,
    plugins: tuple[str, ...] = ("echo",),
    **kwargs: Any,
) -> Config:
    """Every team in ``teams`` over the Events API, one app (one signing secret), port 0."""
    base = config_for(sim, {}, plugins=plugins, **kwargs)
    configured = tuple(
        TeamConfig(
            transport="http",
            bot_token=Secret(inst.bot_token),
            signing_secret=Secret(secret),
            name=inst.team,
        )
        for app in sim.topology.apps
        for inst in app.installations
        if inst.team in teams
    )
    return replace(base, teams=configured, events=EventsConfig(port=0, **(events or {})))


@contextlib.asynccontextmanager
async def http_runtime(config: Config, **kwargs: Any) -> AsyncIterator[tuple[Runtime, str]]:
    """The runtime in-process, its listener up and every team connected; yields it and its URL."""
    async with Runtime(config, **kwargs) as rt:
        assert rt.events is not None and rt.supervisor is not None
        sup = rt.supervisor
        count = len(config.teams)
        await wait_until(lambda: len(sup.connected()) == count, 10, "http teams connected")
        yield rt, f"http://127.0.0.1:{rt.events.port}{PATH}"


def sender(url: str, **kwargs: Any) -> EventsSender:
    return EventsSender(url, SECRET, **{"scale": SCALE, **kwargs})


def listening_port(proc: GridbotProcess) -> int | None:
    """The events port a `gridbot run` process bound (from its events.listening log line)."""
    for line in proc.events():
        if line.get("event") == "events.listening":
            return int(line["port"])
    return None


@dataclass
class Proxy:
    """A round-robin load balancer in front of the replicas, as a few lines of aiohttp.

    Each request goes to the next backend that is up. A backend that refuses the connection is
    taken out and the request tried on the next (nothing was sent yet); one that fails with the
    request on it is taken out and the client gets 502 (as nginx does for a POST). ``lose`` lists
    request numbers whose answer is replaced by a 502 after the backend answered: the ack is lost
    on the way, and Slack retries.
    """

    backends: list[str]
    lose: set[int] = field(default_factory=set)
    # (request number, backend, status, event_id): what each backend answered
    served: list[tuple[int, str, int, str | None]] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    inflight: dict[str, int] = field(default_factory=dict)  # requests a backend has not answered yet
    _count: itertools.count[int] = field(default_factory=itertools.count)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    async def handle(self, request: web.Request) -> web.Response:
        number = next(self._count)
        body = await request.read()
        event_id = orjson.loads(body).get("event_id") if body.startswith(b"{") else None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        while True:
            up = [b for b in self.backends if b not in self.down]
            if not up:
                return web.Response(status=502)
            backend = up[next(self._turn) % len(up)]
            self.inflight[backend] = self.inflight.get(backend, 0) + 1
            try:
                async with self.session.post(backend + request.path, data=body, headers=headers) as answer:
                    status, payload = answer.status, await answer.read()
            except aiohttp.ClientConnectorError:
                self.down.add(backend)  # nothing sent: the next backend may take it
                continue
            except aiohttp.ClientError:
                self.down.add(backend)
                return web.Response(status=502)
            finally:
                self.inflight[backend] -= 1
            self.served.append((number, backend, status, event_id))
            return web.Response(status=502 if number in self.lose else status, body=payload)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        from gridtest import serving

        app = web.Application()
        app.router.add_post(PATH, self.handle)
        async with aiohttp.ClientSession() as self.session, serving(app) as url:
            yield url + PATH
