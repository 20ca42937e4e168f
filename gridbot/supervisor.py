"""The supervisor: one owned runner per connection (an RTM team, or a Socket Mode app token).

Each runner authenticates its team(s) with ``auth.test`` (recording the enterprise id), then keeps
its link(s) alive. A dead token stops that team only, with one clear error event and a state others
can read; a Grid migration pauses it and re-probes. Connections can be added and removed while
running (config reload, ownership). Every task it starts is kept with the connection it serves, or
with the supervisor, and is cancelled and awaited when that ends.

A connected team's **heartbeat** (``renew_alive``, renewed every ``lease_ttl / 3``) tells every
process that its socket is up; the election's takeover waits for it to lapse. A team that stops
for good (a dead token, Socket Mode disabled, removed from the config, uninstalled as Slack's
``app_uninstalled`` / ``tokens_revoked`` say, or any Web API call answered that its token is
dead: :meth:`Supervisor.retire`) gives its heartbeat up at once and is announced to the dedup
stage through the intake (:data:`~gridbot.dedup.facts.TEAM_STOPPED`, ``TOKEN_DEAD``), the one
path every fact takes: the elections it answers in move at once.

With a shared store (Redis) every process reads the same list of connections and serves only
those whose ownership lease it holds (:mod:`gridbot.ownership`), announcing itself in the
process registry (:mod:`gridbot.registry`); with the in-memory store one process serves all.
Events API (``transport = "http"``) connections are the exception: a load balancer sends any
request to any replica, so every process serves every one of them, and their teams' heartbeats
are held in common (:data:`EVENTS_HOLDER`): alive while any replica's listener is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from gridbot.auth import authenticate, poll_auth
from gridbot.config import RuntimeConfig, TeamConfig, connection_key
from gridbot.dedup.facts import TEAM_STOPPED, TOKEN_DEAD
from gridbot.heartbeat import HeartbeatKeeper
from gridbot.logs import get_logger
from gridbot.ownership import Ownership
from gridbot.registry import Registry
from gridbot.slack import SlackClients
from gridbot.store import Store, StoreUnavailable
from gridbot.tasks import cancel_and_wait
from gridbot.team import Team, TeamState, best_state
from gridbot.transport.http import EventsReceiver
from gridbot.transport.link import FrameIntake, Link
from gridbot.transport.links import Connection, beats, everywhere, socket_links

log = get_logger("gridbot.supervisor")

EVENTS_HOLDER = "events-api"  # the heartbeat holder every replica renews for its HTTP teams
STORE_INDEX = 10_000  # Team.index of installations from the store ([oauth]): after any [[teams]] one


class Supervisor:
    def __init__(
        self,
        clients: SlackClients,
        store: Store,
        intake: FrameIntake,
        runtime: RuntimeConfig,
        *,
        instance_id: str,
        on_team_ready: Callable[[Team], Awaitable[None]] | None = None,
        events: EventsReceiver | None = None,
        web_client: Callable[[TeamConfig, AsyncWebClient], AsyncWebClient] | None = None,
    ) -> None:
        self.clients = clients
        self._web_client = web_client  # a team's client, from SlackClients.web's (installs: rotation)
        self.store = store
        self.runtime = runtime
        self.instance_id = instance_id
        self.connections: dict[str, Connection] = {}
        self._intake = intake  # where links hand deliveries: the dedup stage's intake
        self._on_team_ready = on_team_ready
        self._events = events  # the Events API listener, for http connections
        self._web: dict[str, AsyncWebClient] = {}
        self._authed: dict[str, float] = {}  # team id -> when its token last passed auth.test
        self._tasks: list[asyncio.Task[None]] = []  # the supervisor's own loops, in start order
        # connection key -> its teams' (index, config): what this process *may* serve
        self._configured: dict[str, list[tuple[int, TeamConfig]]] = {}
        # teams of connections handed to another process: events read before the socket
        # closed still get a context (their handlers answer through the same token)
        self._retired: dict[str, Team] = {}
        self._by_id: dict[str, tuple[Connection, Team]] = {}  # team() lookups, checked on use
        self._beats = HeartbeatKeeper(store, (instance_id, EVENTS_HOLDER), runtime.lease_ttl, self._connected)
        self._ownership: Ownership | None = None
        self._stopping = False  # shutting down: sockets close on purpose, not to reconnect

    # -- what the rest of gridbot asks ---------------------------------------------------------

    @property
    def teams(self) -> list[Team]:
        return [t for conn in self.connections.values() for t in conn.teams]

    def team(self, team_id: str) -> Team | None:
        # Asked once per handler start: an index instead of a scan of every team (1,000 of them
        # in one process). An entry is trusted only while its connection is still the one
        # running and the team still has that id; anything else falls back to the scan.
        hit = self._by_id.get(team_id)
        if hit is not None:
            conn, team = hit
            if team.team_id == team_id and self.connections.get(conn.key) is conn:
                return team
            del self._by_id[team_id]
        for conn in self.connections.values():
            for team in conn.teams:
                if team.team_id == team_id:
                    self._by_id[team_id] = (conn, team)
                    return team
        return self._retired.get(team_id)

    def installed(self) -> set[str]:
        return {t.team_id for t in self.teams if t.team_id and not t.state.final}

    def stopped(self) -> set[str]:
        return {t.team_id for t in self.teams if t.team_id and t.state.final}

    def client_for(self, team_id: str) -> AsyncWebClient | None:
        return self._web.get(team_id)

    def authenticated_at(self, team_id: str) -> float | None:
        return self._authed.get(team_id)

    def connected(self) -> list[str]:
        return [t.team_id for t in self.teams if t.team_id and t.state == TeamState.CONNECTED]

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, teams: tuple[TeamConfig, ...]) -> None:
        for index, config in enumerate(teams):
            self._configured.setdefault(connection_key(config), []).append((index, config))
        for key in self._configured:
            if everywhere(key):
                self._serve(key)
        if self.store.shared:
            self._ownership = Ownership(
                self.store,
                Registry(self.store, self.instance_id, ttl=self.runtime.lease_ttl),
                [key for key in self._configured if not everywhere(key)],
                ttl=self.runtime.lease_ttl,
                serve=self._serve,
                drop=self.remove,
                is_connected=self._is_up,
                teams=lambda: sorted(self.installed()),
            )
            self._spawn(self._ownership.run(), "supervisor:ownership")
        else:
            for key in self._configured:
                self._serve(key)  # (served already: a no-op)
        self._spawn(self._beats.run(), "supervisor:heartbeats")
        polling = poll_auth(lambda: self.teams, self._web.get, self.runtime.auth_poll_interval)
        self._spawn(polling, "supervisor:auth-poll")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:  # kept, ended by stop()
        self._tasks.append(asyncio.create_task(coro, name=name))

    def _serve(self, key: str) -> None:
        """Start serving one configured connection (ownership decided we should)."""
        for index, config in self._configured.get(key, []) if key not in self.connections else ():
            self.add(config, index)

    def configure(self, config: TeamConfig, index: int) -> None:
        """A team was added to the config (reload): served now, or once ownership gives us its connection."""
        key = connection_key(config)
        self._configured.setdefault(key, []).append((index, config))
        if self._ownership is None or key in self.connections or everywhere(key):
            self.add(config, index)  # one process, another team on an app token we serve, or HTTP
        else:
            self._ownership.adopt(key)

    async def forget(self, key: str, staying: Collection[str] = ()) -> None:
        """A connection left the config (reload): stop serving it, give up its lease. Its store's
        teams and ``staying`` (bot token digests served again at once) are not announced stopped."""
        kept = [(i, c) for i, c in self._configured.pop(key, []) if i >= STORE_INDEX]
        if self._ownership is not None:
            await self._ownership.abandon(key)
        await self.remove(key, gone=True, staying={*staying, *(c.bot_token.digest() for _, c in kept)})
        for index, config in kept:
            self.configure(config, index)

    def retoken(self, old: TeamConfig, new: TeamConfig) -> None:
        """A rotated bot token: the team's Web API client sends it from now on (no socket moves)."""
        key = connection_key(old)
        self._configured[key] = [(i, new if c is old else c) for i, c in self._configured.get(key, [])]
        for team in self.teams_of(old):
            team.config = new
            if (client := self._web.get(team.team_id)) is not None:
                client.token = new.bot_token.get()

    def teams_of(self, config: TeamConfig) -> list[Team]:
        conn = self.connections.get(connection_key(config))
        return [t for t in conn.teams if t.config is config] if conn is not None else []

    async def unconfigure(self, config: TeamConfig) -> None:
        """An installation is gone (uninstalled, its token dead): its team stops for good, here and
        when its connection moves; the last team of a connection takes the connection with it."""
        key = connection_key(config)
        self._configured[key] = [(i, c) for i, c in self._configured.get(key, []) if c is not config]
        if not self._configured[key]:
            await self.forget(key)
            return
        for team in self.teams_of(config):
            conn = self.connections[key]
            conn.teams.remove(team)
            conn.by_id.pop(team.team_id, None)
            self._by_id.pop(team.team_id, None)  # (the connection stays: the index would find it)
            # (an org install's workspace that meanwhile has its own team here: that one stays)
            if team.team_id and not any(t.team_id == team.team_id for t in self.teams):
                self._retired[team.team_id] = team
                self._beats.release(team.team_id)
                self._web.pop(team.team_id, None)
                if not team.state.final:
                    self._announce(team, "removed")
            team.state = TeamState.REMOVED
            log.info("team.removed", team_id=team.team_id or None, team=team.label)

    def _is_up(self, key: str) -> bool:
        conn = self.connections.get(key)
        return conn is not None and any(lk.state == TeamState.CONNECTED for lk in conn.links)

    def _fenced(self, key: str) -> bool:
        """Lost (or never had) the ownership of ``key``: its teams must not claim a heartbeat."""
        return self._ownership is not None and not everywhere(key) and not self._ownership.serving(key)

    def add(self, config: TeamConfig, index: int) -> Team:
        """Start serving one more team (on Socket Mode, with its app token's connection)."""
        key = connection_key(config)
        team = Team(index=index, config=config)
        conn = self.connections.get(key)
        if conn is not None:  # another team on an app token already running
            conn.teams.append(team)
            auth = self._authenticate_into(conn, team)
            conn.tasks.append(asyncio.create_task(auth, name=f"auth:{key}:{index}"))
            return team
        conn = Connection(key, [team])
        self.connections[key] = conn
        conn.tasks.append(asyncio.create_task(self._run_connection(conn), name=f"connection:{key}"))
        return team

    async def remove(self, key: str, *, gone: bool = False, staying: Collection[str] = ()) -> None:
        """Stop serving a connection: close its sockets, end its tasks, release its heartbeats.
        ``gone``: no process will serve it (it left the config): its teams are announced as stopped.
        """
        conn = self.connections.pop(key, None)
        if conn is None:
            return
        # Retired before the first await: a handler that starts while the sockets close (an
        # event decided just before) must still find its team, or its event is lost.
        for team in conn.teams:
            if team.team_id:
                self._retired[team.team_id] = team
        await cancel_and_wait(reversed(conn.tasks))
        ids = [t.team_id for t in conn.teams if t.team_id]
        with contextlib.suppress(StoreUnavailable):
            await self.store.release_alive(ids, self.instance_id)
        for team in conn.teams:
            team.state = TeamState.REMOVED
            if gone and team.team_id and team.config.bot_token.digest() not in staying:
                self._announce(team, "removed")
        log.info("connection.removed", connection=key, teams=ids)

    async def retire(self, team_id: str, reason: str) -> None:
        """Slack says ``team_id``'s tokens are dead: stop the team for good, give up its heartbeat
        now (the dedup stage, which read the fact, is moving its elections: no announcement)."""
        hit = self._by_id.get(team_id) or next(
            ((c, t) for c in self.connections.values() for t in c.teams if t.team_id == team_id), None
        )
        if hit is None or hit[1].state.final:
            return
        conn, team = hit
        conn.by_id.pop(team_id, None)  # its links stop taking events for it, and its state is its own
        team.state, team.error = TeamState.STOPPED, reason
        log.error("team.stopped", team=team.label, team_id=team_id, state=team.state, error=reason)
        if not conn.by_id and conn.tasks:  # RTM, or the app's last team: nothing left to read
            await cancel_and_wait([conn.tasks[0]])
        self._beats.release(team_id)

    def _ended(self, team: Team) -> None:
        """``team`` just stopped for good: its heartbeat goes now, and the dedup stage hears it."""
        if team.team_id:
            self._beats.release(team.team_id)
            self._announce(team, team.error or str(team.state))

    def _token_died(self, team: Team, error: str) -> None:
        """A call of ``team`` heard its token is dead: stopped as on ``app_uninstalled``, once."""
        if team.team_id and not team.state.final and self._authed.pop(team.team_id, None) is not None:
            log.error("team.token_dead", team=team.label, team_id=team.team_id, error=error)
            self._announce(team, error, TOKEN_DEAD)

    def _announce(self, team: Team, reason: str, kind: str = TEAM_STOPPED) -> None:
        """Tell the dedup stage, through the intake like any event, that ``team`` stopped."""
        frame = {"type": kind, "reason": reason}
        self._intake.offer(frame, team.team_id, team.enterprise_id, (team.team_id,))

    async def stop(self) -> None:
        """Hand our connections over, close every socket, release heartbeats and ownership leases."""
        self._stopping = True
        if self._ownership is not None:
            # Peers connect our connections before we close them: a rolling restart loses nothing.
            await self._ownership.handover(self.runtime.shutdown_timeout)
        serving = [t for conn in self.connections.values() for t in reversed(conn.tasks)]
        await cancel_and_wait([*serving, *reversed(self._tasks)])
        with contextlib.suppress(StoreUnavailable):
            await self.store.release_alive([t.team_id for t in self.teams if t.team_id], self.instance_id)
        if self._ownership is not None:
            await self._ownership.release_all()

    # -- runners -------------------------------------------------------------------------------

    async def _run_connection(self, conn: Connection) -> None:
        first = conn.teams[0]
        config = first.config
        if config.transport == "http":
            await self._run_http(conn)
            return
        if not await self._authenticate(first):
            return
        conn.by_id[first.team_id] = first
        conn.links = socket_links(
            conn.key,
            first,
            conn.by_id,
            connector=self.clients.connector(config.app_token or config.bot_token),
            intake=self._intake,
            session=self.clients.session,
            runtime=self.runtime,
            on_state=lambda _: self._link_state(conn),
        )
        async with asyncio.TaskGroup() as group:
            for link in [lk for lk in conn.links if isinstance(lk, Link)]:
                group.create_task(link.run(), name=f"link:{link.name}")

    async def _run_http(self, conn: Connection) -> None:
        """An Events API app: its requests are verified from now on; its teams are served once
        authenticated (until then their requests are answered 503, so Slack retries them)."""
        first = conn.teams[0]
        if self._events is None or first.config.signing_secret is None:  # (config requires both)
            first.state, first.error = TeamState.STOPPED, "no_events_listener"
            log.error("team.stopped", team=first.label, team_id=None, state=first.state, error=first.error)
            return
        app = self._events.open_app(
            conn.key,
            first.config.signing_secret,
            conn.teams,
            conn.by_id,
            on_state=lambda _: self._link_state(conn),
        )
        conn.links = [app]
        try:  # (its other teams are authenticated by add(), each in a task of its own)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._authenticate_into(conn, first), name=f"auth:{conn.key}:{first.index}")
                group.create_task(self._events.serve_app(app), name=f"link:{conn.key}")
        finally:
            self._events.close_app(app)

    async def _authenticate_into(self, conn: Connection, team: Team) -> None:
        if await self._authenticate(team):
            conn.by_id[team.team_id] = team
            self._link_state(conn)

    async def _authenticate(self, team: Team) -> bool:
        """auth.test until it answers; False if the team ended for good (stopped or disabled)."""
        client = self.clients.web(team.config.bot_token, functools.partial(self._token_died, team))
        client = self._web_client(team.config, client) if self._web_client else client
        if team.config.workspace is not None:  # an org-wide token acting in one granted workspace
            client.default_params["team_id"] = team.config.workspace
        if not await authenticate(team, client, self.runtime.paused_probe_interval):
            self._ended(team)
            return False
        self._web[team.team_id], self._authed[team.team_id] = client, time.time()
        if self._on_team_ready is not None:  # before the socket connects: see gridbot/bots.py
            await self._on_team_ready(team)
        return True

    def _link_state(self, conn: Connection) -> None:
        """A link changed state: each authenticated team of the connection takes the best one."""
        if self._stopping:
            return  # its socket closes because gridbot stops (gridbot.stopping), not "reconnecting"
        states = [lk.state for lk in conn.links]
        best = best_state(states)
        error = next((lk.error for lk in conn.links if lk.error), None)
        for team in conn.by_id.values():
            previous = team.state
            team.state = best
            team.error = None if best == TeamState.CONNECTED else error
            if previous != team.state:
                log.info("team.state", team_id=team.team_id, state=team.state, error=team.error)
                if best.final and not previous.final:
                    self._ended(team)
        if best == TeamState.CONNECTED:
            self._beats.up(conn.key)

    # -- heartbeats and polling ------------------------------------------------------------------

    def _connected(self, keys: Collection[str] | None) -> dict[str, list[str]]:
        return beats(self.connections, keys, self._fenced, self.instance_id, EVENTS_HOLDER)
