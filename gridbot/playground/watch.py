"""Polls what has no log line: the simulator's records (copies written, bot posts) and the state
of teams, heartbeats and elections, and hands the changes to the stories and the feed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from gridbot.runtime import Runtime
from gridbot.status.view import team_views
from gridbot.store import StoreUnavailable
from gridbot.testing.simulator import GridSimulator

from .faults import FaultPanel
from .feed import Feed
from .narrate import Names
from .stories import Stories

T = TypeVar("T")
RECORDS_EVERY = 0.05  # seconds between reads of the simulator's records
STATE_EVERY = 0.25  # seconds between reads of teams, heartbeats and elections
STORE_TIMEOUT = 0.5  # a store call that takes longer counts as "unreachable" for the page


class Watcher:
    def __init__(
        self,
        sim: GridSimulator,
        runtime: Runtime,
        stories: Stories,
        feed: Feed,
        faults: FaultPanel,
        names: Names,
        *,
        store_kind: str,
    ) -> None:
        self._sim = sim
        self._rt = runtime
        self._stories = stories
        self._feed = feed
        self._faults = faults
        self._names = names
        self._store_kind = store_kind
        # Positions in the simulator's logs, which count every record ever written (``log[n:]`` is
        # everything since, as far as it is still kept).
        self._deliveries_seen = len(sim.deliveries)
        self._posts_seen = len(sim.posted)
        self._state: dict[str, Any] = {}
        self._heartbeats: dict[str, bool] = {}
        self._lapsed: set[str] = set()

    @property
    def state(self) -> dict[str, Any]:
        """The latest snapshot of teams, elections and counters (see :meth:`read_state`)."""
        return self._state

    async def run(self) -> None:
        ticks = 0
        while True:
            self.read_records()
            if ticks % round(STATE_EVERY / RECORDS_EVERY) == 0:
                await self.refresh()
                self._stories.tick()
            ticks += 1
            await asyncio.sleep(RECORDS_EVERY)

    def read_records(self) -> None:
        """Hand new copies and bot posts to the stories."""
        log = self._sim.deliveries
        deliveries, self._deliveries_seen = log[self._deliveries_seen :], len(log)
        for d in deliveries:
            self._stories.delivered(d.team, d.socket_id, d.channel, d.ts)
        posted = self._sim.posted
        posts, self._posts_seen = posted[self._posts_seen :], len(posted)
        for p in posts:
            if p.bot_user_id is not None:
                self._stories.replied(
                    team=p.team_id, channel=p.channel, text=p.text, ts=p.ts, thread_ts=p.thread_ts
                )

    async def refresh(self) -> None:
        """Read the state again; publish it when it changed."""
        state = await self.read_state()
        if state != self._state:
            self._state = state
            self._feed.publish("state", state=state)

    async def read_state(self) -> dict[str, Any]:
        rt, sim = self._rt, self._sim
        supervisor, dedup = rt.supervisor, rt.dedup
        views = {v.team_id: v for v in team_views(supervisor.connections.values())} if supervisor else {}
        installed = [t.id for t in sim.topology.teams if t.id in {b.team for b in sim.topology.bots}]
        alive = await self._store_call(lambda: rt.store.alive(installed))
        elections = await self._store_call(rt.store.elections)
        faults = self._faults.state()
        teams = []
        for team in sim.topology.teams:
            view = views.get(team.id)
            beating = (team.id in alive) if isinstance(alive, set) else None
            if team.id in installed:
                self._heartbeat_changed(team.id, beating)
            teams.append(
                {
                    "id": team.id,
                    "name": team.name,
                    "installed": team.id in installed,
                    "state": view.state if view else None,
                    "error": view.error if view else None,
                    "heartbeat": beating if team.id in installed else None,
                    "sockets": sim.socket_count(team=team.id),
                    "faults": faults["teams"].get(team.id),
                }
            )
        counters = dedup.counters if dedup else None
        return {
            "teams": teams,
            "elections": [
                {"channel": c, "team": e.team, "epoch": e.epoch, "pinned": e.pinned}
                for c, e in sorted(elections.items())
            ]
            if isinstance(elections, dict)
            else None,
            "counters": {
                name: getattr(counters, name, 0)
                for name in ("handled", "duplicate", "standby", "rescued", "own_message")
            }
            | {"takeovers": rt.elector.takeovers if rt.elector else 0},
            "store": {
                "kind": self._store_kind,
                "reachable": bool(dedup.store_ok) if dedup else None,
                "stopped": faults["redis_stopped"],
            },
        }

    def _heartbeat_changed(self, team: str, beating: bool | None) -> None:
        """Note a lapse of a heartbeat that was alive, and its return; not the first beat."""
        before = self._heartbeats.get(team)
        if beating is None:
            return
        self._heartbeats[team] = beating
        name = self._names.team(team)
        if before and not beating:
            self._lapsed.add(team)
            self._feed.note(
                f"{name}: heartbeat lapsed (its channels can be taken over)", level="warning", team=team
            )
        elif beating and team in self._lapsed:
            self._lapsed.discard(team)
            self._feed.note(f"{name}: heartbeat alive again", team=team)

    @staticmethod
    async def _store_call(call: Callable[[], Any]) -> Any:
        """The store's answer, or None when it is unreachable or slow."""
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                return await call()
        except (StoreUnavailable, TimeoutError, OSError):
            return None
