"""A real websocket full of hostile frames: the read loop drops them and reads on.

The peer here is a tiny aiohttp server of the test's own, because it must write what the
simulator's API cannot: a *text* frame that is not UTF-8 (RFC 6455 says the receiver fails that
connection, so the link must reconnect, not die).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType, web
from gridtest import CollectingIntake, serving, wait_until

from gridbot.config import RuntimeConfig, TeamConfig
from gridbot.events import MAX_FRAME_BYTES, Event
from gridbot.secrets import Secret
from gridbot.team import Team, TeamState
from gridbot.transport.rtm import RtmLink

GOOD = {"type": "message", "channel": "C1", "ts": "1.000001", "user": "W1", "text": "first"}
AFTER = {"type": "message", "channel": "C1", "ts": "2.000001", "user": "W1", "text": "after reconnect"}

HOSTILE_TEXT: list[str] = [
    "{not json",
    "[1, 2, 3]",
    '"just a string"',
    "[" * 5000 + "]" * 5000,
    '{"type": 5}',
    '{"type": "message", "channel": ["C1"], "ts": "1.0"}',
    '{"type": "message", "channel": "C1", "ts": "1.0", "text": {"nested": true}}',
    '{"type": "message", "channel": "C1", "ts": "1.0", "user": {"id": 7}}',
    '{"type": "message", "channel": "C1", "ts": "1.0", "user_id_mapping_old_to_new": "x", "user": ["U1"]}',
    '{"type": "pong", "reply_to": "not a number"}',
    '{"type": "error", "error": {"code": [1, 2]}}',
    "x" * (MAX_FRAME_BYTES + 10),
    '{"type": "message", "channel": "C1", "ts": "1.0", "text": "' + "é" * (MAX_FRAME_BYTES // 2) + '"}',
]


class Peer:
    """Serves RTM-like sockets: the first gets garbage then a non-UTF-8 text frame."""

    def __init__(self) -> None:
        self.connections = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.connections += 1
        await ws.send_str('{"type": "hello"}')
        if self.connections == 1:
            for text in HOSTILE_TEXT:
                await ws.send_str(text)
            await ws.send_bytes(b"\x00\xff binary")
            await ws.send_str(orjson.dumps(GOOD).decode())
            await ws.send_frame(b"\xff\xfe not utf-8", WSMsgType.TEXT)
        else:
            await ws.send_str(orjson.dumps(AFTER).decode())
        async for _ in ws:
            pass
        return ws


class Connector:
    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    async def rtm_connect(self) -> dict[str, Any]:
        return {"url": self.peer.url}


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    peer = Peer()
    app = web.Application()
    app.router.add_get("/ws", peer.handle)
    async with serving(app) as url:
        peer.url = f"{url}/ws"
        yield peer


async def test_hostile_frames_are_dropped_and_invalid_utf8_costs_one_reconnect(peer: Peer) -> None:
    team = Team(index=0, config=TeamConfig(transport="rtm", bot_token=Secret("xoxb-sim-hostile")))
    team.team_id = "T1"
    events: list[Event] = []
    async with aiohttp.ClientSession() as session:
        link = RtmLink(
            team,
            connector=Connector(peer),  # type: ignore[arg-type]
            intake=CollectingIntake(events),
            session=session,
            runtime=RuntimeConfig(ping_interval=30, hello_timeout=5),
        )
        task = asyncio.create_task(link.run(), name="test:rtm-link")
        try:
            await wait_until(lambda: len(events) >= 2, 20, "the good frames from both sockets")
            assert [e.text for e in events] == ["first", "after reconnect"]
            # every hostile frame and the binary one, but not the pong and error it can read past
            assert link.frames_dropped == len(HOSTILE_TEXT) - 2 + 1
            assert link.reconnects == 1  # the non-UTF-8 text frame failed that socket, and only that
            assert link.state is TeamState.CONNECTED
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
