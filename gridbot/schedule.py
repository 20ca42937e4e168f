"""Scheduled handlers: each slot of a trigger runs once across every process sharing the store.

At a slot's due time every process tries to take the store lock named after the slot, and only
the winner hands the handler to the dispatcher. The lock name carries the slot, so a process whose
clock runs a little late finds the slot taken instead of running it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Protocol

from gridbot.events import Event
from gridbot.logs import get_logger
from gridbot.store import Store, StoreUnavailable

if TYPE_CHECKING:
    from gridbot.plugins import Plugin, Route
    from gridbot.triggers import Trigger

log = get_logger("gridbot.schedule")


class Runner(Protocol):
    """What runs a due handler (the dispatcher)."""

    def run_now(self, route: Route, event: Event, team_id: str) -> None: ...


class Connections(Protocol):
    """What knows the teams connected in this process (the supervisor)."""

    def connected(self) -> Collection[str]: ...


class Scheduler:
    """One loop per scheduled handler; the store lock of each slot decides which process runs it."""

    def __init__(
        self,
        plugins: Sequence[Plugin],
        store: Store,
        dispatcher: Runner,
        supervisor: Connections,
        holder: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.routes = [r for p in plugins for r in p.routes if r.kind == "schedule"]
        self._store = store
        self._dispatcher = dispatcher
        self._supervisor = supervisor
        self._holder = holder
        self._clock = clock
        self._sleep = sleep

    async def run(self) -> None:
        if not self.routes:
            return
        async with asyncio.TaskGroup() as group:
            for route in self.routes:
                group.create_task(self._loop(route), name=f"schedule:{route.plugin}.{route.name}")

    async def _loop(self, route: Route) -> None:
        trigger = route.trigger
        assert trigger is not None
        last = -1
        while True:
            slot, due = trigger.next_slot(self._clock())
            if slot <= last:  # woke a hair early: never take the same slot twice
                slot, due = trigger.next_slot(max(due, self._clock()))
            await self._sleep(max(0.0, due - self._clock()))
            last = slot
            await self._fire(route, trigger, slot)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A store client swallowed our cancellation (Python 3.11's wait_for can): stop.
                raise asyncio.CancelledError

    async def _fire(self, route: Route, trigger: Trigger, slot: int) -> None:
        where = {"plugin": route.plugin, "handler": route.name, "slot": slot}
        teams = self._supervisor.connected()
        if not teams:
            log.debug("schedule.skipped", reason="no_team_connected", **where)
            return
        # The lock outlives the slot by far, so a process with a late clock finds it taken.
        ttl_ms = int(max(trigger.interval * 2, 10.0) * 1000)
        try:
            lock = f"schedule:{route.plugin}.{route.name}:{slot}"
            won = await self._store.try_lock(lock, self._holder, ttl_ms)
        except StoreUnavailable:
            log.warning("schedule.skipped", reason="store_unavailable", **where)
            return
        if not won:
            log.debug("schedule.taken", **where)
            return
        team = min(teams)  # every process picks the same one
        log.info("schedule.ran", team_id=team, holder=self._holder, **where)
        event = Event(
            team_id=team,
            enterprise_id=None,
            type="schedule",
            subtype=None,
            channel=None,
            ts=str(slot),
            thread_ts=None,
            user=None,
            source_team=None,
            user_team=None,
            bot_id=None,
            text="",
            event_id=None,
            raw={"type": "schedule", "slot": slot, "plugin": route.plugin, "handler": route.name},
        )
        self._dispatcher.run_now(route, event, team)
