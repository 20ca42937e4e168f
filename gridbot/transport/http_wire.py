"""The events listener's HTTP/1.1: one :class:`Conn` per client connection, strict parsing.

Only what Slack (or a load balancer in front) sends is accepted: a request line, headers of at
most 16 KiB, a ``Content-Length`` body (``Transfer-Encoding`` is refused with 411: with two ways
to frame a body, a proxy and this server could disagree where a request ends). Requests on one
connection are taken one at a time, in order (HTTP/1.1 pipelining answers in order anyway);
while one waits for its decision, reading pauses once 256 KiB more are buffered.

Every connection is in one of three phases: idle (closed after ``idle_timeout``), reading a
request (it must be whole within ``read_timeout`` of its first byte, else 408 and closed), or
waiting for its answer (the receiver's ack deadline applies).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, cast

from gridbot.config import EventsConfig
from gridbot.logs import get_logger
from gridbot.transport.http_metrics import Counts


class Waiter(Protocol):
    """A request waiting for its event's decision."""

    def abandon(self) -> None:
        """The client went away: the event stays queued, nobody is answered."""


class EventsReceiver(Protocol):
    """What a connection needs of the events listener (``gridbot.transport.http.EventsReceiver``)."""

    config: EventsConfig
    conns: set[Conn]
    counts: Counts
    draining: bool
    all_closed: asyncio.Event
    clock: Callable[[], float]

    def handle(self, conn: Conn, head: Head, body: bytes) -> None:
        """Take one whole request; answer it now or once its event is decided."""


log = get_logger("gridbot.events")

MAX_HEAD = 16 * 1024
MAX_HEADERS = 100
PAUSE_AT = 256 * 1024
STATUS_LINES = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
_OK_EMPTY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Head:
    """A parsed request line and headers (names lower-cased); ``end`` is where the body starts."""

    __slots__ = ("close", "content_type", "end", "expect_continue", "headers", "length", "method", "path")

    def __init__(
        self, method: str, path: str, headers: dict[str, str], end: int, length: int, close: bool
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.end = end
        self.length = length
        self.close = close
        self.content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        self.expect_continue = headers.get("expect", "").lower() == "100-continue"


def parse_head(raw: bytes, end: int) -> Head:
    """Parse ``raw`` (the bytes before the blank line); raises :class:`BadRequest`."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1].startswith("/"):
        raise BadRequest(400, "bad_request_line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(400, "bad_version")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, "too_many_headers")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name.strip(" \t") != name or " " in name:  # obs-fold, junk
            raise BadRequest(400, "bad_header")
        name, value = name.lower(), value.strip(" \t")
        if name in headers:
            if name in ("content-length", "transfer-encoding", "host") and headers[name] != value:
                raise BadRequest(400, "conflicting_headers")
            value = f"{headers[name]}, {value}"
        headers[name] = value
    if "transfer-encoding" in headers:
        raise BadRequest(411, "transfer_encoding")
    declared = headers.get("content-length")
    if declared is None:
        if method == "POST":
            raise BadRequest(411, "no_content_length")
        length = 0
    elif declared.isascii() and declared.isdigit() and len(declared) <= 12:
        length = int(declared)
    else:
        raise BadRequest(400, "bad_content_length")
    connection = headers.get("connection", "").lower()
    close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    return Head(method, target.split("?", 1)[0], headers, end, length, close)


def response(status: int, body: bytes = b"", content_type: str | None = None, close: bool = False) -> bytes:
    if status == 200 and not body and not close:
        return _OK_EMPTY
    head = f"HTTP/1.1 {status} {STATUS_LINES[status]}\r\nContent-Length: {len(body)}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    if close:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode() + body


class Conn(asyncio.Protocol):
    """One client connection of the events listener."""

    def __init__(self, receiver: EventsReceiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.head: Head | None = None  # the request being read, once its headers are parsed
        self.current: Head | None = None  # the request being answered
        self.waiter: Waiter | None = None
        self.deadline = 0.0
        self.reading = False
        self.closing = False
        self._scanned = 0
        self._paused = False
        self._processing = False

    # -- asyncio's side -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not isinstance(): uvloop's TCPTransport has the interface but not the base class.
        self.transport = cast(asyncio.Transport, transport)
        r = self.receiver
        if r.draining or len(r.conns) >= r.config.max_connections:
            self.refuse(503, "too_many_connections")
            return
        r.conns.add(self)
        r.counts.connections = len(r.conns)
        self.deadline = r.clock() + r.config.idle_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        r = self.receiver
        r.conns.discard(self)
        r.counts.connections = len(r.conns)
        if not r.conns:
            r.all_closed.set()
        self.closing = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            waiter.abandon()  # its event stays queued; Slack's retry will find it decided

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buf += data
        if self.waiter is not None:  # one request at a time: the next waits in the buffer
            if len(self.buf) > PAUSE_AT and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            return
        self.process()

    # -- requests -------------------------------------------------------------------------------

    def process(self) -> None:
        """Hand every whole request in the buffer to the receiver, one at a time."""
        r, buf = self.receiver, self.buf
        self._processing = True
        try:
            while buf and self.waiter is None and not self.closing:
                if not self.reading:
                    self.reading = True
                    self.deadline = r.clock() + r.config.read_timeout
                head = self.head
                if head is None:
                    end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
                    if end < 0 or end > MAX_HEAD:
                        self._scanned = len(buf)
                        if len(buf) > MAX_HEAD:
                            self.refuse(431, "headers_too_large")
                        return
                    try:
                        head = parse_head(bytes(buf[:end]), end + 4)
                    except BadRequest as exc:
                        self.refuse(exc.status, exc.reason)
                        return
                    if head.length > r.config.max_body_bytes:
                        self.refuse(413, "too_large", size=head.length)
                        return
                    self.head = head
                    if head.expect_continue and len(buf) < head.end + head.length and self.transport:
                        self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                total = head.end + head.length
                if len(buf) < total:
                    return
                body = bytes(buf[head.end : total])
                del buf[:total]
                self.head, self._scanned, self.reading, self.current = None, 0, False, head
                r.handle(self, head, body)
        finally:
            self._processing = False
        if self._paused and self.waiter is None and not self.closing and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def answer(
        self,
        status: int,
        reason: str,
        body: bytes = b"",
        content_type: str | None = None,
        *,
        count: bool = True,
        close: bool = False,
    ) -> int:
        """Write the answer to the current request; returns how many answers had this status and
        reason. The connection closes after it when asked to, while draining, or after an error."""
        r = self.receiver
        self.waiter = None
        total = r.counts.answered(status, reason) if count else 0
        transport = self.transport
        if self.closing or transport is None:
            return total
        head = self.current
        close = close or r.draining or (head is not None and head.close)
        transport.write(response(status, body, content_type, close))
        if close:
            self.closing = True
            transport.close()
        else:
            self.deadline = r.clock() + r.config.idle_timeout
            if not self._processing and (self.buf or self._paused):  # answered from the decider
                asyncio.get_running_loop().call_soon(self.process)
        return total

    def refuse(self, status: int, reason: str, **fields: Any) -> None:
        """Refuse the request: one counted ``events.refused`` line (never a body or a secret)."""
        total = self.answer(status, reason, close=True)
        log.warning("events.refused", status=status, reason=reason, refused_total=total, **fields)

    # -- the receiver's deadlines and drain ------------------------------------------------------

    def check(self, now: float) -> None:
        if self.waiter is not None or self.closing or now < self.deadline:
            return
        if self.reading:
            self.refuse(408, "slow_client")
        elif self.transport is not None:  # idle keep-alive: close quietly
            self.closing = True
            self.transport.close()

    def drain(self) -> None:
        """The listener stops: an idle connection closes now, a busy one after its answer."""
        if not self.reading and self.waiter is None and not self.buf and self.transport is not None:
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
