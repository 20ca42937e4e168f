"""Redis goes away and comes back: nothing answered twice, nothing dropped without a word.

The policy (``gridbot/dedup.py``): deliveries read while the store is unreachable wait in a
bounded buffer and are retried with backoff; ``store.unavailable`` is logged (error) once per
outage and ``store.recovered`` once after it; when the buffer is full the oldest delivery is
dropped with an ``event.dropped`` error carrying the running drop count. Each test here starts
its own ``redis-server`` on a free port, kills it (SIGKILL) and starts it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dedup.stagekit import Stage
from gridtest import SHARED, T1, T2, USERS, connected, converse, grid_config, settled, texts, wait_until
from reliability.redis_servers import RedisServer, RedisServers
from structlog.testing import capture_logs

from gridbot.bots import Bots
from gridbot.election import Elector
from gridbot.events import normalise
from gridbot.runtime import Runtime
from gridbot.store import RedisStore
from gridbot.testing import GridSimulator, RateLimits

ONE = "C0ONE0001"  # Team 1 only: one copy per message
UNLIMITED = pytest.mark.parametrize("sim", [{"rate_limits": RateLimits(enabled=False)}], indirect=True, ids=["unlimited"])


@pytest.fixture(params=[True, False], ids=["with-its-data", "empty"])
def redis(request: pytest.FixtureRequest, redis_servers: RedisServers) -> RedisServer:
    """A private Redis; restarted either with its append-only file or with nothing at all."""
    return redis_servers.start(persistent=request.param)


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[GridSimulator]:
    """Slack's rate limits, unless parametrized indirectly with GridSimulator keywords."""
    options = getattr(request, "param", {})
    async with GridSimulator(seed=21, **options) as simulator:
        yield simulator


def named(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def say(sim: GridSimulator, label: str, count: int) -> list[str]:
    """Messages in the shared channel, and one in a channel only Team 1 sees."""
    sent = await converse(sim, label, count)
    await sim.post_message(user=USERS[T1], channel=ONE, text=f"echo {label}-one")
    return [*sent, f"{label}-one"]


@UNLIMITED  # about the dedup buffer draining, not Slack's posting limit (the drain posts in a burst)
async def test_an_outage_buffers_every_delivery_and_the_drain_answers_each_once(
    redis: RedisServer, sim: GridSimulator
) -> None:
    # lease_ttl above the outage: this test is about the dedup buffer, not about leases lapsing
    config = grid_config(sim, {T1: "rtm", T2: "rtm"}, redis_url=redis.url(), lease_ttl=8.0)
    with capture_logs() as logs:
        async with Runtime(config) as rt:
            assert rt.dedup is not None
            dedup = rt.dedup
            await connected(rt, sim, [T1, T2])
            sent = await say(sim, "before", 3)
            await wait_until(lambda: len(sim.posted) == 4, 10, "answers before the outage")
            await settled(rt)

            await asyncio.to_thread(redis.kill)
            during = await say(sim, "during", 6)
            copies = 2 * 6 + 1  # both teams' sockets carry the shared channel
            await wait_until(lambda: dedup.backlog >= copies, 10, "every copy buffered")
            retries = dedup.counters.store_errors
            await wait_until(lambda: dedup.counters.store_errors >= retries + 2, 10, "two more retries")
            assert len(sim.posted) == 4  # nothing answered while nothing can be decided
            assert not dedup.store_ok

            await asyncio.to_thread(redis.start)
            await wait_until(lambda: len(sim.posted) >= 4 + len(during), 20, "the buffer drained")
            await settled(rt)
            assert texts(sim) == sorted(sent + during)  # each exactly once, none lost
            assert {p.team_id for p in sim.posted} == {T1}  # T1 hosts the channel and stays elected

    unavailable = named(logs, "store.unavailable")
    assert len(unavailable) == 1 and unavailable[0]["log_level"] == "error"  # once per outage
    assert unavailable[0]["buffered"] >= 1
    assert len(named(logs, "store.recovered")) == 1
    assert named(logs, "event.dropped") == []


@UNLIMITED  # about two buffers draining to one answer each, not Slack's posting limit
async def test_two_processes_one_outage_still_one_answer_each(redis: RedisServer, sim: GridSimulator) -> None:
    """One reads both teams over RTM, the other over Socket Mode: every message reaches both.

    Both buffer through the outage; the store's claim decides between them afterwards.
    """
    url = redis.url()
    first = grid_config(sim, {T1: "rtm", T2: "rtm"}, redis_url=url, lease_ttl=8.0)
    second = grid_config(sim, {T1: "socket_mode", T2: "socket_mode"}, redis_url=url, lease_ttl=8.0)
    async with Runtime(first) as a, Runtime(second) as b:
        await connected(a, sim, [T1, T2])
        await connected(b, sim, [T1, T2])
        sent = await say(sim, "before", 4)
        await wait_until(lambda: len(sim.posted) == 5, 10, "answers before the outage")

        await asyncio.to_thread(redis.kill)
        during = await say(sim, "during", 8)
        for rt in (a, b):
            assert rt.dedup is not None
            await wait_until(lambda rt=rt: rt.dedup.counters.store_errors >= 2, 10, "both retrying")
        assert len(sim.posted) == 5
        await asyncio.to_thread(redis.start)
        await wait_until(lambda: len(sim.posted) >= 5 + len(during), 20, "both buffers drained")
        await settled(a)
        await settled(b)
        assert texts(sim) == sorted(sent + during)


async def test_a_full_buffer_drops_the_oldest_with_a_counted_error(redis_servers: RedisServers) -> None:
    """Against a real, stopped Redis: the newest ``max_buffer`` deliveries survive the outage."""
    server = redis_servers.start(persistent=True)
    store = RedisStore.from_url(server.url(), key_prefix="outage")
    handled: list[str] = []
    try:
        await store.elect(SHARED, T1, [T1])
        server.kill()
        elector = Elector(store, installed=lambda: {T1}, client_for=lambda team: None)
        stage = Stage(
            store, elector, lambda e, team, d: handled.append(e.text), bots=Bots(), max_buffer=5
        )
        events = [
            normalise(
                {"type": "message", "channel": SHARED, "ts": f"{n}.000100", "user": "W1", "text": f"m{n}"},
                team_id=T1,
                enterprise_id=None,
            )
            for n in range(8)
        ]
        with capture_logs() as logs:
            worker = asyncio.create_task(stage.run(), name="test:dedup")
            try:
                for event in events:
                    stage.submit(event, (T1,))
                await wait_until(lambda: stage.counters.store_errors >= 1, 15, "the outage noticed")
                dropped = named(logs, "event.dropped")
                assert [(d["ts"], d["dropped_total"], d["log_level"]) for d in dropped] == [
                    ("0.000100", 1, "error"),
                    ("1.000100", 2, "error"),
                    ("2.000100", 3, "error"),
                ]
                assert handled == []
                await asyncio.to_thread(server.start)
                await wait_until(lambda: len(handled) == 5, 20, "the survivors handled")
                assert await stage.wait_idle(5)
            finally:
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)
        assert sorted(handled) == [f"m{n}" for n in range(3, 8)]  # oldest three gone, said so
        assert stage.counters.dropped_overflow == 3
    finally:
        await store.close()


async def test_messages_sent_late_in_an_outage_longer_than_the_lease_are_answered(
    redis_servers: RedisServers, sim: GridSimulator
) -> None:
    """An unreachable store must not close the sockets: RTM never replays what they would miss."""
    redis = redis_servers.start(persistent=True)
    config = grid_config(sim, {T1: "rtm", T2: "rtm"}, redis_url=redis.url(), lease_ttl=1.5)
    async with Runtime(config) as rt:
        await connected(rt, sim, [T1, T2])
        sent = await say(sim, "before", 2)
        await wait_until(lambda: len(sim.posted) == 3, 10, "answers before the outage")
        await asyncio.to_thread(redis.kill)
        await asyncio.sleep(3.0)  # the outage itself is the scenario: 2 lease TTLs long
        sent += await say(sim, "late", 3)
        await asyncio.to_thread(redis.start)
        await wait_until(lambda: len(sim.posted) >= len(sent), 8, "answers to the late messages")
        await settled(rt)
        assert texts(sim) == sorted(sent)
