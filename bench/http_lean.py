"""The ``lean`` mode of the ``http`` bench: the least a Python asyncio server can do for the contract.

What the Events API contract itself asks of a replica, and nothing more: read each request (as
:mod:`bench.http_floor` does), check its timestamp and its v0 signature (an HMAC keyed once, as
gridbot's :meth:`~gridbot.transport.http_apps.EventsApp.verify` does), parse its JSON, claim its
event in Redis (the requests of each 2 ms window in one ``EVALSHA``: ``SET NX EX`` per claim key,
gridbot's key layout and window), answer 200 once the claim is in, then call a no-op handler for
each event won. Everything runs in protocol callbacks on one Redis connection of its own: no task,
no future, no queue, no routing to a team, no election, no dispatcher, no metrics, no log line.

It is not a server anyone should run (a bad request raises; Redis going away ends it); it is a
ceiling: the CPU per event that no Python implementation of "verified, claimed once, acked after
the claim" can beat on this event loop, so the bench can say how much of gridbot's cost is its
own features and how much the contract's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import orjson
import redis.asyncio

from .http_floor import ANSWER, content_length, header

WINDOW = 0.002  # gridbot's [events] batch_window default
CLAIM_ALL = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, '1', 'NX', 'EX', ARGV[1]) then out[i] = 1 else out[i] = 0 end
end
return out
"""


class LeanServer:
    """The listener, the Redis connection and the window of requests waiting for their claim."""

    def __init__(self, secret: str, redis_url: str, prefix: str, handler: Callable[[str], None]) -> None:
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self._redis_url = redis_url
        self._prefix = prefix
        self._handler = handler
        self._window: list[tuple[Request, str]] = []
        self._redis: RedisReplies | None = None
        self._sha = b""
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        client = redis.asyncio.Redis.from_url(self._redis_url)
        try:
            self._sha = str(await client.script_load(CLAIM_ALL)).encode()
        finally:
            await client.aclose()
        pool = redis.asyncio.ConnectionPool.from_url(self._redis_url)
        host, port = pool.connection_kwargs.get("host", "127.0.0.1"), pool.connection_kwargs.get("port", 6379)
        await pool.aclose()
        loop = asyncio.get_running_loop()
        _, self._redis = await loop.create_connection(RedisReplies, host, port)
        self._server = await loop.create_server(lambda: Request(self), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._redis is not None and self._redis.transport is not None:
            self._redis.transport.close()

    def request(self, conn: Request, head: bytes, body: bytes) -> None:
        timestamp, signature = (
            _header(head, b"x-slack-request-timestamp"),
            _header(head, b"x-slack-signature"),
        )
        if abs(time.time() - int(timestamp)) > 300:
            raise ValueError("stale timestamp")
        mac = self._mac.copy()
        mac.update(b"v0:" + timestamp + b":" + body)
        if not hmac.compare_digest(b"v0=" + mac.hexdigest().encode(), signature):
            raise ValueError("bad signature")
        event = orjson.loads(body)["event"]
        self._window.append((conn, f"{event['channel']}:{event['ts']}"))
        if len(self._window) == 1:
            asyncio.get_running_loop().call_later(WINDOW, self._claim)

    def _claim(self) -> None:
        window, self._window = self._window, []
        keys = [f"{self._prefix}:{{c:{m.split(':')[0]}}}:ev:{m}".encode() for _, m in window]
        parts = [b"EVALSHA", self._sha, b"%d" % len(keys), *keys, b"900"]
        out = [b"*%d\r\n" % len(parts)]
        for part in parts:
            out += (b"$%d\r\n" % len(part), part, b"\r\n")
        assert self._redis is not None and self._redis.transport is not None
        self._redis.waiting.append(lambda won: self._claimed(window, won))
        self._redis.transport.write(b"".join(out))

    def _claimed(self, window: list[tuple[Request, str]], won: list[bool]) -> None:
        for conn, _ in window:
            conn.transport.write(ANSWER)
        for (_, message), first in zip(window, won, strict=True):
            if first:
                self._handler(message)


class Request(asyncio.Protocol):
    """One client connection: hands each whole request to the server."""

    def __init__(self, server: LeanServer) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport = cast(asyncio.Transport, None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            head = bytes(buf[:end])
            total = end + 4 + content_length(head)
            if len(buf) < total:
                return
            body = bytes(buf[end + 4 : total])
            del buf[:total]
            self.server.request(self, head, body)


class RedisReplies(asyncio.Protocol):
    """The Redis connection: each reply (an array of integers) goes to the oldest waiting callback."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiting: deque[Callable[[list[bool]], Any]] = deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while self.waiting and buf:
            end = buf.find(b"\r\n")
            if end < 0:
                return
            if buf[:1] != b"*":
                raise RuntimeError(f"redis answered {bytes(buf[:end])!r}")
            at, won = end + 2, []
            for _ in range(int(buf[1:end])):
                stop = buf.find(b"\r\n", at)
                if stop < 0:
                    return
                won.append(buf[at + 1 : stop] == b"1")
                at = stop + 2
            del buf[:at]
            self.waiting.popleft()(won)


def _header(head: bytes, name: bytes) -> bytes:
    value = header(head, name)
    if value is None:
        raise ValueError(f"no {name.decode()} header")
    return value
