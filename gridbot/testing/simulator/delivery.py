"""The delivery rules: RTM gets one copy per connected installation, Socket Mode or the app's
request URL (http_delivery.py) one per app.

Copies go out in a random order per message (Slack gives no ordering between teams' sockets);
timing faults (timing.py) can make any copy late, or write it twice.
"""

from __future__ import annotations

import base64
import random
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from .http_delivery import HttpHub
from .model import BotRef, Conversation
from .records import Delivery, Journal
from .rtm import RtmRegistry, RtmSocket
from .socket_mode import SocketModeHub
from .state import OrgState
from .timing import Timing, TimingRule
from .translate import Viewer

#: Renders the event as seen by one reader (receiving team, through its app).
EventView = Callable[[Viewer], dict[str, Any]]


def constant(event: dict[str, Any]) -> EventView:
    """The same event for every receiving team."""
    return lambda _viewer: event


def viewer_of(bot: BotRef) -> Viewer:
    return Viewer(bot.team, bot.app.translation_layer)


def event_context(event_type: str, source_team: str, app_id: str, channel: str | None) -> str:
    """Opaque to clients, like Slack's (``4-`` + base64 JSON); apps.event.authorizations.list
    reads it back."""
    data = orjson.dumps({"et": event_type, "tid": source_team, "aid": app_id, "cid": channel or ""})
    return "4-" + base64.urlsafe_b64encode(data).decode().rstrip("=")


def read_event_context(context: str) -> dict[str, str] | None:
    if not context.startswith("4-"):
        return None
    raw = context[2:]
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


class Fanout:
    def __init__(
        self,
        state: OrgState,
        rtm: RtmRegistry,
        socket_mode: SocketModeHub,
        rng: random.Random,
        journal: Journal,
        timing: Timing,
        http: HttpHub,
    ) -> None:
        self._state = state
        self._http = http
        self._deliveries = journal.deliveries
        self._rtm = rtm
        self._sm = socket_mode
        self._rng = rng
        self._timing = timing

    async def to_conversation(
        self,
        conv: Conversation,
        view: EventView,
        source_team: str,
        *,
        text: str | None = None,
        rtm: bool = True,
    ) -> None:
        """Deliver an event that happened in ``conv`` to every bot that is a member of it."""
        await self.to_bots(self._state.bots_in(conv), view, source_team, conv.id, text=text, rtm=rtm)

    async def to_team(self, event: dict[str, Any], team: str, *, rtm: bool = True) -> None:
        """Deliver a team-level event to the live installations on ``team``."""
        bots = [b for b in self._state.topology.bots_on(team) if self._state.is_live(b)]
        await self.to_bots(bots, constant(event), team, None, rtm=rtm)

    async def to_bots(
        self,
        bots: Sequence[BotRef],
        view: EventView,
        source_team: str,
        channel: str | None,
        *,
        text: str | None = None,
        rtm: bool = True,
        socket_mode: bool = True,
    ) -> None:
        rules = self._timing.for_event(channel, text, {b.team for b in bots}, {b.app.id for b in bots})
        if rtm:
            await self._to_rtm(bots, view, rules)
        if socket_mode:
            await self._to_socket_mode(bots, view, source_team, channel, rules)

    async def _to_rtm(self, bots: Sequence[BotRef], view: EventView, rules: list[TimingRule]) -> None:
        # Each team's copy is serialised once; the order of the copies is random per message
        # because Slack gives no ordering guarantee between teams' sockets.
        targets: list[tuple[RtmSocket, bytes, Delivery]] = []
        for bot in bots:
            socks = self._rtm.live(bot)
            if socks:
                event = view(viewer_of(bot))
                data = orjson.dumps(event)
                channel, ts = event.get("channel"), event.get("ts") or event.get("event_ts")
                channel_id = channel if isinstance(channel, str) else None
                ts_str = ts if isinstance(ts, str) else None
                for s in socks:
                    targets.append((s, data, Delivery(bot.team, s.id, channel_id, ts_str)))
        if len(targets) > 1:
            self._rng.shuffle(targets)
        for sock, data, delivery in targets:
            plan = self._timing.plan(
                rules, team=delivery.team, app=None, channel=delivery.channel, ts=delivery.ts
            )
            if plan.delay:
                self._timing.later(plan.delay, self._writer(sock, data, delivery), f"sim.rtm.lag.{sock.id}")
            else:
                await self._write(sock, data, delivery)
            if plan.again is not None:
                self._timing.later(
                    plan.delay + plan.again, self._writer(sock, data, delivery), f"sim.rtm.dup.{sock.id}"
                )

    def _writer(self, sock: RtmSocket, data: bytes, delivery: Delivery) -> Callable[[], Any]:
        return lambda: self._write(sock, data, delivery)

    async def _write(self, sock: RtmSocket, data: bytes, delivery: Delivery) -> None:
        if await sock.send(data):
            self._deliveries.append(delivery)

    async def _to_socket_mode(
        self,
        bots: Sequence[BotRef],
        view: EventView,
        source_team: str,
        channel: str | None,
        rules: list[TimingRule],
    ) -> None:
        by_app: dict[str, list[BotRef]] = {}
        for bot in bots:
            if bot.app.app_token is not None or self._http.subscribed(bot.app.id):
                by_app.setdefault(bot.app.id, []).append(bot)
        for app_id, app_bots in by_app.items():
            # Slack sends one event per app however many of its installs share the channel;
            # authorizations names just one of them (slack-protocol-notes.md C, D).
            auth = self._rng.choice(app_bots)
            payload = self.payload(auth, view(viewer_of(auth)), source_team, channel)
            event = payload["event"]
            ts = event.get("ts") or event.get("event_ts")
            plan = self._timing.plan(
                rules, team=auth.team, app=app_id, channel=channel, ts=ts if isinstance(ts, str) else None
            )
            if plan.delay:
                self._timing.later(plan.delay, self._envelope(app_id, payload), f"sim.sm.lag.{app_id}")
            else:
                await self._per_app(app_id, payload)
            if plan.again is not None:
                # The field report: a second delivery with another installation's team id (and
                # so its own event_id), which only the message identity can dedup.
                other = self._rng.choice([b for b in app_bots if b != auth] or [auth])
                twin = self.payload(other, view(viewer_of(other)), source_team, channel)
                self._timing.later(
                    plan.delay + plan.again, self._envelope(app_id, twin), f"sim.sm.dup.{app_id}"
                )

    async def to_app(self, app_id: str, payload: dict[str, Any]) -> None:
        """One payload to the app, as it is (an app-level event: org_installs.py)."""
        await self._per_app(app_id, payload)

    def _envelope(self, app_id: str, payload: dict[str, Any]) -> Callable[[], Any]:
        return lambda: self._per_app(app_id, payload)

    async def _per_app(self, app_id: str, payload: dict[str, Any]) -> None:
        # An app with a request URL has Socket Mode off: its events go to the URL.
        if self._http.subscribed(app_id):
            self._http.submit(app_id, payload)
        else:
            await self._sm.deliver(app_id, payload)

    def payload(
        self, auth: BotRef, event: dict[str, Any], source_team: str, channel: str | None
    ) -> dict[str, Any]:
        """The Events API wrapper (slack-protocol-notes.md D) for ``auth``'s installation."""
        enterprise_id = self._state.topology.enterprise.id
        event_type = str(event.get("type", "event"))
        org_wide = auth.key in self._state.org_wide
        return {
            "token": "",
            "team_id": source_team,
            "enterprise_id": enterprise_id,
            "api_app_id": auth.app.id,
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(6).upper(),
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [
                {
                    "enterprise_id": enterprise_id,
                    # an org-wide install names no team (slack-protocol-notes.md C, D)
                    "team_id": None if org_wide else auth.team,
                    "user_id": auth.installation.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": org_wide,
                }
            ],
            "is_ext_shared_channel": False,
            "context_team_id": source_team,
            "context_enterprise_id": enterprise_id,
            "event_context": event_context(event_type, source_team, auth.app.id, channel),
        }
