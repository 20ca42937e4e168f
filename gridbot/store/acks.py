"""Recorded acks: the answer an interaction's winner gave, for its copies elsewhere to give too.

Slack applies whichever answer to an interactive payload it gets. When the same payload reaches
two processes (a balancer retries on another replica because the first answer got lost; a Socket
Mode envelope delivered on two sockets) the claim decides which one runs the handler, and the
copy that lost the claim must answer what the winner's handler answered (a ``view_submission``'s
``response_action: errors``), not an empty 200, which would close the modal. So the winner
records its ack (:meth:`record`) and a copy waits for it (:meth:`wait`), bounded by its own ack
deadline. The ack is JSON (``null``: empty); it may hold text a user typed, never a token, and
it is never logged.

**How a copy waits on Redis.** The record is a list of one element, under the claim's hash tag
(``Keys.ack``), written once with a short TTL by one script (``RECORD_ACK``). A copy first reads
it with a plain ``LINDEX``: if the ack is already recorded (the usual balancer retry: the winner
had answered, its answer was lost) that is one round trip, without a slot (below). Otherwise it
issues one ``BLMOVE ack ack LEFT LEFT timeout``: a list moved onto itself is a rotation, so the
element stays for every other waiter and for a copy that arrives later; Redis wakes the waiter
when the winner pushes, and answers nil at the timeout. No polling, and the same commands on a
standalone server, Sentinel and Cluster (one key, one slot); pub/sub would need a second kind of
connection (sharded on a Cluster) and a GET after subscribing to close the race, for nothing
BLMOVE does not already give.

A blocked command holds its connection for the wait (at most the ack deadline, 2.5 s), and the
store's pool is shared with the dedup stage's hot path: at most :data:`WAITS` waits block at
once, a copy beyond them queues for a slot within its own deadline. Copies are rare (a retry,
a redelivery), so the bound costs nothing in the normal case and keeps a burst of them from
taking the pool. The server's timeout is a little shorter than the caller's, so the answer is
normally Redis's nil, not a cancelled read (which would cost redis-py its connection).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable

from redis.commands.core import AsyncScript

from gridbot.store.connect import Client
from gridbot.store.keys import Keys

#: Blocking waits on one store at once (each holds one pooled connection while it blocks).
WAITS = 8
#: Seconds of a wait left to the client: Redis's own timeout answers this much earlier.
_MARGIN = 0.05


class RedisAckRecords:
    """:meth:`Store.record_ack` and :meth:`Store.wait_ack` on Redis (see the module's docstring)."""

    def __init__(self, client: Client, keys: Keys, script: AsyncScript, *, waits: int = WAITS) -> None:
        self._r = client
        self._keys = keys
        self._script = script
        self._slots = asyncio.Semaphore(waits)

    async def record(self, key: str, ack: str, ttl_ms: int) -> None:
        await self._script([self._keys.ack(key)], [ack, max(ttl_ms, 1)])

    async def wait(self, key: str, timeout: float) -> str | None:
        name = self._keys.ack(key)
        # What is there now first, with no slot: a copy whose winner has recorded (the usual
        # balancer retry) must not queue behind copies blocked on winners that never record
        # (a replica that died with requests in flight: every retry of them blocks here).
        found = _text(await self._r.lindex(name, 0))
        if found is not None or timeout <= _MARGIN:
            return found
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        try:
            async with asyncio.timeout_at(until), self._slots:
                left = until - loop.time() - _MARGIN
                if left <= 0:
                    return _text(await self._r.lindex(name, 0))
                # (Redis >= 6 takes a timeout in decimal seconds; redis-py's stub says int)
                return _text(await self._r.blmove(name, name, left, "LEFT", "LEFT"))  # type: ignore[arg-type]
        except TimeoutError:  # (asyncio's: the deadline passed waiting for a slot or a reply)
            return None


def _text(reply: bytes | str | None) -> str | None:
    return reply.decode() if isinstance(reply, bytes) else reply


class MemoryAckRecords:
    """The same, in one process: waiters are futures, woken by the record."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._acks: dict[str, tuple[str, float]] = {}  # key -> ack, until
        self._expiry: list[tuple[float, str]] = []  # a heap of (until, key)
        self._waiters: dict[str, set[asyncio.Future[str]]] = {}

    def _evict(self) -> float:
        now = self._clock()
        while self._expiry and self._expiry[0][0] <= now:
            until, key = heapq.heappop(self._expiry)
            if self._acks.get(key, ("", None))[1] == until:
                del self._acks[key]
        return now

    @property
    def waiting(self) -> int:
        """Copies waiting for a record now."""
        return sum(len(waiters) for waiters in self._waiters.values())

    def record(self, key: str, ack: str, ttl_ms: int) -> None:
        now = self._evict()
        if key in self._acks:  # the first record stays, as on Redis
            return
        until = now + max(ttl_ms, 1) / 1000
        self._acks[key] = (ack, until)
        heapq.heappush(self._expiry, (until, key))
        for waiter in self._waiters.pop(key, ()):
            if not waiter.done():
                waiter.set_result(ack)

    async def wait(self, key: str, timeout: float) -> str | None:
        self._evict()
        found = self._acks.get(key)
        if found is not None:
            return found[0]
        if timeout <= 0:
            return None
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, set())
        waiters.add(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            waiters.discard(waiter)
            if not waiters and self._waiters.get(key) is waiters:
                del self._waiters[key]
