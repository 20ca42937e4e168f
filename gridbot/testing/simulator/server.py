"""GridSimulator: the aiohttp server, its routes, and the Python API tests drive it with."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from . import render
from .actions import OrgActions
from .admin_apps import AdminApps
from .chat import Chat
from .controls import Controls
from .delivery import Fanout
from .faults import Faults
from .http_delivery import HttpHub
from .http_policy import HttpPolicy
from .interactivity import Interactivity
from .listing import Listing
from .messages import KEEP_MESSAGES, Message
from .migration import Migration
from .model import BotRef, Conversation, Topology, User, default_topology
from .oauth import OAuth
from .org import OrgChanges
from .org_installs import OrgInstalls
from .ratelimits import RateLimits
from .records import (
    KEEP,
    Ack,
    ApiCall,
    Delivery,
    Injection,
    Journal,
    PostedMessage,
    Reaction,
    Recent,
    SentEnvelope,
)
from .responses import Responses
from .rtm import RtmRegistry
from .socket_mode import SocketModeHub
from .state import OrgState
from .timing import Timing
from .translate import Viewer
from .views import Views
from .webapi import WebApi


class GridSimulator(Controls):
    """One Enterprise Grid org behind a real HTTP + websocket server on loopback.

    Use as ``async with GridSimulator() as sim:``; point ``AsyncWebClient(base_url=sim.api_url)``
    at it. Delivery order between teams' sockets is random per message, from ``seed``.
    ``close_delay`` is how long a socket stays open after ``goodbye`` or ``refresh_requested``.
    ``time_scale`` speeds up Slack's own clocks (the ``warning`` close, rate-limit windows):
    ``time_scale=10`` closes a warned socket after 1 s. ``rate_limits`` replaces the default
    limits (Slack's documented floors at ``time_scale``). ``keep`` bounds every observation log
    and ``keep_messages`` the stored history: counts are never bounded, memory is. ``http``
    replaces Slack's rules for the Events API over HTTP (:attr:`http`: an app's request URL,
    retries on Slack's schedule at ``time_scale``, counts, the disable rule).
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
        time_scale: float = 1.0,
        rate_limits: RateLimits | None = None,
        keep: int = KEEP,
        keep_messages: int = KEEP_MESSAGES,
        http: HttpPolicy | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.host = host
        self.close_delay = close_delay
        self.time_scale = time_scale
        self._port = port
        self._state = OrgState(
            topology if topology is not None else default_topology(), keep_messages=keep_messages
        )
        self._faults = Faults()
        self._journal = Journal(keep)
        rng = random.Random(seed)
        self._timing = Timing(random.Random(f"timing-{seed}"), self._journal.injected)
        self._rtm = RtmRegistry(self._state)
        self._sm = SocketModeHub(
            self._state,
            rng,
            ack_timeout,
            self._journal.sent,
            self._journal.acks,
            wanted=self._authorized_live,
        )
        self._http = HttpHub(
            http if http is not None else HttpPolicy(), time_scale, keep=keep, wanted=self._authorized_live
        )
        self._fanout = Fanout(self._state, self._rtm, self._sm, rng, self._journal, self._timing, self._http)
        self._actions = OrgActions(self._state, self._fanout)
        self.org = OrgChanges(self._state, self._fanout, self._actions)
        self.rate_limits = rate_limits if rate_limits is not None else RateLimits(scale=time_scale)
        self._api = WebApi(self._state, self._faults, self._journal, self.rate_limits)
        Chat(self._state, self._actions, self._journal, self._api)
        Listing(self._state, self._api)
        Migration(self._state, self._api)
        responses = Responses(self._state, self._actions, self._journal)
        views = Views(self._state, self._api)
        self.interactivity = Interactivity(
            self._state, self._sm, views, responses, self._journal.posted, self._http
        )
        self._admin = AdminApps(self._state, self._uninstall)
        self._admin.register(self._api)
        self.oauth = OAuth(self._state, self._journal, time_scale, self.rate_limits)  # apps' clients
        self.org_installs = OrgInstalls(self._state, self._api, self._fanout)
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # lifecycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/oauth.v2.access", self.oauth.access)  # client credentials, no token
        app.router.add_get("/oauth/v2/authorize", self.oauth.authorize)
        app.router.add_route("*", "/api/{method}", self._api.handle)
        app.router.add_get("/rtm", self._rtm.handle)
        app.router.add_get("/link/", self._sm.handle)
        app.router.add_get("/link", self._sm.handle)
        app.router.add_post("/respond/{token}", self.interactivity.responses.handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self._bound_port = server.sockets[0].getsockname()[1]
        await self._http.start()
        self.interactivity.responses.base = f"http://{self.host}:{self._bound_port}"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._timing.stop()
        await self._sm.stop()
        await self._http.stop()
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

    @property
    def methods(self) -> list[str]:
        """The Web API methods this simulator answers."""
        return sorted(self._api.methods)

    @property
    def topology(self) -> Topology:
        """The org as it is now (it changes through :attr:`org`)."""
        return self._state.topology

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
        editor: User | BotRef | None = self._user(user) if user else (old.user or old.bot)
        assert editor is not None
        edit_ts, _ = await self._actions.edit(conv, old, text, editor)
        return edit_ts

    async def delete_message(self, channel: str, ts: str) -> str:
        """Delete a stored message (delivers ``message_deleted``); returns the deletion's ts."""
        return await self._actions.delete(self._conversation(channel), self._message(channel, ts))

    async def add_bot_to_channel(self, team: str, channel: str, *, inviter: str | None = None) -> None:
        """Invite ``team``'s bot (``sim.org.join(channel, team=team)``)."""
        await self.org.join(channel, team=team, inviter=inviter)

    async def remove_bot_from_channel(self, team: str, channel: str, *, by: str | None = None) -> None:
        """``team``'s bot leaves, or is removed ``by`` a user (``sim.org.leave``)."""
        await self.org.leave(channel, team=team, by=by)

    async def send_event(self, event: dict[str, Any], *, team: str) -> None:
        """Deliver any event to ``team``'s RTM sockets and, once per app, to Socket Mode or the
        app's request URL."""
        if team not in self.topology.team_by_id:
            raise ValueError(f"unknown team {team!r}")
        await self._fanout.to_team(event, team)

    # observation
    @property
    def calls(self) -> Recent[ApiCall]:
        return self._journal.calls

    @property
    def posted(self) -> Recent[PostedMessage]:
        return self._journal.posted

    @property
    def ephemeral(self) -> Recent[PostedMessage]:
        return self._journal.ephemeral

    @property
    def reactions(self) -> Recent[Reaction]:
        return self._journal.reactions

    @property
    def deliveries(self) -> Recent[Delivery]:
        """RTM copies in the order they were written (``len`` counts all; the newest are kept)."""
        return self._journal.deliveries

    @property
    def envelopes_sent(self) -> Recent[SentEnvelope]:
        return self._journal.sent

    @property
    def acks(self) -> Recent[Ack]:
        return self._journal.acks

    @property
    def injected(self) -> Recent[Injection]:
        """Every timing fault applied to a copy: lags and duplicates, with their delays."""
        return self._journal.injected

    @property
    def in_flight(self) -> int:
        """Copies a timing fault holds back, not written yet."""
        return self._timing.in_flight

    @property
    def unacked(self) -> int:
        """Socket Mode envelopes awaiting their ack or their next redelivery."""
        return self._sm.unacked

    @property
    def stored_messages(self) -> int:
        """Messages kept in history (at most ``keep_messages``)."""
        return len(self._state.messages)

    @property
    def http(self) -> HttpHub:
        """The Events API over HTTP: ``await sim.http.subscribe(app, url, signing_secret)``, then
        ``sim.http.counts(app)``, ``.attempts``, ``.deliveries``, ``.notices``, ``.deliver(...)``."""
        return self._http

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
        msg = self._state.messages.get(channel, ts)
        return render.message_event(self.topology, msg, Viewer(msg.source_team)) if msg else None

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
        msg = self._state.messages.get(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return msg
