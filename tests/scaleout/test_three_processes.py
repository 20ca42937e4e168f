"""Three `gridbot run` processes, one config, six teams: one socket per team, kill -9, rejoin."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from collections import Counter
from pathlib import Path

from gridtest import GridbotProcess, wait_until
from scaleout.six import ALL, AUTHOR, SIX, SOLO, six_team_topology

from gridbot.registry import ProcessInfo, Registry
from gridbot.store import RedisStore
from gridbot.testing import GridSimulator, RateLimits
from gridbot.testing.harness import config_for


class Traffic:
    """Steady messages (every 30 ms) round-robin over the shared channel and the six solo ones."""

    def __init__(self, sim: GridSimulator) -> None:
        self.sim = sim
        self.sent: dict[str, tuple[str, str]] = {}  # text -> (channel, ts)
        self.shared_only = False
        self.watch_gaps = False  # record any team left without a socket (handoffs must not)
        self.gaps: set[str] = set()
        self._n = itertools.count()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        solos = itertools.cycle(SIX)
        while True:
            n = next(self._n)
            team = next(solos)
            channel = ALL if self.shared_only or n % 2 == 0 else SOLO[team]
            text = f"m{n}"
            ts = await self.sim.post_message(user=AUTHOR[team], channel=channel, text=f"echo {text}")
            self.sent[text] = (channel, ts)
            if self.watch_gaps:
                self.gaps |= {t for t in SIX if self.sim.socket_count(team=t) == 0}
            await asyncio.sleep(0.03)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="test:traffic")

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def one_socket_each(sim: GridSimulator) -> bool:
    return all(sim.socket_count(team=t) == 1 for t in SIX)


async def live(registry: Registry) -> list[ProcessInfo]:
    return [p for p in await registry.processes() if p.state == "serving"]


async def balanced(registry: Registry, processes: int, timeout: float) -> list[ProcessInfo]:
    deadline = time.monotonic() + timeout
    while True:
        procs = await live(registry)
        owned = sorted(len(p.connections) for p in procs)
        if len(procs) == processes and owned == [6 // processes] * processes:
            return procs
        assert time.monotonic() < deadline, f"not balanced after {timeout}s: {owned}"
        await asyncio.sleep(0.05)


async def test_three_processes_six_teams_kill_9_and_rejoin(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    store = RedisStore.from_url(redis_url, key_prefix=redis_prefix)
    registry = Registry(store)
    # About scale-out, kill -9 and rejoin, not Slack's posting limit.
    async with GridSimulator(six_team_topology(), seed=21, rate_limits=RateLimits(enabled=False)) as sim:
        config = config_for(sim, {t: "rtm" for t in SIX}, redis_url=redis_url, key_prefix=redis_prefix)
        procs = [GridbotProcess(config, tmp_path, f"proc{n}") for n in range(3)]
        traffic = Traffic(sim)
        try:
            for p in procs:
                await p.start()
            first = await balanced(registry, 3, 30)
            await wait_until(lambda: one_socket_each(sim), 15, "one socket per team")
            traffic.start()

            # kill -9 the process holding the shared channel's host team, under traffic
            victim_info = next(p for p in first if any(t == SIX[0] for t in p.teams))
            victim = next(p for p in procs if p.proc is not None and str(p.proc.pid) in victim_info.instance)
            orphaned = set(victim_info.teams)
            traffic.shared_only = True  # solo channels of the dead teams reach no socket until moved
            killed_at = time.monotonic()
            victim.signal(signal.SIGKILL)
            await victim.wait()
            await wait_until(lambda: sim.connected_teams() < set(SIX), 5, "the kernel closed its sockets")
            await wait_until(lambda: one_socket_each(sim), 15, "orphaned teams connected elsewhere")
            recovered_in = time.monotonic() - killed_at
            assert recovered_in <= 15, recovered_in
            after_kill = await balanced(registry, 2, 15)
            assert orphaned <= {t for p in after_kill for t in p.teams}

            # the killed process comes back: connections move to it one at a time, the new
            # socket opening before the old one closes
            traffic.shared_only = False
            traffic.watch_gaps = True
            restarted = GridbotProcess(config, tmp_path, "proc-restarted")
            procs.append(restarted)
            await restarted.start()
            await balanced(registry, 3, 30)
            await wait_until(lambda: one_socket_each(sim), 10, "one socket per team after rebalancing")

            # a rolling restart: SIGTERM hands the connections over before the process exits
            leaving = next(p for p in procs if p.proc is not None and p.proc.returncode is None)
            leaving.signal(signal.SIGTERM)
            assert await leaving.wait(20) == 0
            await balanced(registry, 2, 10)
            replacement = GridbotProcess(config, tmp_path, "proc-replacement")
            procs.append(replacement)
            await replacement.start()
            await balanced(registry, 3, 30)
            await wait_until(lambda: one_socket_each(sim), 10, "one socket per team after the restart")
            await traffic.stop()
            assert traffic.gaps == set(), f"teams without a socket during handoffs: {traffic.gaps}"

            delivered = {(d.channel, d.ts) for d in sim.deliveries}
            expected = {text for text, key in traffic.sent.items() if key in delivered}
            try:
                await wait_until(lambda: expected <= {p.text for p in sim.posted}, 20, "answers")
            except AssertionError:
                missing = sorted(expected - {p.text for p in sim.posted})
                where = {t: [(d.team, d.socket_id) for d in sim.deliveries
                             if (d.channel, d.ts) == traffic.sent[t]] for t in missing}
                raise AssertionError(f"delivered but unanswered: {where}") from None
            for p in procs:  # stopping drains: after this no reply can still be on its way
                if p.proc is not None and p.proc.returncode is None:
                    p.signal(signal.SIGTERM)
            for p in procs:
                if p.proc is not None and p.proc.returncode is None:
                    assert await p.wait(20) == 0
            counts = Counter(p.text for p in sim.posted)
            assert set(counts) == expected
            assert [t for t, n in counts.items() if n > 1] == []  # none twice
            # The shared channel always reaches a live socket: none of its messages may be lost;
            # after the kill only the dead teams' solo channels wait for their new owner.
            shared = {t for t, (channel, _) in traffic.sent.items() if channel == ALL}
            assert shared <= expected
            solo_lost = [t for t, (ch, _) in traffic.sent.items() if ch != ALL and t not in expected]
            assert len(traffic.sent) > 100 and len(solo_lost) <= 2, solo_lost
        finally:
            with contextlib.suppress(Exception):
                await traffic.stop()
            for p in procs:
                await p.stop()
            await store.close()
