"""The faults and lifecycle events tests inject into a GridSimulator (its base class).

Socket faults (cuts, goodbye, disconnect reasons, stalls, garbage), failing connects and Web API
latency; timing faults (timing.py); token revocation and uninstalls with the events Slack sends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .delivery import Fanout, constant
from .faults import ConnectFault, Faults
from .model import BotRef
from .rtm import RtmRegistry
from .socket_mode import SocketModeHub
from .sockets import SimSocket
from .state import OrgState
from .timing import Timing, TimingRule

SOCKET_MODE_REASONS = ("warning", "refresh_requested", "link_disabled", "too_many_websockets")
LIFECYCLE_EVENTS = frozenset({"app_uninstalled", "tokens_revoked"})
#: slack-protocol-notes.md C: after ``disconnect`` ``warning`` "the socket will close in about 10 s".
WARNING_CLOSE = 10.0


class Controls:
    """Fault injection over the simulator's parts (built by GridSimulator's constructor)."""

    close_delay: float
    time_scale: float
    _state: OrgState
    _faults: Faults
    _timing: Timing
    _rtm: RtmRegistry
    _sm: SocketModeHub
    _fanout: Fanout
    _tasks: set[asyncio.Task[None]]

    # faults: sockets
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

        ``warning`` closes the socket about 10 s (divided by ``time_scale``) later;
        ``refresh_requested`` closes it ``close_delay`` later so the client can open a replacement
        first; ``link_disabled`` closes it and makes apps.connections.open fail with
        ``link_disabled`` until clear_faults(); ``too_many_websockets`` closes it at once.
        """
        if reason not in SOCKET_MODE_REASONS:
            raise ValueError(f"reason must be one of {', '.join(SOCKET_MODE_REASONS)}")
        if reason == "link_disabled":
            self._faults.link_disabled.add(app)
        for sock in self._sm.sockets(app):
            await self._sm.disconnect(sock, reason)
            if reason == "warning":
                self._spawn(sock.close(WARNING_CLOSE / self.time_scale), f"sim.socket_mode.warning.{sock.id}")
            elif reason == "refresh_requested":
                self._spawn(sock.close(self.close_delay), f"sim.socket_mode.refresh.{sock.id}")
            else:
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
        """Every fault off: connect failures, latency, stalls, disabled links, timing rules."""
        self._faults.clear()
        self._rtm.stalled.clear()
        self._timing.clear()

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

    # faults: timing (timing.py)
    def lag(
        self,
        seconds: float,
        *,
        jitter: float = 0.0,
        team: str | None = None,
        app: str | None = None,
        channel: str | None = None,
        match: str | None = None,
        times: int | None = None,
    ) -> TimingRule:
        """Copies to ``team`` (RTM receiver or Socket Mode authorization) / ``app`` arrive
        ``seconds`` (+ uniform(0, ``jitter``)) late; ``match``/``channel``/``times`` narrow it to
        messages. Returns the rule, for :meth:`remove_timing`."""
        return self._timing.add(
            TimingRule(
                lag=seconds, jitter=jitter, team=team, app=app, channel=channel, match=match, times=times
            )
        )

    def reorder(
        self,
        window: float,
        *,
        team: str | None = None,
        app: str | None = None,
        channel: str | None = None,
        match: str | None = None,
        times: int | None = None,
    ) -> TimingRule:
        """Each copy late by uniform(0, ``window``): copies to one socket overtake each other."""
        return self.lag(0.0, jitter=window, team=team, app=app, channel=channel, match=match, times=times)

    def duplicate(
        self,
        probability: float = 1.0,
        *,
        after: float = 0.0,
        team: str | None = None,
        app: str | None = None,
        channel: str | None = None,
        match: str | None = None,
        times: int | None = None,
    ) -> TimingRule:
        """Write matching copies a second time ``after`` seconds later (Socket Mode: a second
        envelope with its own event_id, authorized for another installation when there is one)."""
        return self._timing.add(
            TimingRule(
                duplicate=probability,
                duplicate_after=after,
                team=team,
                app=app,
                channel=channel,
                match=match,
                times=times,
            )
        )

    def remove_timing(self, rule: TimingRule) -> None:
        self._timing.remove(rule)

    # lifecycle events
    async def revoke_token(self, token: str) -> None:
        """Calls with the token now get ``token_revoked`` and its sockets are closed; a bot
        token's app hears ``tokens_revoked`` (Events API) first, and its app-level sockets
        deliver nothing more for that installation."""
        info = self._state.tokens.get(token)
        if info is None:
            raise ValueError("unknown token")
        if info.bot is not None and self._state.is_live(info.bot):
            event = {"type": "tokens_revoked", "tokens": {"bot": [info.bot.installation.bot_user_id]}}
            await self._fanout.to_bots([info.bot], constant(event), info.bot.team, None, rtm=False)
        self._state.revoked.add(token)
        for sock in self._all_sockets():
            if sock.token == token:
                await sock.close()

    async def uninstall(self, app: str, team: str) -> None:
        """The app is removed from ``team``: ``app_uninstalled`` (Events API), then as
        :meth:`revoke_token` for its bot token."""
        bot = next((b for b in self._state.topology.bots_on(team) if b.app.id == app), None)
        if bot is None:
            raise ValueError(f"app {app!r} is not installed on {team!r}")
        await self._uninstall([bot])

    async def _uninstall(self, bots: list[BotRef]) -> None:
        for bot in bots:
            if self._state.is_live(bot):
                event = {"type": "app_uninstalled"}
                await self._fanout.to_bots([bot], constant(event), bot.team, None, rtm=False)
            await self.revoke_token(bot.installation.bot_token)
            self._state.uninstalled.add(bot.key)

    def _authorized_live(self, payload: dict[str, Any]) -> bool:
        """May this envelope still be redelivered? Not once its installation is gone, except the
        events that say it went (notes A: ``tokens_revoked`` and ``app_uninstalled`` are Events
        API events, sent when it happens): an app whose socket was down then still hears them,
        until the app is installed there again [infer: a retry of an uninstall that a reinstall
        overtook is not documented; sending it would stop the new installation]."""
        auths = payload.get("authorizations") or [{}]
        key = (str(payload.get("api_app_id")), str(auths[0].get("team_id")))
        bot = next((b for b in self._state.topology.bots if b.key == key), None)
        live = bot is None or self._state.is_live(bot)
        event = payload.get("event")
        if isinstance(event, dict) and event.get("type") in LIFECYCLE_EVENTS:
            return not live
        return live

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
