"""Team heartbeats: this process's word, in the store, that a team's socket is up.

Renewed for every connected team every ``lease_ttl / 3`` (a dead socket's lapses after
``lease_ttl``), at once for a connection that just came up (standby teams stop holding its events
sooner), and given up at once for a team that stopped (no process waits out the TTL). One loop
writes them all, so a release always comes after any renewal that was in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection

from gridbot.logs import get_logger
from gridbot.store import Store, StoreUnavailable

log = get_logger("gridbot.supervisor")

# The connected teams of the given connection keys (None: of every connection), by the holder
# their heartbeat is renewed as (this process, or every replica in common for Events API teams).
Connected = Callable[[Collection[str] | None], dict[str, list[str]]]

RETRY = 0.5  # seconds between renewals while the store refuses them


class HeartbeatKeeper:
    def __init__(self, store: Store, holders: Collection[str], ttl: float, connected: Connected) -> None:
        self._store = store
        self._holders = tuple(holders)  # every holder this process renews as
        self._ttl = ttl
        self._connected = connected
        self._now: set[str] = set()  # connections that just came up
        self._release: set[str] = set()  # teams that stopped
        self._failing = False
        self._wake = asyncio.Event()

    def up(self, connection: str) -> None:
        """``connection`` just came up: renew its teams' heartbeats now."""
        self._now.add(connection)
        self._wake.set()

    def release(self, team_id: str) -> None:
        """``team_id`` stopped for good: give its heartbeat up now."""
        self._release.add(team_id)
        self._wake.set()

    async def run(self) -> None:
        """A renewal the store refused is retried within half a second, not a third of the TTL
        later: a short Redis outage must not let every heartbeat lapse."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(due):
                    await self._wake.wait()
            self._wake.clear()
            every = loop.time() >= due
            keys, self._now = (None if every else self._now), set()
            released, self._release = self._release, set()
            beats = self._connected(keys)
            try:
                if released:
                    for holder in self._holders:  # (a release by another holder changes nothing)
                        await self._store.release_alive(sorted(released), holder)
                    released = set()
                for holder, teams in beats.items():
                    if teams:
                        await self._store.renew_alive(teams, holder, int(self._ttl * 1000))
                if self._failing:
                    log.info("heartbeat.renewed", teams=sum(len(t) for t in beats.values()))
                self._failing = False
            except StoreUnavailable as exc:
                self._release |= released
                if not self._failing:
                    log.warning("heartbeat.renew_failed", error=str(exc))
                self._failing = True
            if self._failing:
                retry = loop.time() + min(RETRY, self._ttl / 3)
                due = retry if every else min(due, retry)
            elif every:
                due = loop.time() + self._ttl / 3
