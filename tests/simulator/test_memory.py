"""Bounded memory, unbounded counts.

A standalone ``gridbot simulate`` held 1.1 GB after about 400,000 messages (issue 16): every
message, API call, envelope and ack was kept for ever. Now each log keeps its newest records and
the history its newest messages, while ``len()`` of a log still counts everything, so
``Grid.settle`` and ``say()`` never stop counting (issue 15: a deque capped at 10,000 made ``say()``
return early in long tests).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import aiohttp
import orjson
import pytest
from simulator.sim_helpers import ALICE, APP_TOKEN, BOT1, SHARED
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator
from gridbot.testing.pytest_plugin import GridFactory
from gridbot.testing.simulator import RateLimits, Recent


def test_a_log_counts_everything_and_keeps_the_newest() -> None:
    log: Recent[int] = Recent(keep=3)
    for n in range(10):
        log.append(n)
    assert (len(log), log.kept, log.first) == (10, 3, 7)
    assert list(log) == [7, 8, 9] and log[-1] == 9 and log[8] == 8
    assert log[5:] == [7, 8, 9] and log[8:] == [8, 9] and log[10:] == []
    with pytest.raises(IndexError, match="no longer kept"):
        log[2]
    with pytest.raises(IndexError):
        log[10]
    small: Recent[int] = Recent()
    assert small == [] and not small
    small.append(1)
    assert small == [1] and small[0] == 1


async def _post(sim: GridSimulator, client: AsyncWebClient, n: int, start: int) -> None:
    for i in range(start, start + n):
        await sim.post_message(user=ALICE, channel=SHARED, text=f"m{i}")
        await client.chat_postMessage(channel=SHARED, text=f"reply {i}")


async def _drain(ws: aiohttp.ClientWebSocketResponse, *, ack: bool) -> None:
    """Read (and for Socket Mode ack) every frame, keeping nothing: the test measures the server."""
    async for msg in ws:
        if ack and msg.type == aiohttp.WSMsgType.TEXT and '"envelope_id"' in msg.data:
            await ws.send_str(orjson.dumps({"envelope_id": orjson.loads(msg.data)["envelope_id"]}).decode())


async def test_memory_stays_bounded_however_many_messages_pass() -> None:
    limits = RateLimits(enabled=False)  # a flood faster than Slack allows: this is about memory
    async with (
        GridSimulator(keep=200, keep_messages=100, rate_limits=limits) as sim,
        aiohttp.ClientSession() as session,
    ):
        client = AsyncWebClient(token=BOT1, base_url=sim.api_url, session=session)
        rtm = await session.ws_connect((await client.rtm_connect())["url"])
        app = AsyncWebClient(token=APP_TOKEN, base_url=sim.api_url, session=session)
        link = await session.ws_connect((await app.apps_connections_open(app_token=APP_TOKEN))["url"])
        readers = [asyncio.create_task(_drain(rtm, ack=False)), asyncio.create_task(_drain(link, ack=True))]
        tracemalloc.start()
        try:
            await _post(sim, client, 300, 0)  # every log and the history are full
            await sim.wait_for(lambda: len(sim.acks) == len(sim.envelopes_sent) == 600)
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            await _post(sim, client, 600, 300)
            await sim.wait_for(lambda: len(sim.acks) == len(sim.envelopes_sent) == 1800)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
            for task in readers:
                task.cancel()
            await rtm.close()
            await link.close()
        for log in (sim.posted, sim.calls, sim.deliveries, sim.envelopes_sent, sim.acks):
            assert log.kept == 200
        assert (len(sim.posted), len(sim.deliveries), len(sim.acks)) == (900, 1800, 1800)  # counted
        assert sim.stored_messages == 100
        # 1,200 messages more, each of them recorded in several logs at over 1 KB in all:
        # kept for ever they would be well over 1 MB
        assert grown < 100_000, f"memory grew by {grown} bytes"
        history = (await client.conversations_history(channel=SHARED, limit=999))["messages"]
        assert len(history) == 100 and history[0]["text"] == "reply 899"


async def test_say_keeps_counting_past_what_the_simulator_keeps(grid_factory: GridFactory) -> None:
    # eight replies in one channel within seconds: more than Slack's posting limit allows, and
    # not what this test is about
    unlimited = RateLimits(enabled=False)
    grid = await grid_factory(plugins=["echo"], simulator={"keep": 3, "rate_limits": unlimited})
    for n in range(8):  # each say() sees two copies: far past the 3 deliveries kept
        assert (await grid.ask("alice", "C0SHARED1", f"echo {n}")).text == str(n)
    assert len(grid.sim.deliveries) >= 16 and grid.sim.deliveries.kept == 3
