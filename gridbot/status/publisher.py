"""The daemon's status publisher: its status document in the store, rewritten every few seconds.

The document expires after three missed writes, so a process that dies drops out of
``gridbot status`` by itself; a clean stop withdraws it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from gridbot.logs import get_logger
from gridbot.status.snapshot import process_document
from gridbot.store import StoreUnavailable

if TYPE_CHECKING:
    from gridbot.runtime import Runtime

log = get_logger("gridbot.status")


class StatusPublisher:
    """Writes :func:`process_document` every ``interval`` s (TTL 3x), samples store latency."""

    def __init__(self, rt: Runtime, interval: float) -> None:
        self._rt = rt
        self.interval = interval

    async def run(self) -> None:
        try:
            while True:
                await self.publish_once()
                await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):  # a dead store must not block shutdown
                async with asyncio.timeout(2):
                    await self._rt.store.withdraw_status(self._rt.instance_id)

    async def publish_once(self) -> None:
        store = self._rt.store
        try:
            started = time.perf_counter()
            await store.ping()
            self._rt.metrics.observe_store(time.perf_counter() - started)
            await store.publish_status(self._rt.instance_id, process_document(self._rt), self.interval * 3)
        except StoreUnavailable as exc:
            log.warning("status.publish_failed", error=str(exc))
