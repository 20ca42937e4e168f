"""The ``floor`` mode of the ``http`` bench: what any Python asyncio HTTP server pays per request.

A bare :class:`asyncio.Protocol` on the default event loop that reads each request (the end of
its headers, its ``Content-Length``, its body) and answers ``HTTP/1.1 200 OK`` with an empty
body. No signature check, no JSON, no Redis, no logging, no handler: the socket reads and writes,
the loop's wake-ups and the least parsing an HTTP server can do. gridbot and slack_bolt both pay
this much per event before their own work; the bench subtracts it to show what each adds.
"""

from __future__ import annotations

import asyncio
from typing import cast

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class FloorProtocol(asyncio.Protocol):
    """One connection; answers every complete request in what it has read, in order."""

    def __init__(self, server: FloorServer) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        answers = 0
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            length = content_length(bytes(buf[:end]))
            if len(buf) < end + 4 + length:
                break
            del buf[: end + 4 + length]
            answers += 1
        if answers:
            self.server.count += answers
            assert self.transport is not None
            self.transport.write(ANSWER * answers)


def header(head: bytes, name: bytes) -> bytes | None:
    """The value of the header ``name`` (lower case) in a request's ``head``, or None."""
    at = head.lower().find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    stop = head.find(b"\r\n", start)
    return head[start : stop if stop >= 0 else len(head)].strip()


def content_length(head: bytes) -> int:
    return int(header(head, b"content-length") or 0)


class FloorServer:
    """The listening socket and the count of requests answered."""

    def __init__(self) -> None:
        self.count = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: FloorProtocol(self), "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
