"""The delivery rules: RTM gets one copy per connected installation, Socket Mode one per app."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from .model import BotRef, Conversation
from .records import Delivery, Journal
from .rtm import RtmRegistry, RtmSocket
from .socket_mode import SocketModeHub
from .state import OrgState

#: Renders the event as seen by one receiving team.
EventView = Callable[[str], dict[str, Any]]


def constant(event: dict[str, Any]) -> EventView:
    """The same event for every receiving team."""
    return lambda _team: event


class Fanout:
    def __init__(
        self,
        state: OrgState,
        rtm: RtmRegistry,
        socket_mode: SocketModeHub,
        rng: random.Random,
        journal: Journal,
    ) -> None:
        self._state = state
        self._deliveries = journal.deliveries
        self._rtm = rtm
        self._sm = socket_mode
        self._rng = rng

    async def to_conversation(self, conv: Conversation, view: EventView, source_team: str) -> None:
        """Deliver an event that happened in ``conv`` to every bot that is a member of it."""
        bots = self._state.bots_in(conv)
        await self._to_rtm(bots, view)
        await self._to_socket_mode(bots, view, source_team, conv.id)

    async def to_team(self, event: dict[str, Any], team: str) -> None:
        """Deliver a team-level event to the installations on ``team``."""
        bots = [b for b in self._state.topology.bots_on(team) if self._state.is_installed(b)]
        await self.to_bots(bots, constant(event), team, None)

    async def to_bots(
        self, bots: Sequence[BotRef], view: EventView, source_team: str, channel: str | None
    ) -> None:
        await self._to_rtm(bots, view)
        await self._to_socket_mode(bots, view, source_team, channel)

    async def to_rtm_only(self, bots: Sequence[BotRef], view: EventView) -> None:
        await self._to_rtm(bots, view)

    async def _to_rtm(self, bots: Sequence[BotRef], view: EventView) -> None:
        # Each team's copy is serialised once; the order of the copies is random per message
        # because Slack gives no ordering guarantee between teams' sockets.
        targets: list[tuple[RtmSocket, bytes, Delivery]] = []
        for bot in bots:
            socks = self._rtm.live(bot)
            if socks:
                event = view(bot.team)
                data = orjson.dumps(event)
                channel, ts = event.get("channel"), event.get("ts")
                for s in socks:
                    channel_id = channel if isinstance(channel, str) else None
                    targets.append((s, data, Delivery(bot.team, s.id, channel_id, ts)))
        if len(targets) > 1:
            self._rng.shuffle(targets)
        for sock, data, delivery in targets:
            if await sock.send(data):
                self._deliveries.append(delivery)

    async def _to_socket_mode(
        self, bots: Sequence[BotRef], view: EventView, source_team: str, channel: str | None
    ) -> None:
        by_app: dict[str, list[BotRef]] = {}
        for bot in bots:
            if bot.app.app_token is not None:
                by_app.setdefault(bot.app.id, []).append(bot)
        for app_id, app_bots in by_app.items():
            # Slack sends one event per app however many of its installs share the channel;
            # authorizations names just one of them.
            auth = self._rng.choice(app_bots)
            await self._sm.deliver(app_id, self._payload(auth, view(auth.team), source_team, channel))

    def _payload(
        self, auth: BotRef, event: dict[str, Any], source_team: str, channel: str | None
    ) -> dict[str, Any]:
        enterprise_id = self._state.topology.enterprise.id
        now = time.time()
        event_type = event.get("type", "event")
        return {
            "token": "",
            "team_id": source_team,
            "enterprise_id": enterprise_id,
            "api_app_id": auth.app.id,
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(6).upper(),
            "event_time": int(now),
            "event": event,
            "authorizations": [
                {
                    "enterprise_id": enterprise_id,
                    "team_id": auth.team,
                    "user_id": auth.installation.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{event_type}-{source_team}-{channel or ''}",
        }
