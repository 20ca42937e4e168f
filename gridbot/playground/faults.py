"""The fault buttons: cut a team's socket, revoke a team, lag a team, stop and start Redis.

Each is the simulator's own fault (its public API) or the Redis switch; the panel remembers what
it applied so the page can show it and so undoing one fault (``clear_faults`` clears them all)
can re-apply the others.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gridbot.testing.simulator import GridSimulator

from .narrate import Names
from .redis_switch import RedisSwitch

DEFAULT_LAG = 1.0  # seconds: twice the playground's standby grace, so a lagging team's copy is late


class LagControl(Protocol):
    """The simulator's per-team delivery lag (issue 15, being added to the simulator).

    ``lag(team, seconds)`` delays every copy written to the team's sockets by ``seconds``;
    ``seconds=0`` removes the lag. It may be a coroutine function. ``clear_faults()`` removes it too.
    """

    def __call__(self, team: str, seconds: float) -> object: ...


def lag_control(sim: GridSimulator) -> LagControl | None:
    """The simulator's lag fault, when this simulator has one (``GridSimulator.lag``)."""
    lag = getattr(sim, "lag", None)
    return lag if callable(lag) else None


class FaultError(Exception):
    """A fault that cannot be applied (unknown team, not available here): said to the page."""


@dataclass
class TeamFaults:
    cut: bool = False  # socket cut, reconnects refused
    revoked: bool = False  # the bot token is revoked (for good: the simulator has no un-revoke)
    lag: float = 0.0


class FaultPanel:
    def __init__(
        self,
        sim: GridSimulator,
        names: Names,
        note: Callable[[str], object],
        *,
        switch: RedisSwitch | None = None,
        redis_note: str | None = None,
        lag: LagControl | None = None,
    ) -> None:
        self._sim = sim
        self._names = names
        self._note = note
        self._switch = switch
        self._redis_note = redis_note
        self._lag = lag
        installed = {b.team for b in sim.topology.bots}
        self._teams = {t.id: TeamFaults() for t in sim.topology.teams if t.id in installed}

    def available(self) -> dict[str, Any]:
        """Which buttons work here, and why a disabled one is disabled."""
        return {
            "cut": True,
            "revoke": True,
            "lag": self._lag is not None,
            "lag_note": None if self._lag else "this simulator has no lag fault yet (issue 15 adds it)",
            "redis": self._switch is not None,
            "redis_note": self._redis_note,
        }

    def state(self) -> dict[str, Any]:
        return {
            "teams": {t: vars(f).copy() for t, f in self._teams.items()},
            "redis_stopped": self._switch is not None and not self._switch.on,
        }

    def _team(self, team: str | None) -> TeamFaults:
        faults = self._teams.get(team or "")
        if faults is None:
            raise FaultError(f"no app is installed on team {team!r}")
        return faults

    async def apply(self, fault: str, team: str | None = None, seconds: float | None = None) -> None:
        """Apply one fault; FaultError says why it cannot be."""
        action = getattr(self, f"_do_{fault}", None)
        if action is None:
            raise FaultError(f"unknown fault {fault!r}")
        await action(team, seconds)

    async def _do_cut(self, team: str | None, _seconds: float | None) -> None:
        faults = self._team(team)
        assert team is not None
        faults.cut = True
        self._sim.fail_connect(team, error="ratelimited", status=429, retry_after=1)
        await self._sim.drop_sockets(team=team)
        self._note(f"{self._names.team(team)}: socket cut, reconnects refused (429)")

    async def _do_reconnect(self, team: str | None, _seconds: float | None) -> None:
        self._team(team).cut = False
        await self._reapply()
        self._note(f"{self._names.team(team)}: reconnects allowed again")

    async def _do_revoke(self, team: str | None, _seconds: float | None) -> None:
        faults = self._team(team)
        assert team is not None
        for bot in self._sim.topology.bots_on(team):
            await self._sim.revoke_token(bot.installation.bot_token)
        faults.revoked = True
        self._note(f"{self._names.team(team)}: bot token revoked (for good)")

    async def _do_lag(self, team: str | None, seconds: float | None) -> None:
        faults = self._team(team)
        if self._lag is None:
            raise FaultError("this simulator has no lag fault yet")
        assert team is not None
        faults.lag = DEFAULT_LAG if seconds is None else max(0.0, min(float(seconds), 60.0))
        await _maybe_await(self._lag(team, faults.lag))
        what = f"copies delayed by {faults.lag:g} s" if faults.lag else "lag removed"
        self._note(f"{self._names.team(team)}: {what}")

    async def _do_unlag(self, team: str | None, _seconds: float | None) -> None:
        await self._do_lag(team, 0.0)

    async def _do_redis_stop(self, _team: str | None, _seconds: float | None) -> None:
        if self._switch is None:
            raise FaultError(self._redis_note or "the playground is not running on Redis")
        await self._switch.stop()
        self._note("Redis stopped: connections cut, new ones refused")

    async def _do_redis_start(self, _team: str | None, _seconds: float | None) -> None:
        if self._switch is None:
            raise FaultError(self._redis_note or "the playground is not running on Redis")
        await self._switch.start()
        self._note("Redis started again")

    async def _do_heal(self, _team: str | None, _seconds: float | None) -> None:
        """Undo every fault that can be undone (a revoked token stays revoked)."""
        for faults in self._teams.values():
            faults.cut = False
            faults.lag = 0.0
        self._sim.clear_faults()
        if self._switch is not None:
            await self._switch.start()
        self._note("faults cleared (a revoked token stays revoked)")

    async def _reapply(self) -> None:
        """clear_faults() clears every team's: put back those still wanted."""
        self._sim.clear_faults()
        for team, faults in self._teams.items():
            if faults.cut:
                self._sim.fail_connect(team, error="ratelimited", status=429, retry_after=1)
            if faults.lag and self._lag is not None:
                await _maybe_await(self._lag(team, faults.lag))


async def _maybe_await(result: object) -> None:
    if inspect.isawaitable(result):
        await result
