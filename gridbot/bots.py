"""The loop guard: messages written by any of our bot users are never dispatched.

Each process knows the bots of the teams it serves; the teams other processes serve come from the
store's roster of served teams. Every process adds its team to the roster *before* connecting the
team's socket, so by the time a bot can have posted anything, its identity is there: a message
from a bot we do not know triggers one refresh (at most one per second) before it is judged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gridbot.events import Event, stable_user
from gridbot.logs import get_logger
from gridbot.store import Store, StoreUnavailable

log = get_logger("gridbot.bots")


class Bots:
    def __init__(self, store: Store | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.user_ids: set[str] = set()
        self.bot_ids: set[str] = set()
        # bot user id -> the teams it is the bot of (one, or every team of an org-wide install)
        self._teams: dict[str, set[str]] = {}
        self._store = store
        self._clock = clock
        self._refreshed = float("-inf")

    def add(self, bot_user_id: str, bot_id: str, team_id: str = "") -> None:
        if bot_user_id:
            self.user_ids.add(bot_user_id)
            if team_id:
                self._teams.setdefault(bot_user_id, set()).add(team_id)
        if bot_id:
            self.bot_ids.add(bot_id)

    def teams_of(self, bot_user_id: object) -> set[str]:
        """The teams whose bot ``bot_user_id`` is (empty for anyone else)."""
        return set(self._teams.get(bot_user_id, ())) if isinstance(bot_user_id, str) else set()

    def authored(self, kind: object, bot_id: object, user: object) -> bool:
        """Did one of the bots we know write this? The one place that decides it."""
        return kind == "message" and (bot_id in self.bot_ids or user in self.user_ids)

    def wrote(self, event: Event) -> bool:
        """:meth:`authored`, asked of an event."""
        return self.authored(event.type, event.bot_id, event.user)

    def wrote_frame(self, frame: dict[str, Any]) -> bool:
        """:meth:`authored`, asked of a raw frame (a copy the dedup stage merged unparsed)."""
        user = stable_user(frame.get("user"), frame.get("user_id_mapping_old_to_new"))
        return self.authored(frame.get("type"), frame.get("bot_id"), user)

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
        for team_id, info in teams.items():
            self.add(str(info.get("bot_user_id") or ""), str(info.get("bot_id") or ""), team_id)
