"""RTM websockets: one socket per installation token, hello, ping/pong, stall."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiohttp import WSMsgType, web

from .model import BotRef
from .sockets import SimSocket, parse_frame
from .state import OrgState


class RtmSocket(SimSocket):
    def __init__(self, ws: web.WebSocketResponse, request: web.Request, token: str, bot: BotRef) -> None:
        super().__init__(ws, request, token)
        self.bot = bot


class RtmRegistry:
    """Open RTM sockets by team, and the teams whose sockets are stalled."""

    def __init__(self, state: OrgState) -> None:
        self._state = state
        self.by_team: dict[str, list[RtmSocket]] = defaultdict(list)
        self.stalled: set[str] = set()

    def sockets(self, team: str | None = None) -> list[RtmSocket]:
        if team is not None:
            return list(self.by_team.get(team, ()))
        return [s for socks in self.by_team.values() for s in socks]

    def live(self, bot: BotRef) -> list[RtmSocket]:
        """Sockets of this installation that currently receive frames."""
        if bot.team in self.stalled:
            return []
        return [s for s in self.by_team.get(bot.team, ()) if s.bot.key == bot.key and not s.closed]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        ticket = self._state.take_ticket(request.query.get("ticket", ""), "rtm")
        await ws.prepare(request)
        if ticket is None or ticket.bot is None:
            # what Slack sends for a reused or expired rtm.connect URL
            await ws.send_json({"type": "error", "error": {"code": 1, "msg": "Socket URL has expired"}})
            await ws.close()
            return ws
        sock = RtmSocket(ws, request, ticket.token, ticket.bot)
        team = ticket.bot.team
        self.by_team[team].append(sock)
        try:
            await sock.send_json({"type": "hello"})
            async for msg in ws:
                if team in self.stalled:
                    continue
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(sock, msg.data)
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
        finally:
            sock.closed = True
            self.by_team[team].remove(sock)
        return ws

    async def _on_text(self, sock: RtmSocket, data: str) -> None:
        frame = parse_frame(data)
        if frame is None or frame.get("type") != "ping":
            return
        pong: dict[str, Any] = {k: v for k, v in frame.items() if k != "id"}
        pong["type"] = "pong"
        pong["reply_to"] = frame.get("id")
        await sock.send_json(pong)
