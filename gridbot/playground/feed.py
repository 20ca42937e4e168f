"""The live feed: numbered updates for the page, a bounded history, and one queue per listener."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

HISTORY = 300  # timeline entries a page sees when it (re)connects
QUEUE = 2_000  # updates a slow page may fall behind by before it is sent a fresh snapshot


class Feed:
    """Publish updates (``{"seq", "kind", "at", ...}``) to every listening page.

    Kinds: ``message`` (one message's story, whole, each time it changes), ``state`` (teams,
    elections, counters), ``timeline`` (elections, takeovers, faults, team and store changes).
    Only the timeline is kept as history: a message's story and the state are snapshots already.
    """

    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self.timeline: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._listeners: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.last_seq = 0

    def publish(self, kind: str, **data: Any) -> dict[str, Any]:
        self.last_seq = next(self._seq)
        item = {"seq": self.last_seq, "kind": kind, "at": round(time.time(), 3), **data}
        if kind == "timeline":
            self.timeline.append(item)
        for queue in list(self._listeners):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:  # too slow: end its stream; it reconnects to a snapshot
                self._listeners.discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)
        return item

    def note(self, text: str, *, level: str = "info", **data: Any) -> dict[str, Any]:
        """A timeline entry: ``text`` is what the page prints."""
        return self.publish("timeline", text=text, level=level, **data)

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        """A queue of every update from now on; ``None`` in it means the stream must end."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE)
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def close(self) -> None:
        """End every stream (shutdown)."""
        for queue in list(self._listeners):
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
        self._listeners.clear()
