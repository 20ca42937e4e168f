"""GridSimulator: the aiohttp server, its routes, and the Python API tests drive it with."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from . import render
from .actions import OrgActions
from .admin_apps import AdminApps
from .delivery import Fanout
from .faults import ConnectFault, Faults
from .model import BotRef, Conversation, Topology, User, default_topology
from .records import Ack, ApiCall, Delivery, Journal, PostedMessage, Reaction, SentEnvelope
from .rtm import RtmRegistry
from .socket_mode import SocketModeHub
from .sockets import SimSocket
from .state import Message, OrgState
from .webapi import WebApi

SOCKET_MODE_REASONS = ("warning", "refresh_requested", "link_disabled", "too_many_websockets")


class GridSimulator:
    """One Enterprise Grid org behind a real HTTP + websocket server on loopback.

    Use as ``async with GridSimulator() as sim:``; point ``AsyncWebClient(base_url=sim.api_url)``
    at it. Delivery order between teams' sockets is random per message, from ``seed``.
    ``close_delay`` is how long a socket stays open after ``goodbye`` or ``refresh_requested``.
    """

    def __init__(
        self,
        topology: Topology | None = None,
        *,
        seed: int = 0,
        ack_timeout: float = 3.0,
        host: str = "127.0.0.1",
        port: int = 0,
        close_delay: float = 1.0,
    ) -> None:
        self.topology = topology if topology is not None else default_topology()
        self.host = host
        self.close_delay = close_delay
        self._port = port
        self._state = OrgState(self.topology)
        self._faults = Faults()
        self._journal = Journal()
        rng = random.Random(seed)
        self._rtm = RtmRegistry(self._state)
        self._sm = SocketModeHub(self._state, rng, ack_timeout)
        self._fanout = Fanout(self._state, self._rtm, self._sm, rng, self._journal)
        self._actions = OrgActions(self._state, self._fanout)
        self._api = WebApi(self._state, self._actions, self._faults, self._journal)
        self._admin = AdminApps(self._state, self._uninstall)
        self._admin.register(self._api)
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # lifecycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api.handle)
        app.router.add_get("/rtm", self._rtm.handle)
        app.router.add_get("/link/", self._sm.handle)
        app.router.add_get("/link", self._sm.handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self._bound_port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._sm.stop()
        for sock in self._all_sockets():
            await sock.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GridSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("the simulator is not started")
        return self._bound_port

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/"

    # driving the org
    async def post_message(
        self,
        *,
        user: str,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        source_team: str | None = None,
        blocks: list[Any] | None = None,
    ) -> str:
        """A user writes in a conversation; returns the message ts shared by all copies."""
        author = self._user(user)
        conv = self._conversation(channel)
        if author.id not in conv.members:
            raise ValueError(f"user {author.id} is not a member of {conv.id}")
        source = source_team or self._state.source_team(author, conv)
        if source not in conv.teams or source not in author.teams:
            raise ValueError(f"source_team {source!r} must be a team of {author.id} and {conv.id}")
        msg = await self._actions.post(
            conv, text, source_team=source, user=author, thread_ts=thread_ts, blocks=blocks
        )
        return msg.ts

    async def edit_message(self, channel: str, ts: str, text: str, *, user: str | None = None) -> str:
        """Edit a stored message (delivers ``message_changed``); returns the edit's own ts."""
        conv = self._conversation(channel)
        old = self._message(channel, ts)
        editor = self._user(user) if user else old.user
        if editor is None:
            raise ValueError("pass user= to edit a bot message")
        return await self._actions.edit(conv, old, text, editor)

    async def delete_message(self, channel: str, ts: str) -> str:
        """Delete a stored message (delivers ``message_deleted``); returns the deletion's ts."""
        return await self._actions.delete(self._conversation(channel), self._message(channel, ts))

    async def add_bot_to_channel(self, team: str, channel: str) -> None:
        """Invite ``team``'s bot: channel_joined/group_joined + member_joined_channel."""
        conv = self._conversation(channel)
        if team not in conv.teams:
            raise ValueError(f"team {team!r} is not connected to {conv.id}")
        if not self.topology.bots_on(team):
            raise ValueError(f"no app is installed on team {team!r}")
        await self._actions.add_bot(conv, team)

    async def send_event(self, event: dict[str, Any], *, team: str) -> None:
        """Deliver any event to ``team``'s RTM sockets and, once per app, to Socket Mode."""
        if team not in self.topology.team_by_id:
            raise ValueError(f"unknown team {team!r}")
        await self._fanout.to_team(event, team)

    # faults
    async def drop_sockets(self, team: str | None = None, app: str | None = None) -> int:
        """Cut sockets with no close frame (all when neither is given); returns how many."""
        socks = self._select(team, app)
        for sock in socks:
            sock.abort()
        return len(socks)

    async def send_goodbye(self, team: str) -> None:
        """RTM ``goodbye`` to the team's sockets, which the server closes ``close_delay`` later."""
        for sock in self._rtm.sockets(team):
            await sock.send_json({"type": "goodbye"})
            self._spawn(sock.close(self.close_delay), f"sim.rtm.goodbye.{sock.id}")

    async def send_disconnect(self, app: str, reason: str = "refresh_requested") -> None:
        """Socket Mode ``disconnect`` to every socket of the app.

        ``warning`` leaves the socket open; ``refresh_requested`` closes it ``close_delay`` later
        so the client can open a replacement first; ``link_disabled`` closes it and makes
        apps.connections.open fail with ``link_disabled`` until clear_faults();
        ``too_many_websockets`` closes it at once.
        """
        if reason not in SOCKET_MODE_REASONS:
            raise ValueError(f"reason must be one of {', '.join(SOCKET_MODE_REASONS)}")
        if reason == "link_disabled":
            self._faults.link_disabled.add(app)
        for sock in self._sm.sockets(app):
            await self._sm.disconnect(sock, reason)
            if reason == "refresh_requested":
                self._spawn(sock.close(self.close_delay), f"sim.socket_mode.refresh.{sock.id}")
            elif reason != "warning":
                await sock.close()

    def fail_connect(
        self,
        team_or_app_id: str,
        error: str = "ratelimited",
        status: int = 429,
        retry_after: float | None = 1,
        times: int | None = None,
    ) -> None:
        """Make rtm.connect (team or app id) / apps.connections.open (app id) fail."""
        self._faults.connect[team_or_app_id] = ConnectFault(error, status, retry_after, times)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._rtm.stalled.clear()

    async def revoke_token(self, token: str) -> None:
        """Calls with the token now get ``token_revoked``; its sockets are closed."""
        if token not in self._state.tokens:
            raise ValueError("unknown token")
        self._state.revoked.add(token)
        for sock in self._all_sockets():
            if sock.token == token:
                await sock.close()

    async def send_raw(self, data: str | bytes, *, team: str | None = None, app: str | None = None) -> int:
        """Write an arbitrary frame (str: text, bytes: binary) to the selected sockets."""
        socks = self._select(team, app)
        for sock in socks:
            await sock.send_raw(data)
        return len(socks)

    def set_latency(self, seconds: float, methods: list[str] | None = None) -> None:
        """Delay Web API responses: all methods, or only the listed ones."""
        self._faults.latency = seconds
        self._faults.latency_methods = frozenset(methods) if methods is not None else None

    def stall(self, team: str) -> None:
        """The team's RTM sockets stop answering pings and receive nothing (until clear_faults)."""
        self._rtm.stalled.add(team)

    # observation
    @property
    def calls(self) -> list[ApiCall]:
        return self._journal.calls

    @property
    def posted(self) -> list[PostedMessage]:
        return self._journal.posted

    @property
    def ephemeral(self) -> list[PostedMessage]:
        return self._journal.ephemeral

    @property
    def reactions(self) -> list[Reaction]:
        return self._journal.reactions

    @property
    def deliveries(self) -> deque[Delivery]:
        """RTM copies in the order they were written (the last 10,000)."""
        return self._journal.deliveries

    @property
    def envelopes_sent(self) -> list[SentEnvelope]:
        return self._sm.sent

    @property
    def acks(self) -> list[Ack]:
        return self._sm.acks

    @property
    def admin(self) -> AdminApps:
        """App resolutions and requests, for assertions."""
        return self._admin

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self._journal.calls if c.method == method]

    def socket_count(self, team: str | None = None, app: str | None = None) -> int:
        return len([s for s in self._select(team, app) if not s.closed])

    def connected_teams(self) -> set[str]:
        """Teams with an open RTM socket."""
        return {s.bot.team for s in self._rtm.sockets() if not s.closed}

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """A stored message as its author's team sees it (None once deleted)."""
        msg = self._state.messages.get((channel, ts))
        return render.message_event(msg, msg.source_team) if msg else None

    async def wait_for(
        self,
        predicate: Callable[[], object],
        timeout: float = 5.0,
        *,
        what: str = "",
    ) -> None:
        """Poll ``predicate`` every 10 ms until it is truthy; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                label = what or getattr(predicate, "__name__", repr(predicate))
                raise TimeoutError(f"condition {label} not met within {timeout:.2f}s")
            await asyncio.sleep(0.01)

    # helpers
    def _select(self, team: str | None, app: str | None) -> list[SimSocket]:
        """team: its RTM sockets; app: its Socket Mode and RTM sockets; both: the intersection."""
        rtm = [s for s in self._rtm.sockets(team) if app is None or s.bot.app.id == app]
        socket_mode = self._sm.sockets(app) if team is None else []
        return [*rtm, *socket_mode]

    def _all_sockets(self) -> list[SimSocket]:
        return [*self._rtm.sockets(), *self._sm.sockets()]

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _uninstall(self, bots: list[BotRef]) -> None:
        for bot in bots:
            self._state.uninstalled.add((bot.app.id, bot.team))
            await self.revoke_token(bot.installation.bot_token)

    def _user(self, user_id: str) -> User:
        user = self.topology.user_by_id.get(user_id)
        if user is None:
            raise ValueError(f"unknown user {user_id!r}")
        return user

    def _conversation(self, channel: str) -> Conversation:
        conv = self.topology.conversation_by_id.get(channel)
        if conv is None:
            raise ValueError(f"unknown conversation {channel!r}")
        return conv

    def _message(self, channel: str, ts: str) -> Message:
        msg = self._state.messages.get((channel, ts))
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return msg
