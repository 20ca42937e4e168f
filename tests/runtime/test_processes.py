"""Several real gridbot processes sharing one Redis: exactly once across processes, kill -9, SIGTERM."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gridtest import SHARED, T1, T2, USERS, GridbotProcess, eventually, grid_config, wait_until

from gridbot.store import RedisStore
from gridbot.testing import GridSimulator, RateLimits


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    # These tests are about processes (exactly-once, kill -9, restart), not Slack's posting limit.
    async with GridSimulator(seed=13, rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def _lapsed(store: RedisStore, team: str) -> bool | None:
    return None if await store.alive([team]) else True


def start_pair(sim: GridSimulator, tmp_path: Path, redis_url: str, prefix: str) -> list[GridbotProcess]:
    """One process per team, one Redis."""
    return [
        GridbotProcess(
            grid_config(sim, {team: "rtm"}, redis_url=redis_url, key_prefix=prefix), tmp_path, name
        )
        for team, name in ((T1, "proc-t1"), (T2, "proc-t2"))
    ]


async def both_connected(sim: GridSimulator) -> None:
    await wait_until(
        lambda: sim.socket_count(team=T1) == 1 and sim.socket_count(team=T2) == 1,
        30,
        "both processes connected",
    )


async def send(sim: GridSimulator, label: str, count: int) -> dict[str, float]:
    """Messages from users of all three teams; returns {expected reply: send time}."""
    sent = {}
    authors = list(USERS.values())
    for n in range(count):
        await sim.post_message(user=authors[n % 3], channel=SHARED, text=f"echo {label}{n}")
        sent[f"{label}{n}"] = time.time()
    return sent


async def test_two_processes_one_per_team_answer_exactly_once(
    sim: GridSimulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    procs = [await p.start() for p in start_pair(sim, tmp_path, redis_url, redis_prefix)]
    try:
        await both_connected(sim)
        sent = await send(sim, "m", 30)
        await wait_until(lambda: len(sim.posted) >= 30, 20, "30 replies")
        for p in procs:
            p.signal(signal.SIGTERM)
        assert [await p.wait() for p in procs] == [0, 0]
        assert sorted(r.text for r in sim.posted) == sorted(sent)  # none lost, none twice
        assert {r.team_id for r in sim.posted} == {T1}
    finally:
        for p in procs:
            await p.stop()


async def test_kill_9_of_the_responsible_process(
    sim: GridSimulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    procs = [await p.start() for p in start_pair(sim, tmp_path, redis_url, redis_prefix)]
    try:
        await both_connected(sim)
        before = await send(sim, "before", 6)
        await wait_until(lambda: len(sim.posted) >= 6, 20)
        procs[0].signal(signal.SIGKILL)  # Team 1's process: the responsible one
        assert await procs[0].wait() == -signal.SIGKILL
        during = await send(sim, "during", 4)  # Team 1's heartbeat still valid: Team 2 rescues these
        await wait_until(lambda: len(sim.posted) >= 10, 30, "answers right after the kill")
        store = RedisStore.from_url(redis_url, key_prefix=redis_prefix)
        await eventually(lambda: _lapsed(store, T1), 15)
        await store.close()
        after = await send(sim, "after", 8)  # the first rescue now takes the election over
        after.update(during)
        await wait_until(lambda: len(sim.posted) >= 18, 30, "answers after the heartbeat lapsed")
        procs[1].signal(signal.SIGTERM)
        assert await procs[1].wait() == 0
        posted = {r.text: r for r in sim.posted}
        assert sorted(r.text for r in sim.posted) == sorted({**before, **after})
        for text, sent_at in after.items():
            assert posted[text].team_id == T2
            assert posted[text].time - sent_at <= 15, (
                f"{text} answered {posted[text].time - sent_at:.1f}s late"
            )
        assert any(
            e["event"] == "election.moved" and e["reason"] == "heartbeat_lapsed" for e in procs[1].events()
        )
    finally:
        for p in procs:
            await p.stop()


async def test_sigterm_exits_0_and_a_restart_keeps_the_elections(
    sim: GridSimulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    procs = [await p.start() for p in start_pair(sim, tmp_path, redis_url, redis_prefix)]
    try:
        await both_connected(sim)
        await send(sim, "first", 3)
        await wait_until(lambda: len(sim.posted) >= 3, 20)
        for p in procs:
            p.signal(signal.SIGTERM)
        assert [await p.wait() for p in procs] == [0, 0]
        for p in procs:
            names = [e["event"] for e in p.events()]
            assert "gridbot.stopping" in names and "gridbot.stopped" in names
        first_team = {r.team_id for r in sim.posted}

        restarted = [await p.start() for p in start_pair(sim, tmp_path, redis_url, redis_prefix)]
        procs += restarted
        await both_connected(sim)
        await send(sim, "again", 6)
        await wait_until(lambda: len(sim.posted) >= 9, 20)
        assert {r.team_id for r in sim.posted[3:]} == first_team  # the same team answers
        assert len(sim.posted) == 9
    finally:
        for p in procs:
            await p.stop()
