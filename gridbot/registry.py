"""Process membership: every gridbot process sharing a store announces itself with a TTL.

Ownership (:mod:`gridbot.ownership`) computes fair shares from the live processes listed here, and
``gridbot status`` shows them::

    for proc in await Registry(store).processes():
        print(proc.instance, proc.state, proc.connections, proc.teams)

A process that dies without leaving drops off the list ``ttl`` seconds after its last announcement
(Redis's own clock decides, so clock skew between hosts does not matter).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gridbot.store import Store

# The document's field for the connections a process owns keeps its first name, so that processes
# of different versions read each other's documents during a rolling upgrade.
_OWNED = "installations"

SERVING = "serving"
DRAINING = "draining"  # SIGTERM: handing its connections over; takes nothing new


@dataclass(frozen=True)
class ProcessInfo:
    """One live process, as it last announced itself."""

    instance: str  # the runtime's instance id (host:pid:random)
    host: str
    pid: int
    state: str  # "serving" or "draining"
    started_at: float  # unix time
    seen_at: float  # unix time of its last announcement
    connections: tuple[str, ...]  # connection keys it owns (see config.connection_key)
    teams: tuple[str, ...]  # team ids it serves (authenticated, socket up or coming up)
    configured: tuple[str, ...]  # connection keys in its config (it may own any of these)

    @classmethod
    def from_document(cls, instance: str, doc: Mapping[str, Any]) -> ProcessInfo:
        return cls(
            instance=instance,
            host=str(doc.get("host", "")),
            pid=int(doc.get("pid", 0)),
            state=str(doc.get("state", SERVING)),
            started_at=float(doc.get("started_at", 0.0)),
            seen_at=float(doc.get("seen_at", 0.0)),
            connections=tuple(doc.get(_OWNED, ())),
            teams=tuple(doc.get("teams", ())),
            configured=tuple(doc.get("configured", ())),
        )


class Registry:
    """Announce this process (``instance``) and list the live ones; a reader needs no instance."""

    def __init__(self, store: Store, instance: str = "", *, ttl: float = 6.0) -> None:
        self.store = store
        self.instance = instance
        self.ttl = ttl
        self._started_at = time.time()

    async def announce(
        self,
        *,
        state: str,
        connections: Iterable[str],
        teams: Iterable[str],
        configured: Iterable[str],
    ) -> None:
        """Say "I am alive" for ``ttl`` seconds, with what this process owns and serves."""
        doc = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "state": state,
            "started_at": self._started_at,
            "seen_at": time.time(),
            _OWNED: sorted(connections),
            "teams": sorted(teams),
            "configured": sorted(configured),
        }
        await self.store.announce_process(self.instance, doc, int(self.ttl * 1000))

    async def processes(self) -> list[ProcessInfo]:
        """Every live process, ordered by instance id."""
        found = await self.store.processes()
        return [ProcessInfo.from_document(i, doc) for i, doc in sorted(found.items())]

    async def leave(self) -> None:
        await self.store.leave_process(self.instance)
