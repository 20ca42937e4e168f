"""Names of the default org and a recording websocket client, shared by the simulator tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

T1, T2, T3 = "T0TEAM001", "T0TEAM002", "T0TEAM003"
BOT1, BOT2 = "xoxb-sim-T0TEAM001", "xoxb-sim-T0TEAM002"
APP, APP_TOKEN = "A0GRIDBOT1", "xapp-sim-A0GRIDBOT1"
SHARED = "C0SHARED1"
ALICE, BOB, CAROL, DAVE, ERIN = "W0ALICE01", "W0BOB0001", "W0CAROL01", "W0DAVE001", "W0ERIN001"


class WsClient:
    """A websocket client that records every frame; tests await frames matching a predicate."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.raw: list[str | bytes] = []  # frames that were not JSON objects
        self.closed = asyncio.Event()
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read(), name="test.ws.reader")

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        frame = orjson.loads(msg.data)
                    except orjson.JSONDecodeError:
                        frame = None
                    if isinstance(frame, dict):
                        self.frames.append(frame)
                    else:
                        self.raw.append(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.raw.append(msg.data)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    self.raw.append(f"error: {msg.data!r}")
                self._new.set()
        finally:
            self.closed.set()
            self._new.set()

    def of_type(self, type_: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [
            f
            for f in self.frames
            if f.get("type") == type_ and (subtype is None or f.get("subtype") == subtype)
        ]

    async def expect(self, pred: Callable[[dict[str, Any]], bool], within: float = 5.0) -> dict[str, Any]:
        """The first recorded frame matching ``pred``, waiting for it with a deadline."""
        deadline = time.monotonic() + within
        while True:
            for frame in self.frames:
                if pred(frame):
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.closed.is_set() and not self._new.is_set()):
                raise AssertionError(f"no matching frame; got {self.frames!r}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), remaining)

    async def wait_closed(self, within: float = 5.0) -> None:
        await asyncio.wait_for(self.closed.wait(), within)

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send_str(orjson.dumps(obj).decode())

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def message_from(ts: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == "message" and f.get("ts") == ts
