"""Mutable state of the simulated org: tokens, live membership, messages, tickets, installs."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .model import App, BotRef, Conversation, Topology, User

TokenKind = Literal["bot", "user", "app"]
TICKET_TTL = 30.0


@dataclass(frozen=True)
class TokenInfo:
    token: str
    kind: TokenKind
    team_id: str | None = None
    user_id: str | None = None
    bot: BotRef | None = None
    user: User | None = None
    app: App | None = None


@dataclass(frozen=True)
class Message:
    """A message as stored once; each receiving team gets its own rendering of it."""

    channel: str
    ts: str
    text: str
    source_team: str
    user: User | None = None
    bot: BotRef | None = None
    thread_ts: str | None = None
    blocks: list[Any] | None = None
    client_msg_id: str = field(default_factory=lambda: secrets.token_hex(16))
    edited: tuple[User, str] | None = None  # (editor, edit ts)


@dataclass(frozen=True)
class Ticket:
    kind: Literal["rtm", "socket_mode"]
    token: str
    expires: float
    bot: BotRef | None = None
    app: App | None = None


class TsClock:
    """Slack-style ``seconds.micros`` timestamps, strictly increasing so each ts is unique."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._last = 0

    def next(self) -> str:
        micros = max(int(self._now() * 1_000_000), self._last + 1)
        self._last = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class OrgState:
    def __init__(self, topology: Topology, now: Callable[[], float] = time.monotonic) -> None:
        self.topology = topology
        self.clock = TsClock()
        self._now = now
        self.tokens = _index_tokens(topology)
        self.revoked: set[str] = set()
        self.uninstalled: set[tuple[str, str]] = set()  # (app id, team id)
        self.bot_teams = {c.id: set(c.bot_teams) for c in topology.conversations}
        self.messages: dict[tuple[str, str], Message] = {}
        self._tickets: dict[str, Ticket] = {}

    # installations and membership
    def is_installed(self, bot: BotRef) -> bool:
        return (bot.app.id, bot.team) not in self.uninstalled

    def bots_in(self, conv: Conversation) -> list[BotRef]:
        """Live installations whose bot is a member of ``conv`` (by team)."""
        members = self.bot_teams[conv.id]
        return [
            b
            for b in self.topology.bots
            if b.team in members and b.team in conv.teams and self.is_installed(b)
        ]

    def is_member(self, bot: BotRef, conv: Conversation) -> bool:
        return bot.team in self.bot_teams[conv.id] and self.is_installed(bot)

    def conversation_for(self, channel: str, team: str | None) -> Conversation | None:
        """The conversation as visible from ``team`` (None: any team)."""
        conv = self.topology.conversation_by_id.get(channel)
        if conv is None or (team is not None and team not in conv.teams):
            return None
        return conv

    def source_team(self, user: User, conv: Conversation) -> str:
        """The team a user writes from: home if connected, else their first connected team."""
        if user.home_team in conv.teams:
            return user.home_team
        for team in user.teams:
            if team in conv.teams:
                return team
        return conv.host_team

    # tickets for websocket URLs: single use, expire after 30 s like rtm.connect's URL
    def new_ticket(self, ticket: Ticket) -> str:
        key = secrets.token_urlsafe(16)
        self._tickets[key] = ticket
        return key

    def make_ticket(
        self,
        kind: Literal["rtm", "socket_mode"],
        token: str,
        *,
        bot: BotRef | None = None,
        app: App | None = None,
    ) -> str:
        return self.new_ticket(Ticket(kind, token, self._now() + TICKET_TTL, bot=bot, app=app))

    def take_ticket(self, key: str, kind: str) -> Ticket | None:
        ticket = self._tickets.pop(key, None)
        if ticket is None or ticket.kind != kind or ticket.expires < self._now():
            return None
        if ticket.token in self.revoked:
            return None
        return ticket


def _index_tokens(topo: Topology) -> dict[str, TokenInfo]:
    tokens: dict[str, TokenInfo] = {}
    for bot in topo.bots:
        inst = bot.installation
        tokens[inst.bot_token] = TokenInfo(
            inst.bot_token,
            "bot",
            team_id=inst.team,
            user_id=inst.bot_user_id,
            bot=bot,
            app=bot.app,
        )
    for app in topo.apps:
        if app.app_token:
            tokens[app.app_token] = TokenInfo(app.app_token, "app", app=app)
    for user in topo.users:
        if user.user_token:
            tokens[user.user_token] = TokenInfo(
                user.user_token, "user", team_id=user.home_team, user_id=user.id, user=user
            )
    return tokens
