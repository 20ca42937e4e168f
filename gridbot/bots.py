"""The loop guard: messages written by any of our bot users are never dispatched.

Each process knows the bots of the teams it serves; the teams other processes serve come from the
store's registry of installations. Every process registers its team *before* connecting the team's
socket, so by the time a bot can have posted anything, its identity is in the registry: a message
from a bot we do not know triggers one refresh (at most one per second) before it is judged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gridbot.events import Event
from gridbot.logs import get_logger
from gridbot.store import Store, StoreUnavailable

log = get_logger("gridbot.bots")


class Bots:
    def __init__(self, store: Store | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.user_ids: set[str] = set()
        self.bot_ids: set[str] = set()
        self._store = store
        self._clock = clock
        self._refreshed = float("-inf")

    def add(self, bot_user_id: str, bot_id: str) -> None:
        if bot_user_id:
            self.user_ids.add(bot_user_id)
        if bot_id:
            self.bot_ids.add(bot_id)

    def wrote(self, event: Event) -> bool:
        """A message by one of the bots we know."""
        return self.authored(event.type, event.bot_id, event.user)

    def authored(self, kind: object, bot_id: object, user: object) -> bool:
        """:meth:`wrote` on the fields themselves (the dedup stage asks it of raw frames too)."""
        return kind == "message" and (bot_id in self.bot_ids or user in self.user_ids)

    def unknown_bot(self, event: Event) -> bool:
        """A bot message from a bot we do not know (maybe one served by another process)."""
        return event.type == "message" and event.bot_id is not None and event.bot_id not in self.bot_ids

    async def refresh(self) -> None:
        if self._store is None or self._clock() - self._refreshed < 1.0:
            return
        self._refreshed = self._clock()
        try:
            teams = await self._store.roster()
        except StoreUnavailable:
            return
        for info in teams.values():
            self.add(str(info.get("bot_user_id") or ""), str(info.get("bot_id") or ""))

    async def ours(self, event: Event) -> bool:
        """The loop guard's answer, refreshing from the registry for an unknown bot."""
        if self.wrote(event):
            return True
        if self.unknown_bot(event):
            await self.refresh()
            return self.wrote(event)
        return False
