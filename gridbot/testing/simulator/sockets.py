"""One server-side websocket of the simulator, shared by RTM and Socket Mode."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
from aiohttp import WSMsgType, web

_ids = itertools.count(1)


class SimSocket:
    """A connected client socket. Sends never raise: a dead socket just stops receiving."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, token: str) -> None:
        self.id = next(_ids)
        self.ws = ws
        self.token = token
        self._transport = request.transport
        self.closed = False

    async def send(self, data: bytes) -> bool:
        """Write one already-serialised JSON text frame."""
        if self.closed or self.ws.closed:
            return False
        try:
            await self.ws.send_frame(data, WSMsgType.TEXT)
        except (ConnectionError, RuntimeError):
            self.closed = True
            return False
        return True

    async def send_json(self, obj: dict[str, Any]) -> bool:
        return await self.send(orjson.dumps(obj))

    async def send_raw(self, data: str | bytes) -> None:
        """Anything at all, as a text frame (str) or a binary frame (bytes)."""
        if self.closed or self.ws.closed:
            return
        try:
            if isinstance(data, bytes):
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(data)
        except (ConnectionError, RuntimeError):
            self.closed = True

    def abort(self) -> None:
        """Cut the TCP connection with no close frame, like a network failure."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    async def close(self, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        self.closed = True
        if not self.ws.closed:
            try:
                await asyncio.wait_for(self.ws.close(), timeout=1.0)
            except (ConnectionError, RuntimeError, TimeoutError):
                self.abort()


def parse_frame(data: str) -> dict[str, Any] | None:
    """A client frame as a JSON object, or None for anything else (which is ignored)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
