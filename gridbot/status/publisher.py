"""The daemon's status publisher: its status document in the store, rewritten every few seconds.

The document expires after three missed writes, so a process that dies drops out of
``gridbot status`` by itself; a clean stop withdraws it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from gridbot.http import OpsServer
from gridbot.logs import get_logger
from gridbot.metrics import Metrics
from gridbot.status.snapshot import process_document
from gridbot.status.view import RuntimeView
from gridbot.store import StoreUnavailable

log = get_logger("gridbot.status")


class StatusPublisher:
    """Writes :func:`process_document` every ``interval`` s (TTL 3x), samples store latency."""

    def __init__(
        self, view: RuntimeView, metrics: Metrics, interval: float, *, http: OpsServer | None = None
    ) -> None:
        self._view = view
        self._metrics = metrics
        self._http = http  # its address goes in the document
        self.interval = interval

    async def run(self) -> None:
        try:
            while True:
                await self.publish_once()
                await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):  # a dead store must not block shutdown
                async with asyncio.timeout(2):
                    await self._view.store.withdraw_status(self._view.instance_id)

    async def publish_once(self) -> None:
        view, store = self._view, self._view.store
        address = self._http.address if self._http is not None else None
        try:
            started = time.perf_counter()
            await store.ping()
            self._metrics.observe_store(time.perf_counter() - started)
            await store.publish_status(view.instance_id, process_document(view, address), self.interval * 3)
        except StoreUnavailable as exc:
            log.warning("status.publish_failed", error=str(exc))
