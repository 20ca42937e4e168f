"""Scheduled handlers: each interval's run happens once across every process sharing the store.

Intervals are aligned to wall-clock multiples of ``every``; at each boundary every process tries
to take the lock named after that slot, and only the winner runs the handler.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from gridbot.events import Event
from gridbot.logs import get_logger
from gridbot.plugins import Plugin, Route
from gridbot.store import Store, StoreUnavailable

if TYPE_CHECKING:
    from gridbot.dispatch import Dispatcher
    from gridbot.supervisor import Supervisor

log = get_logger("gridbot.schedule")


class Scheduler:
    def __init__(
        self, plugins: list[Plugin], store: Store, dispatcher: Dispatcher, supervisor: Supervisor, holder: str
    ) -> None:
        self.routes = [r for p in plugins for r in p.routes if r.kind == "schedule"]
        self._store = store
        self._dispatcher = dispatcher
        self._supervisor = supervisor
        self._holder = holder
        self.runs = 0

    async def run(self) -> None:
        if not self.routes:
            return
        async with asyncio.TaskGroup() as group:
            for route in self.routes:
                group.create_task(self._loop(route), name=f"schedule:{route.plugin}.{route.name}")

    async def _loop(self, route: Route) -> None:
        assert route.every is not None
        every = route.every
        while True:
            slot = int(time.time() // every) + 1
            await asyncio.sleep(max(0.0, slot * every - time.time()))
            teams = self._supervisor.connected()
            if not teams:
                continue
            name = f"schedule:{route.plugin}.{route.name}:{slot}"
            try:
                won = await self._store.try_lock(name, self._holder, int(every * 2000))
            except StoreUnavailable:
                log.warning(
                    "schedule.skipped", plugin=route.plugin, handler=route.name, reason="store_unavailable"
                )
                continue
            if won:
                self.runs += 1
                team = sorted(teams)[0]
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
                    raw={"type": "schedule", "slot": slot},
                )
                self._dispatcher.run_now(route, event, team)
