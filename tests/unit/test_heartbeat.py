"""Team heartbeats: renewed, retried soon after the store refused, given up at once on a stop."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

from gridtest import eventually, wait_until

from gridbot.heartbeat import HeartbeatKeeper
from gridbot.store import MemoryStore, StoreUnavailable


class Refusing(MemoryStore):
    """Refuses renewals while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.refused = 0

    async def renew_alive(self, teams: Sequence[str], holder: str, ttl_ms: int) -> None:
        if self.down:
            self.refused += 1
            raise StoreUnavailable("connection refused")
        await super().renew_alive(teams, holder, ttl_ms)


async def test_a_refused_renewal_is_retried_within_half_a_second_not_a_third_of_the_ttl() -> None:
    """With a 30 s TTL the next round would be 10 s away: a short outage must not make every
    heartbeat lapse (and every standby answer at once for no reason)."""
    store = Refusing()
    connected: list[str] = ["T1"]

    def teams(keys: Collection[str] | None) -> dict[str, list[str]]:
        return {"proc-a": list(connected)}

    keeper = HeartbeatKeeper(store, ("proc-a",), 30.0, teams)
    task = asyncio.create_task(keeper.run(), name="test:heartbeats")
    try:
        await wait_until(lambda: store.refused >= 1, 2, "the first renewal refused")
        store.down = False

        async def renewed() -> set[str] | None:
            return await store.alive(["T1"]) or None

        async def released() -> bool | None:
            return True if not await store.alive(["T1"]) else None

        await eventually(renewed, 2)
        keeper.release("T1")  # the team stopped for good
        connected.clear()
        await eventually(released, 1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
