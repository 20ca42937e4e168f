"""Ending owned tasks for sure.

Python 3.11's ``asyncio.wait_for`` (used inside redis-py) can swallow a cancellation that races
a completing operation, so a task cancelled once may carry on: an endless loop then never ends and
``gather`` on it never returns. Every shutdown path goes through :func:`cancel_and_wait`, which
cancels again until the tasks end or the deadline passes, and says which ones it gave up on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from gridbot.logs import get_logger

log = get_logger("gridbot.tasks")


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], timeout: float = 5.0) -> set[asyncio.Task[Any]]:
    """Cancel ``tasks`` and wait for them, re-cancelling every 0.1 s; the ones still running."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(0.1, remaining))
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: an error on the way out was logged where it happened
    if pending:
        log.error("shutdown.tasks_stuck", tasks=sorted(t.get_name() for t in pending))
    return pending
