"""Hostile volume: a flood in one channel must not starve the others, and memory has limits.

Limits are tested as behaviour (what is remembered, what is asked again), not as RSS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dedup.stagekit import Stage
from gridtest import T1, T2, connected, grid_config, settled, wait_until

from gridbot.bots import Bots
from gridbot.directory import TtlCache
from gridbot.election import Elector
from gridbot.events import Event, normalise
from gridbot.runtime import Runtime
from gridbot.store import Decision, MemoryStore
from gridbot.testing import GridSimulator, RateLimits

FLOODED, QUIET = "C0ONE0001", "D0CAROLDM"  # both answered by Team 1's bot, over one socket
FLOOD = 300


async def test_a_flooded_channel_does_not_starve_a_quiet_one() -> None:
    # About fairness between channels under a backlog, not Slack's posting limit.
    async with GridSimulator(seed=8, rate_limits=RateLimits(enabled=False)) as sim:
        # Slow replies and few handler slots: the flood builds a real backlog.
        config = grid_config(sim, {T1: "rtm"}, max_concurrent_handlers=8)
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1])
            sim.set_latency(0.02, ["chat.postMessage"])
            for n in range(FLOOD):
                await sim.post_message(user="W0ALICE01", channel=FLOODED, text=f"echo flood{n}")
            await sim.post_message(user="W0CAROL01", channel=QUIET, text="echo quiet")
            await wait_until(lambda: len(sim.posted) == FLOOD + 1, 60, "every message answered")
            await settled(rt)
            order = [p.channel for p in sim.posted]
            # Fair service answers the quiet channel while most of the flood still waits.
            assert order.index(QUIET) < FLOOD // 2, f"answered after {order.index(QUIET)} flood replies"


class CountingStore(MemoryStore):
    """The in-memory store, recording which event keys reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def decide_many(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[Decision]:
        self.asked.extend(key for _, key, _ in asks)
        return await super().decide_many(asks)


def message(n: int, team: str) -> Event:
    payload = {"type": "message", "channel": "C1", "ts": f"{n}.000100", "user": "W1", "text": f"m{n}"}
    return normalise(payload, team_id=team, enterprise_id=None)


async def test_the_local_dedup_memory_keeps_only_the_newest_keys() -> None:
    """``memory`` bounds what a process remembers; older copies cost a store question."""
    store = CountingStore()
    await store.elect("C1", T1, [T1, T2])
    handled: list[str] = []
    stage = Stage(
        store,
        Elector(store, installed=lambda: {T1, T2}, client_for=lambda team: None),
        lambda event, team, decision: handled.append(event.text),
        bots=Bots(),
        memory=10,
    )
    worker = asyncio.create_task(stage.run(), name="test:dedup")
    try:
        for n in range(30):
            stage.submit(message(n, T1), (T1,))
        await wait_until(lambda: len(handled) == 30, 10, "30 handled")
        assert await stage.wait_idle(5)
        asked = len(store.asked)
        stage.submit(message(29, T2), (T2,))  # recent: answered from local memory
        stage.submit(message(0, T2), (T2,))  # long forgotten locally: the store says duplicate
        await wait_until(lambda: stage.counters.duplicate == 2, 10, "both copies decided")
        assert store.asked[asked:] == [message(0, T2).dedup_key]
        assert len(handled) == 30  # neither copy handled again
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_the_profile_cache_holds_at_most_its_capacity() -> None:
    cache: TtlCache[str] = TtlCache(ttl=600.0, capacity=5)
    loads: list[str] = []

    def loader(key: str):  # type: ignore[no-untyped-def]
        async def load() -> tuple[Sequence[str], str]:
            loads.append(key)
            return (), key.upper()

        return load

    for n in range(20):
        assert await cache.get(f"w{n}", loader(f"w{n}")) == f"W{n}"
    assert [cache.peek(f"w{n}") for n in range(20)].count(None) == 15  # only the newest five kept
    await cache.get("w19", loader("w19"))
    await cache.get("w0", loader("w0"))
    assert loads[20:] == ["w0"]  # the newest was a hit; the oldest had been evicted


async def test_a_flood_of_copies_from_two_teams_is_answered_once_each() -> None:
    """Volume does not loosen exactly-once: 300 shared-channel messages, two sockets, one answer each."""
    # About exactly-once at volume, not Slack's posting limit (300 answers in one channel).
    async with GridSimulator(seed=9, rate_limits=RateLimits(enabled=False)) as sim:
        async with Runtime(grid_config(sim, {T1: "rtm", T2: "rtm"})) as rt:
            await connected(rt, sim, [T1, T2])
            for n in range(FLOOD):
                await sim.post_message(user="W0BOB0001", channel="C0SHARED1", text=f"echo f{n}")
            await wait_until(lambda: len(sim.posted) >= FLOOD, 60, "the flood answered")
            await settled(rt)
            assert sorted(p.text for p in sim.posted) == sorted(f"f{n}" for n in range(FLOOD))
