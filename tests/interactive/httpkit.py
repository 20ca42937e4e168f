"""Interactions over HTTP for the end-to-end tests: two runtimes behind one request URL.

The request URL is a round-robin balancer (a few lines of aiohttp) in front of the runtimes'
``[events]`` listeners, so that the same payload POSTed twice (``duplicate_next``: a balancer's
retry, a duplicate) reaches both runtimes, which share one real Redis.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from gridtest import serving, wait_until
from interactive.kit import HTTP

from gridbot.runtime import Runtime
from gridbot.testing.harness import config_for, signing_secret
from gridbot.testing.simulator import GridSimulator

APP = "A0GRIDBOT1"


@dataclass
class Balancer:
    """Each request to the next backend in turn; ``served`` records which backend took each.

    ``retry_next``: the next request's answer is lost on its way back from the backend that
    handled it, and the balancer retries it on the next backend, whose answer it returns (what
    any balancer that retries a failed upstream does).
    """

    backends: list[str]
    served: list[str] = field(default_factory=list)
    retry_next: bool = False
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        if self.retry_next:
            self.retry_next = False
            await self._forward(body, headers)  # handled there; the answer never comes back
        status, answer, content_type = await self._forward(body, headers)
        return web.Response(status=status, body=answer, headers=_typed(content_type))

    async def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str | None]:
        backend = self.backends[next(self._turn) % len(self.backends)]
        async with self.session.post(backend, data=body, headers=headers) as response:
            answer = await response.read()
            self.served.append(backend)
            return response.status, answer, response.headers.get("Content-Type")

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_post("/slack/events", self.handle)
        async with aiohttp.ClientSession() as self.session, serving(app) as url:
            yield url + "/slack/events"


def _typed(content_type: str | None) -> dict[str, str]:
    return {"Content-Type": content_type} if content_type else {}


@contextlib.asynccontextmanager
async def behind_a_balancer(
    sim: GridSimulator, redis_url: str, prefix: str
) -> AsyncIterator[tuple[list[Runtime], Balancer]]:
    """Two runtimes of one deployment (same config, one Redis), each with its own listener, and
    the app's request URL the balancer in front of them."""
    config = config_for(sim, HTTP, redis_url=redis_url, key_prefix=prefix, plugins=("interactive.kit",))
    runtimes = [Runtime(config, instance_id=f"rt{n}") for n in range(2)]
    try:
        for rt in runtimes:
            await rt.start()
        for rt in runtimes:
            sup = rt.supervisor
            assert sup is not None
            await wait_until(lambda s=sup: len(s.connected()) == len(config.teams), 10, "teams connected")
        urls = [f"http://127.0.0.1:{rt.events.port}/slack/events" for rt in runtimes if rt.events]
        balancer = Balancer(urls)
        async with balancer.serving() as url:
            await sim.http.subscribe(APP, url, signing_secret(APP))
            yield runtimes, balancer
    finally:
        for rt in runtimes:
            await rt.stop()
