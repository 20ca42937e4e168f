"""A workspace granted to an org-wide install while gridbot runs is answered in within seconds,
by the ``team_access_granted`` event, not at the next listing (``relist_interval``), on every
process: two Runtimes on one real Redis, the simulator as Slack, over Socket Mode (one process
owns the app's sockets) and over the Events API behind a balancer (every process serves every
workspace, and the grant reaches one of them).

The listing is made an hour apart once the first workspace is served, so only the event can
make the new one answer in time: ignore the event and these tests fail.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from gridtest import serving as serve_app
from gridtest import wait_until
from installs.livekit import serving
from installs.orgkit import (
    ORG_APP,
    ORG_SECRET,
    OWN,
    T1,
    T2,
    answers,
    org_config,
    org_install,
    say,
    sim,
    workspaces,
)

from gridbot.installs import RedisInstallStore
from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator

__all__ = ["sim"]  # the fixture

HOUR = 3600.0
PATH = "/slack/events"


@contextlib.asynccontextmanager
async def balancer(runtimes: list[Runtime]) -> AsyncIterator[str]:
    """Each request to the next replica's Events API listener, in turn (a load balancer)."""
    turn = iter(range(1_000_000))

    async def forward(request: web.Request) -> web.Response:
        rt = runtimes[next(turn) % len(runtimes)]
        assert rt.events is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        url = f"http://127.0.0.1:{rt.events.port}{PATH}"
        async with session.post(url, data=await request.read(), headers=headers) as answer:
            return web.Response(status=answer.status, body=await answer.read())

    app = web.Application()
    app.router.add_post(PATH, forward)
    async with aiohttp.ClientSession() as session, serve_app(app) as url:
        yield url + PATH


@pytest.mark.parametrize("transport", ["socket_mode", "http"])
async def test_a_workspace_granted_while_running_answers_within_seconds_on_every_process(
    sim: GridSimulator, redis_url: str, redis_prefix: str, transport: str
) -> None:
    http = transport == "http"
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    config = org_config(sim, redis_url, redis_prefix, {}, http=http)
    await org_install(sim, store, grant=(T1,))
    async with contextlib.AsyncExitStack() as stack:
        runtimes = [
            await stack.enter_async_context(Runtime(config, instance_id="proc-a")),
            await stack.enter_async_context(Runtime(config, instance_id="proc-b")),
        ]
        await wait_until(lambda: workspaces(runtimes) == [T1], 15, "every process lists Team One")
        await wait_until(lambda: len(serving(runtimes, T1)) == (2 if http else 1), 15, "Team One served")
        if http:  # (only now: a replica verifies the app's requests once it serves a team of it)
            url = await stack.enter_async_context(balancer(runtimes))
            await sim.http.subscribe(ORG_APP, url, ORG_SECRET)
        for rt in runtimes:  # no listing finds Team Two within the test: only the event can
            assert rt.installs is not None
            rt.installs.live.relist_interval = HOUR
        await say(sim, T1, OWN[T1], "one")
        await wait_until(lambda: answers(sim, "one") == [T1], 10, "Team One answers")
        await say(sim, T2, OWN[T2], "before")  # not granted yet: Slack sends it to no app of ours

        granted_at = time.monotonic()
        await sim.org_installs.grant(ORG_APP, T2)
        # Every process serves it (Socket Mode: configures it, the owner of the sockets connects
        # it), the one that did not hear the event too: the store's version told it.
        await wait_until(lambda: workspaces(runtimes) == [T1, T2], 5, "every process lists Team Two")
        listed_s = time.monotonic() - granted_at
        await wait_until(lambda: len(serving(runtimes, T2)) == (2 if http else 1), 5, "Team Two served")
        await say(sim, T2, OWN[T2], "two")
        await wait_until(lambda: answers(sim, "two") == [T2], 5, "Team Two answers, in Team Two")
        answered_s = time.monotonic() - granted_at
        assert answers(sim, "before") == []
        if http:  # each replica answers there: the balancer sends the next message to the other one
            await say(sim, T2, OWN[T2], "two again")
            await wait_until(lambda: answers(sim, "two again") == [T2], 5, "Team Two answers again")
        print(f"\norg-wide grant ({transport}): listed everywhere {listed_s:.2f} s, answered {answered_s:.2f} s")
    await store.close()
