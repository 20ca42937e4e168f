"""A lean Slack stand-in for benchmarks, run in its own process: ``python -m bench.frameserver``.

It answers the few Web API methods gridbot (and slack_bolt) call on start (``auth.test``,
``rtm.connect``, ``apps.connections.open``, ``conversations.info``), serves RTM and Socket Mode
websockets, and floods them on command with frames that are serialised *and websocket-framed*
before the clock starts: a flood is a few large ``transport.write`` calls, so this process is
never the bottleneck of what it measures.

Control (JSON over HTTP): ``GET /bench/stats``; ``POST /bench/flood`` with
``{"kind": "rtm", "channels": [...], "messages": N, "rate": R, "run": "tag"}`` (``rate`` 0 means
as fast as the sockets take it) or ``{"kind": "socket_mode", "team": T, ...}``.
The topology is given on the command line: ``--teams N`` teams ``TB000000``... and
``--channel C=0,1,2`` channels shared by those team indexes. On start it prints its port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import sys
import time
import zlib
from collections import defaultdict
from typing import Any

import orjson
from aiohttp import WSMsgType, web

ENTERPRISE = "E0BENCH01"
APP = "A0BENCH01"
APP_TOKEN = "xapp-bench-A0BENCH01"
HIGH_WATER = 1 << 20  # bytes queued on one socket before the flood waits for it to drain
CHUNK = 256  # frames written per transport.write


def team_id(index: int) -> str:
    return f"TB{index:06d}"


def bot_token(team: str) -> str:
    return f"xoxb-bench-{team}"


def ws_frame(payload: bytes) -> bytes:
    """One unmasked server-to-client text frame."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = bytes((0x81, 126)) + struct.pack("!H", n)
    else:
        header = bytes((0x81, 127)) + struct.pack("!Q", n)
    return header + payload


class Socket:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.transport = request.transport
        self.protocol = request.protocol

    async def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > HIGH_WATER:
            await self.protocol._drain_helper()


class FrameServer:
    def __init__(self, teams: int, channels: dict[str, list[str]]) -> None:
        self.teams = [team_id(i) for i in range(teams)]
        self.by_token = {bot_token(t): t for t in self.teams}
        self.channels = channels
        self.rtm: dict[str, list[Socket]] = defaultdict(list)
        self.socket_mode: list[Socket] = []
        self.acks = 0
        self.pings = 0
        self.api_calls: dict[str, int] = defaultdict(int)
        self.port = 0

    # -- Web API -------------------------------------------------------------------------------

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.api_calls[method] += 1
        form: dict[str, Any] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                form = await request.json()
            else:
                form = dict(await request.post())
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or str(form.get("token", ""))
        team = self.by_token.get(token)
        host = f"ws://127.0.0.1:{self.port}"
        body: dict[str, Any]
        if method == "auth.test":
            if team is None:
                body = {"ok": False, "error": "invalid_auth"}
            else:
                body = {
                    "ok": True,
                    "url": f"https://{team.lower()}.example/",
                    "team": team,
                    "team_id": team,
                    "user": "gridbot",
                    "user_id": f"U{team[2:]}BOT",
                    "bot_id": f"B{team[2:]}BOT",
                    "enterprise_id": ENTERPRISE,
                    "is_enterprise_install": False,
                }
        elif method == "rtm.connect":
            body = {"ok": True, "url": f"{host}/rtm?team={team}", "team": {"id": team}, "self": {}}
        elif method == "apps.connections.open":
            body = {"ok": True, "url": f"{host}/link?app={APP}"}
        elif method == "conversations.info":
            channel = str(form.get("channel", "") or request.query.get("channel", ""))
            teams = self.channels.get(channel, [team] if team else [])
            body = {
                "ok": True,
                "channel": {
                    "id": channel,
                    "is_channel": True,
                    "is_shared": len(teams) > 1,
                    "shared_team_ids": teams,
                    "internal_team_ids": teams,
                },
            }
        else:
            body = {"ok": True}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    # -- websockets ----------------------------------------------------------------------------

    async def rtm_socket(self, request: web.Request) -> web.StreamResponse:
        team = request.query.get("team", "")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        sock = Socket(ws, request)
        self.rtm[team].append(sock)
        try:
            await ws.send_str('{"type":"hello"}')
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = orjson.loads(msg.data)
                if isinstance(frame, dict) and frame.get("type") == "ping":
                    self.pings += 1
                    await ws.send_str(orjson.dumps({"type": "pong", "reply_to": frame.get("id")}).decode())
        finally:
            self.rtm[team].remove(sock)
        return ws

    async def link_socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        sock = Socket(ws, request)
        self.socket_mode.append(sock)
        try:
            hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP}}
            await ws.send_str(orjson.dumps(hello).decode())
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and b"envelope_id" in msg.data.encode():
                    self.acks += 1
        finally:
            self.socket_mode.remove(sock)
        return ws

    # -- control -------------------------------------------------------------------------------

    async def stats(self, request: web.Request) -> web.Response:
        body = {
            "rtm": {t: len(s) for t, s in self.rtm.items() if s},
            "rtm_sockets": sum(len(s) for s in self.rtm.values()),
            "socket_mode": len(self.socket_mode),
            "acks": self.acks,
            "pings": self.pings,
            "api_calls": dict(self.api_calls),
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def flood(self, request: web.Request) -> web.Response:
        spec = await request.json()
        messages, rate, run = int(spec["messages"]), float(spec.get("rate", 0)), str(spec.get("run", "1"))
        if spec["kind"] == "rtm":
            plan = self._rtm_plan(spec["channels"], messages, run)
        else:
            plan = self._socket_mode_plan(str(spec["team"]), messages, run)
        # perf_counter is the system-wide monotonic clock: workers compare their times with it.
        started = time.perf_counter()
        await self._send(plan, messages, rate)
        return web.json_response({"sent": messages, "started": started, "ended": time.perf_counter()})

    def _rtm_plan(self, channels: list[str], messages: int, run: str) -> list[tuple[Socket, list[bytes]]]:
        """Per socket, the framed bytes of message i (messages go round-robin over channels)."""
        plan: dict[int, tuple[Socket, list[bytes]]] = {
            id(sock): (sock, [b""] * messages)
            for channel in channels
            for team in self.channels[channel]
            for sock in self.rtm.get(team, ())
        }
        base = 1_700_000_000 + (zlib.crc32(run.encode()) % 100_000_000)
        for i in range(messages):
            channel = channels[i % len(channels)]
            for team in self.channels[channel]:
                frame = ws_frame(
                    orjson.dumps(
                        {
                            "type": "message",
                            "channel": channel,
                            "user": f"W{team[2:]}USR",
                            "text": f"benchmark message {i} with some ordinary length text in it",
                            "ts": f"{base}.{i:06d}",
                            "team": team,
                            "source_team": self.channels[channel][0],
                            "user_team": self.channels[channel][0],
                            "blocks": [{"type": "rich_text", "block_id": "b", "elements": []}],
                        }
                    )
                )
                for sock in self.rtm.get(team, ()):
                    plan[id(sock)][1][i] += frame
        return list(plan.values())

    def _socket_mode_plan(self, team: str, messages: int, run: str) -> list[tuple[Socket, list[bytes]]]:
        if not self.socket_mode:
            return []
        base = 1_700_000_000 + (zlib.crc32(run.encode()) % 100_000_000)
        frames = []
        for i in range(messages):
            ts = f"{base}.{i:06d}"
            event = {
                "type": "message",
                "channel": "C0BENCHSM",
                "user": "W0BENCHUSR",
                "text": f"benchmark message {i} with some ordinary length text in it",
                "ts": ts,
                "team": team,
                "event_ts": ts,
                "channel_type": "channel",
            }
            envelope = {
                "envelope_id": f"{run}-{i:08d}-0000-0000-bench",
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 0,
                "retry_reason": "",
                "payload": {
                    "token": "verification",
                    "team_id": team,
                    "enterprise_id": ENTERPRISE,
                    "api_app_id": APP,
                    "event": event,
                    "type": "event_callback",
                    "event_id": f"Ev{run}{i:08d}",
                    "event_time": base,
                    "authorizations": [
                        {
                            "enterprise_id": ENTERPRISE,
                            "team_id": team,
                            "user_id": f"U{team[2:]}BOT",
                            "is_bot": True,
                            "is_enterprise_install": False,
                        }
                    ],
                    "is_ext_shared_channel": False,
                    "event_context": "4-bench",
                },
            }
            frames.append(ws_frame(orjson.dumps(envelope)))
        return [(self.socket_mode[0], frames)]

    async def _send(self, plan: list[tuple[Socket, list[bytes]]], messages: int, rate: float) -> None:
        if rate <= 0:
            for start in range(0, messages, CHUNK):
                for sock, frames in plan:
                    await sock.write(b"".join(frames[start : start + CHUNK]))
            return
        t0 = time.perf_counter()
        sent = 0
        while sent < messages:
            due = min(messages, int((time.perf_counter() - t0) * rate) + 1)
            for sock, frames in plan:
                await sock.write(b"".join(frames[sent:due]))
            sent = due
            next_at = t0 + sent / rate
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)


def parse_channels(values: list[str]) -> dict[str, list[str]]:
    channels: dict[str, list[str]] = {}
    for value in values:
        name, _, members = value.partition("=")
        channels[name] = [team_id(int(i)) for i in members.split(",") if i]
    return channels


async def serve(teams: int, channels: dict[str, list[str]]) -> None:
    server = FrameServer(teams, channels)
    app = web.Application(client_max_size=1 << 20)
    app.router.add_route("*", "/api/{method}", server.api)
    app.router.add_get("/rtm", server.rtm_socket)
    app.router.add_get("/link", server.link_socket)
    app.router.add_get("/bench/stats", server.stats)
    app.router.add_post("/bench/flood", server.flood)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
    server.port = sockets[0].getsockname()[1]
    print(server.port, flush=True)
    try:
        # Serve until the parent closes our stdin (or dies).
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.read()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teams", type=int, default=3)
    parser.add_argument("--channel", action="append", default=[])
    args = parser.parse_args()
    asyncio.run(serve(args.teams, parse_channels(args.channel)))


if __name__ == "__main__":
    main()
