"""Socket Mode: up to 10 sockets per app, one socket per envelope, acks and redelivery.

slack-protocol-notes.md C: an envelope is acked with ``{"envelope_id"}`` "on the same socket,
within 3 s"; an ack on any other socket does not count, and the envelope is redelivered
(``retry_attempt`` + 1, about 3 tries, "possibly on another socket"). ``disconnect`` ``warning``:
"the socket will close in about 10 s".
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from .model import App
from .records import Ack, Recent, SentEnvelope
from .sockets import SimSocket, parse_frame
from .state import OrgState

MAX_SOCKETS = 10
MAX_RETRIES = 3
DEBUG_INFO = {"host": "applink-sim", "build_number": 1, "approximate_connection_time": 18060}


class SmSocket(SimSocket):
    def __init__(self, ws: web.WebSocketResponse, request: web.Request, token: str, app: App) -> None:
        super().__init__(ws, request, token)
        self.app = app


@dataclass
class _Pending:
    app_id: str
    envelope_id: str
    event_id: str
    payload: dict[str, Any]
    attempt: int
    socket_id: int | None = None  # the socket that carried it: the only one whose ack counts
    timer: asyncio.TimerHandle | None = None


class SocketModeHub:
    """Open Socket Mode sockets by app, and every envelope awaiting its ack.

    ``wanted(payload)`` says whether an envelope may still be (re)delivered: not once the
    installation it is authorized for was revoked or uninstalled.
    """

    def __init__(
        self,
        state: OrgState,
        rng: random.Random,
        ack_timeout: float,
        sent: Recent[SentEnvelope],
        acks: Recent[Ack],
        wanted: Callable[[dict[str, Any]], bool] = lambda _payload: True,
    ) -> None:
        self._state = state
        self._rng = rng
        self.ack_timeout = ack_timeout
        self.by_app: dict[str, list[SmSocket]] = defaultdict(list)
        self.sent = sent
        self.acks = acks
        self._wanted = wanted
        self._pending: dict[str, _Pending] = {}
        # slash_commands / interactive envelopes: never redelivered; the ack carries the answer
        self._interactive: dict[str, tuple[int, asyncio.Future[Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def sockets(self, app: str | None = None) -> list[SmSocket]:
        if app is not None:
            return list(self.by_app.get(app, ()))
        return [s for socks in self.by_app.values() for s in socks]

    @property
    def unacked(self) -> int:
        """Envelopes waiting for their ack (or their next redelivery)."""
        return len(self._pending)

    async def deliver(self, app_id: str, payload: dict[str, Any]) -> str:
        """Send a new events_api envelope to one open socket of the app; returns its event_id."""
        event_id = payload["event_id"]
        await self._send(_Pending(app_id, str(uuid.uuid4()), event_id, payload, attempt=0))
        return str(event_id)

    async def _send(self, pending: _Pending) -> None:
        envelope = {
            "envelope_id": pending.envelope_id,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": pending.attempt,
            "retry_reason": "timeout" if pending.attempt else "",
            "payload": pending.payload,
        }
        data = orjson.dumps(envelope)
        self._pending[pending.envelope_id] = pending
        # An app with no open socket still has its envelope retried, as Slack retries delivery.
        open_socks = [s for s in self.by_app.get(pending.app_id, ()) if not s.closed]
        if open_socks:
            sock = self._rng.choice(open_socks)
            if await sock.send(data):
                pending.socket_id = sock.id
                self.sent.append(
                    SentEnvelope(
                        pending.app_id,
                        pending.envelope_id,
                        pending.event_id,
                        pending.attempt,
                        sock.id,
                        pending.payload,
                        time.time(),
                    )
                )
        loop = asyncio.get_running_loop()
        pending.timer = loop.call_later(self.ack_timeout, self._expire, pending.envelope_id)

    def _expire(self, envelope_id: str) -> None:
        pending = self._pending.pop(envelope_id, None)
        if pending is None or pending.attempt >= MAX_RETRIES or not self._wanted(pending.payload):
            return
        retry = _Pending(
            pending.app_id,
            str(uuid.uuid4()),
            pending.event_id,
            pending.payload,
            attempt=pending.attempt + 1,
        )
        task = asyncio.get_running_loop().create_task(
            self._send(retry), name=f"sim.socket_mode.redeliver.{retry.event_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver_interactive(
        self, app_id: str, kind: str, payload: dict[str, Any], *, avoid: int | None = None
    ) -> tuple[str, asyncio.Future[Any], int] | None:
        """Send one ``slash_commands`` / ``interactive`` envelope (``accepts_response_payload``) to
        one open socket of the app: its ack's ``payload`` resolves the future (None: empty).
        They are never redelivered (platform-2026.md, "Interactivity": "They are not retried: an
        un-acked one fails for the user"). None when the app has no open socket."""
        socks = [s for s in self.by_app.get(app_id, ()) if not s.closed]
        if not socks:
            return None
        sock = self._rng.choice([s for s in socks if s.id != avoid] or socks)
        envelope_id = str(uuid.uuid4())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._interactive[envelope_id] = (sock.id, future)
        envelope = {"envelope_id": envelope_id, "type": kind, "accepts_response_payload": True}
        envelope["payload"] = payload
        if not await sock.send(orjson.dumps(envelope)):
            del self._interactive[envelope_id]
            return None
        return envelope_id, future, sock.id

    def forget(self, envelope_id: str) -> None:
        """An interactive envelope's 3 s are over: a later ack counts for nothing."""
        self._interactive.pop(envelope_id, None)

    def _ack(self, sock: SmSocket, envelope_id: str, payload: Any = None) -> None:
        waiting = self._interactive.get(envelope_id)
        if waiting is not None and waiting[0] == sock.id:
            del self._interactive[envelope_id]
            if not waiting[1].done():
                waiting[1].set_result(payload)
            self.acks.append(Ack(sock.app.id, envelope_id, None, sock.id, time.time(), True))
            return
        pending = self._pending.get(envelope_id)
        counted = pending is not None and pending.socket_id == sock.id
        if pending is not None and counted:
            del self._pending[envelope_id]
            if pending.timer is not None:
                pending.timer.cancel()
        event_id = pending.event_id if pending is not None else None
        self.acks.append(Ack(sock.app.id, envelope_id, event_id, sock.id, time.time(), counted))

    async def stop(self) -> None:
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def disconnect(self, sock: SmSocket, reason: str) -> None:
        await sock.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-sim"}})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        ticket = self._state.take_ticket(request.query.get("ticket", ""), "socket_mode")
        await ws.prepare(request)
        if ticket is None or ticket.app is None:
            await ws.close(code=4001, message=b"invalid ticket")
            return ws
        app = ticket.app
        sock = SmSocket(ws, request, ticket.token, app)
        socks = self.by_app[app.id]
        if len([s for s in socks if not s.closed]) >= MAX_SOCKETS:
            await self.disconnect(sock, "too_many_websockets")
            await sock.close()
            return ws
        socks.append(sock)
        try:
            await sock.send_json(
                {
                    "type": "hello",
                    "num_connections": len(socks),
                    "debug_info": DEBUG_INFO,
                    "connection_info": {"app_id": app.id},
                }
            )
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    frame = parse_frame(msg.data)
                    if frame is not None and isinstance(frame.get("envelope_id"), str):
                        self._ack(sock, frame["envelope_id"], frame.get("payload"))
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
        finally:
            sock.closed = True
            socks.remove(sock)
            if not socks:
                del self.by_app[app.id]
        return ws
