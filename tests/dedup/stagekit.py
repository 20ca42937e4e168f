"""The dedup stage assembled as the runtime assembles it (an intake and its decider), driven the
way a link drives it, for the tests of ``gridbot.dedup``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gridbot.bots import Bots
from gridbot.dedup import Counters, Decider, Intake
from gridbot.election import Elector
from gridbot.events import Event
from gridbot.store import Store


class Stage:
    def __init__(
        self,
        store: Store,
        elector: Elector,
        dispatch: Callable[[Event, str, str], None],
        *,
        bots: Bots,
        max_buffer: int = 50_000,
        high_water: int = 250,
        memory: int = 200_000,
        **decider: Any,
    ) -> None:
        self.store = store
        self.intake = Intake(bots, max_buffer=max_buffer, high_water=high_water, memory=memory)
        self.decider = Decider(self.intake, store, elector, dispatch, bots=bots, **decider)

    def offer(self, frame: dict[str, Any], team: str, enterprise_id: str | None = "E1") -> None:
        """What an RTM link does with a frame ``team`` received."""
        self.intake.offer(frame, team, enterprise_id, (team,))

    def submit(self, event: Event, covers: tuple[str, ...]) -> None:
        """Offer the frame ``event`` was made from, as its team received it."""
        self.intake.offer(dict(event.raw), event.team_id, event.enterprise_id, covers, event.event_id)

    @property
    def counters(self) -> Counters:
        return self.intake.counters

    @property
    def backlog(self) -> int:
        return self.decider.backlog

    @property
    def store_ok(self) -> bool:
        return self.decider.store_ok

    async def run(self) -> None:
        await self.decider.run()

    async def wait_idle(self, timeout: float) -> bool:
        return await self.decider.wait_idle(timeout)
