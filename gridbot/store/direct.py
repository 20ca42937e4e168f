"""A connection of the store's own for its hottest calls: script batches sent without redis-py's
per-command machinery.

redis-py's ``execute_command`` takes a pooled connection, wraps the call in its retry helper and
its observability hooks, and gives the connection back, every call; on the Events API bench that
was about a tenth of gridbot's CPU per event, more than the round trip's own socket work. Here one
connection is taken from the client's pool once and kept: a batch is packed, written in one go
and its replies read back, nothing else.

It is a fast path, never a second policy: anything unusual (an error reply such as NOSCRIPT or
READONLY, a broken or slow connection) drops the connection, and the caller runs the same batch
on redis-py's ordinary path, with its retries, script loading and error mapping, as it did before
this existed. One batch at a time: while one is in flight, a concurrent caller takes the
ordinary path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What sends a batch back to the ordinary path: the connection is dropped first.
_FALLBACK = (RedisConnectionError, RedisTimeoutError, ResponseError, OSError)


def pack(sha: str, calls: Sequence[tuple[list[str], list[Any]]]) -> bytes:
    """EVALSHA of each call in RESP, as redis-py's encoder would write its strings and integers
    (its per-argument encoder was a third of the batch's packing cost)."""
    out: list[bytes] = []
    for keys, args in calls:
        parts = [b"EVALSHA", sha.encode(), b"%d" % len(keys)]
        parts += [k.encode() for k in keys]
        parts += [a if type(a) is bytes else str(a).encode() for a in args]
        out.append(b"*%d\r\n" % len(parts))
        for part in parts:
            out += (b"$%d\r\n" % len(part), part, b"\r\n")
    return b"".join(out)


class Direct:
    """EVALSHA batches on one kept connection; :meth:`scripts` returns None to mean "take the
    ordinary path"."""

    __slots__ = ("_conn", "_pool", "_timeout", "busy")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._conn: Any = None
        self._timeout: float | None = None  # the connection's own socket_timeout
        self.busy = False

    async def scripts(self, sha: str, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any] | None:
        """One reply per ``(keys, args)``, in order, or None (nothing is known to have run: the
        caller's ordinary path runs the batch, as redis-py's own retry would have)."""
        self.busy = True
        conn = self._conn
        try:
            if conn is None:
                conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
                # One deadline for the whole batch here, not redis-py's per write and per read:
                # on Python 3.11 its write deadline (asyncio.wait_for) made a task per batch,
                # two more loop iterations of the six a batch took (restored before release).
                self._timeout, conn.socket_timeout = conn.socket_timeout, None
                self._conn = conn
            async with asyncio.timeout(self._timeout):
                await conn.send_packed_command(pack(sha, calls), check_health=False)
                return [await conn.read_response() for _ in calls]
        except (*_FALLBACK, TimeoutError):
            await self._drop()
            return None
        except BaseException:  # cancelled mid-batch: its replies would answer the next batch
            await self._drop()
            raise
        finally:
            self.busy = False

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.socket_timeout = self._timeout
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

    async def close(self) -> None:
        await asyncio.shield(self._drop())
