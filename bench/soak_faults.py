"""The soak's faults: what fires, when it may, and how each one is undone.

Socket and process faults (``drop``, ``goodbye``, ``refresh``, ``connect_429``, ``latency``,
``kill``, ``redis_restart``) and the simulator's newer ones:

* ``lag``: one team's copies arrive late (0.2-1.0 s, plus up to 0.5 s jitter that reorders them,
  around the runtime's 0.5 s ``standby_grace``) and a third of another team's are written twice,
  for 1-4 s (``sim.lag``, ``sim.duplicate``).
* ``churn``: membership changes through the simulator's org API, each undone 1-3 s later: a bot
  leaves a shared channel (the other stays), a user who writes there leaves, or a channel is
  unshared from one of its installed teams (bot and members it alone connected go with it).
* ``ratelimit``: Slack's posting limits (about one post a second per channel, slack-protocol-notes
  E) are switched on for 3-6 s while a burst of 5 messages goes to one conversation: replies
  meet ``429`` + ``Retry-After`` and must come late, once.
* ``uninstall``: the app is uninstalled from a team (``app_uninstalled``, ``tokens_revoked``, its
  sockets closed) and reinstalled 1.5-4 s later with a new token; each process's config is
  rewritten and reloaded with SIGHUP, as an operator would.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from bench.soak_procs import GridbotProcess, RedisServer
from bench.soak_verdict import Kill
from gridbot.testing import GridSimulator, RateLimits
from gridbot.testing.simulator import Installation

APP = "A0GRIDBOT1"
T1, T2 = "T0TEAM001", "T0TEAM002"
TRIO = "C0TRIO0001"  # hosted by Team 3 (no app): the lowest installed team answers, so unsharing moves it
SOCKET_FAULTS = ("drop", "goodbye", "refresh", "connect_429", "latency", "kill", "redis_restart")
FAULTS = (*SOCKET_FAULTS, "lag", "churn", "ratelimit", "uninstall")
ORG_FAULTS = frozenset({"churn", "uninstall"})  # one membership change at a time
BOTS = {T1: ("U0BOT0001", "B0BOT0001"), T2: ("U0BOT0002", "B0BOT0002")}
BURST = 5


def posting_limits() -> RateLimits:
    """Slack's posting limits only (per channel and per workspace), off until a fault."""
    limits = RateLimits(enabled=False)
    limits.limits = {m: lim for m, lim in limits.limits.items() if m.startswith("chat.postMessage")}
    return limits


@dataclass
class Record:
    """What the faults did, for the verdict."""

    kills: list[Kill] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)
    uninstalls: list[tuple[str, float]] = field(default_factory=list)  # team, uninstalled at
    leaves: list[tuple[str, str, float]] = field(default_factory=list)  # team, channel, its bot gone at
    reinstalls: list[tuple[str, float]] = field(default_factory=list)  # team, reinstalled at


class Chaos:
    def __init__(
        self,
        sim: GridSimulator,
        rng: random.Random,
        procs: dict[str, GridbotProcess],
        redis: RedisServer,
        tokens: dict[str, str],
        *,
        rewrite: Callable[[], None],
        burst: Callable[[str, int], Awaitable[None]],
        limits: RateLimits,
    ) -> None:
        self.sim = sim
        self.rng = rng
        self.procs = procs
        self.redis = redis
        self.tokens = tokens  # team -> its current bot token (a reinstall changes it)
        self.rewrite = rewrite  # writes every process's config from ``tokens``
        self.burst = burst
        self.limits = limits
        self.fired: dict[str, int] = {}
        self.uninstalled: set[str] = set()
        self.down: set[str] = set()  # processes killed and not yet started again
        self.org_busy = False  # a churn or an uninstall not yet undone
        self.record = Record()
        self.tasks: list[asyncio.Task[None]] = []
        self._redis_down = 0.0
        self._started: dict[str, float] = {}

    def schedule(self, count: int) -> list[str]:
        """Every kind at least once, the rest at random; in a seeded random order."""
        count = max(len(FAULTS), count)
        kinds = list(FAULTS) + [self.rng.choice(FAULTS) for _ in range(count - len(FAULTS))]
        self.rng.shuffle(kinds)
        return kinds

    def applicable(self, kind: str) -> bool:
        """One outage of a kind at a time; at least one gridbot process always runs; no SIGHUP to
        a process that may not have installed its handler yet (an uninstall waits for them)."""
        fresh = any(time.time() - t < 5.0 for t in self._started.values())
        if kind == "kill":
            return len(set(self.procs) - self.down) >= 2 and not self.uninstalled
        if kind == "redis_restart":
            return self.redis.running
        if kind in ORG_FAULTS:
            return not self.org_busy and (kind != "uninstall" or (not self.down and not fresh))
        if kind == "ratelimit":
            return not self.limits.enabled
        return True

    async def fire(self, kind: str) -> None:
        self.fired[kind] = self.fired.get(kind, 0) + 1
        await getattr(self, f"_{kind}")(self.rng.choice([T1, T2]))

    def later(self, delay: float, coro: Coroutine[Any, Any, None], name: str) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await coro

        self.tasks.append(asyncio.create_task(run(), name=name))

    async def finish(self) -> None:
        """Wait for every pending undo (restarts, rejoins, the reinstall) and calm the simulator."""
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.sim.set_latency(0.0)
        self.limits.enabled = False
        if not self.redis.running:
            await self._redis_back()

    # -- sockets and processes -----------------------------------------------------------------

    async def _drop(self, team: str) -> None:
        await self.sim.drop_sockets(team=team)

    async def _goodbye(self, team: str) -> None:
        await self.sim.send_goodbye(team)

    async def _refresh(self, team: str) -> None:
        await self.sim.send_disconnect(APP, "refresh_requested")

    async def _connect_429(self, team: str) -> None:
        target = self.rng.choice([team, APP])
        self.sim.fail_connect(target, "ratelimited", 429, retry_after=self.rng.uniform(0.3, 1.0), times=2)
        if target == APP:
            await self.sim.drop_sockets(app=APP)  # every socket reconnects into the refusal
        else:
            await self.sim.drop_sockets(team=target)

    async def _latency(self, team: str) -> None:
        self.sim.set_latency(self.rng.uniform(0.2, 0.8))

        async def calm() -> None:
            self.sim.set_latency(0.0)

        self.later(self.rng.uniform(1.0, 3.0), calm(), "soak:latency-end")

    async def _kill(self, team: str) -> None:
        proc = self.procs[self.rng.choice(sorted(set(self.procs) - self.down))]
        self.down.add(proc.name)
        proc.kill()
        killed = proc.incarnations[-1].killed
        assert killed is not None
        self.record.kills.append(Kill(proc.name, killed))

        async def restart() -> None:
            await proc.reap()
            await proc.start()
            self._started[proc.name] = time.time()
            self.down.discard(proc.name)

        self.later(self.rng.uniform(0.5, 2.0), restart(), f"soak:restart-{proc.name}")

    async def _redis_restart(self, team: str) -> None:
        await asyncio.to_thread(self.redis.kill)
        self._redis_down = time.time()
        self.later(self.rng.uniform(0.5, 2.0), self._redis_back(), "soak:redis-back")

    async def _redis_back(self) -> None:
        await asyncio.to_thread(self.redis.start)
        self.record.outages.append((self._redis_down, time.time()))

    # -- the simulator's timing, membership, rate limits, installs -----------------------------

    async def _lag(self, team: str) -> None:
        other = T2 if team == T1 else T1
        rules = [
            self.sim.lag(self.rng.uniform(0.2, 1.0), jitter=self.rng.uniform(0.0, 0.5), team=team),
            self.sim.duplicate(0.3, after=self.rng.uniform(0.05, 0.8), team=other),
        ]

        async def clear() -> None:
            for rule in rules:
                self.sim.remove_timing(rule)

        self.later(self.rng.uniform(1.0, 4.0), clear(), "soak:lag-end")

    async def _churn(self, team: str) -> None:
        org = self.sim.org
        conv = self.sim.topology.conversation_by_id
        how = self.rng.choice(["bot", "user", "unshare"])
        channel = self.rng.choice(["C0SHARED1", TRIO])
        live = [t for t in conv[channel].bot_teams if t not in self.uninstalled]
        if how == "unshare" and channel == TRIO and team in live and len(live) == 2:
            members = conv[channel].members
            self.record.leaves.append((team, channel, time.time()))
            await org.unshare(channel, team)
            gone = [m for m in members if m not in self.sim.topology.conversation_by_id[channel].members]

            async def reshare() -> None:
                await org.share(channel, team)
                await org.join(channel, team=team)
                for user in gone:
                    await org.join(channel, user=user)

            return self._undo(reshare(), "soak:reshare")
        if how in ("bot", "unshare") and team in live and len(live) == 2:
            self.record.leaves.append((team, channel, time.time()))
            await org.leave(channel, team=team, by=self.rng.choice([None, "W0DAVE001"]))
            return self._undo(_joined(org.join(channel, team=team)), "soak:rejoin-bot")
        user = self.rng.choice(["W0ALICE01", "W0BOB0001"])
        if user in conv[channel].members:
            await org.leave(channel, user=user)
            return self._undo(_joined(org.join(channel, user=user)), "soak:rejoin-user")
        self.fired["churn"] -= 1  # nothing to change this time

    def _undo(self, coro: Coroutine[Any, Any, None], name: str, low: float = 1.0, high: float = 3.0) -> None:
        self.org_busy = True

        async def undo() -> None:
            try:
                await coro
            finally:
                self.org_busy = False

        self.later(self.rng.uniform(low, high), undo(), name)

    async def _ratelimit(self, team: str) -> None:
        self.limits.reset()
        self.limits.enabled = True

        async def off() -> None:
            self.limits.enabled = False

        self.later(self.rng.uniform(3.0, 6.0), off(), "soak:ratelimit-end")
        await self.burst(self.rng.choice(["C0SHARED1", "C0ONE0001", TRIO]), BURST)

    async def _uninstall(self, team: str) -> None:
        self.uninstalled.add(team)
        self.record.uninstalls.append((team, time.time()))
        await self.sim.uninstall(APP, team)

        async def reinstall() -> None:
            token = f"xoxb-sim-{team}-{len(self.record.reinstalls) + 1}"
            user_id, bot_id = BOTS[team]
            await self.sim.org.install(APP, Installation(team, token, user_id, bot_id))
            self.record.reinstalls.append((team, time.time()))
            self.tokens[team] = token
            self.uninstalled.discard(team)
            self.rewrite()
            for proc in self.procs.values():
                proc.reload()

        self._undo(reinstall(), "soak:reinstall", 1.5, 4.0)


async def _joined(join: Awaitable[str]) -> None:
    await join
