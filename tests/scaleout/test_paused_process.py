"""Fencing as a user sees it: a process paused past its lease loses its teams, and on waking up
it closes their sockets instead of serving them beside the new owner."""

from __future__ import annotations

import signal
from pathlib import Path

from gridtest import GridbotProcess, eventually, wait_until
from scaleout.six import ALL, AUTHOR, SIX, six_team_topology

from gridbot.registry import Registry
from gridbot.store import RedisStore
from gridbot.testing import GridSimulator, RateLimits
from gridbot.testing.harness import config_for


async def test_a_process_paused_past_its_lease_stops_serving_when_it_wakes(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    store = RedisStore.from_url(redis_url, key_prefix=redis_prefix)
    registry = Registry(store)
    procs: list[GridbotProcess] = []
    try:
        # About a lease lapsing while paused, not Slack's posting limit.
        async with GridSimulator(six_team_topology(), seed=4, rate_limits=RateLimits(enabled=False)) as sim:
            config = config_for(sim, redis_url=redis_url, key_prefix=redis_prefix, lease_ttl=1.5)
            procs = [await GridbotProcess(config, tmp_path, f"p{n}").start() for n in range(2)]
            pids = [p.proc.pid for p in procs if p.proc is not None]

            async def shares() -> list[int] | None:
                """Connections owned per process, once both announce a balanced share."""
                owned = {p.pid: len(p.connections) for p in await registry.processes()}
                counts = [owned.get(pid, 0) for pid in pids]
                return counts if counts == [3, 3] else None

            await eventually(shares, 30)
            await wait_until(lambda: all(sim.socket_count(team=t) == 1 for t in SIX), 15, "six sockets")

            procs[0].signal(signal.SIGSTOP)  # frozen: its sockets stay open, it renews nothing

            async def p1_owns_all() -> bool | None:
                owned = {p.pid: len(p.connections) for p in await registry.processes()}
                return True if owned.get(pids[1]) == len(SIX) else None

            await eventually(p1_owns_all, 20)  # p1 connected them too, beside p0's frozen sockets
            procs[0].signal(signal.SIGCONT)  # wakes up late: its renewals are refused
            await wait_until(lambda: all(sim.socket_count(team=t) == 1 for t in SIX), 15,
                             "the woken process closed the sockets it no longer owns")
            before = len(sim.posted)
            for team in SIX:
                await sim.post_message(user=AUTHOR[team], channel=ALL, text=f"echo after {team}")
            await wait_until(lambda: len(sim.posted) >= before + len(SIX), 15)
            assert sorted(p.text for p in sim.posted[before:]) == sorted(f"after {t}" for t in SIX)
            lost = [e for e in procs[0].events() if e["event"] == "ownership.lost"]
            assert len(lost) == 3 and {e["reason"] for e in lost} <= {"taken", "lapsed"}
    finally:
        for p in procs:
            if p.proc is not None and p.proc.returncode is None:
                p.signal(signal.SIGCONT)
            await p.stop()
        await store.close()
