"""Mutable state of the simulated org: the live topology, tokens, messages, tickets, installs.

The org changes while the simulator runs (members join and leave, channels are shared, teams
join): ``topology`` is replaced by a new validated snapshot on each change, so everything that
reads it sees one consistent org, and an installation is known by its key (app id, team id).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .messages import KEEP_MESSAGES, Message, MessageStore
from .model import App, BotRef, Conversation, Topology, User
from .translate import Viewer

TokenKind = Literal["bot", "user", "app"]
TICKET_TTL = 30.0

__all__ = ["Message", "OrgState", "Ticket", "TokenInfo", "TokenKind", "TsClock"]


@dataclass(frozen=True)
class TokenInfo:
    token: str
    kind: TokenKind
    team_id: str | None = None
    user_id: str | None = None
    bot: BotRef | None = None
    user: User | None = None
    app: App | None = None

    @property
    def viewer(self) -> Viewer:
        """How answers to this token name users (user tokens belong to no app: no translation)."""
        assert self.team_id is not None
        translate = self.bot is not None and self.bot.app.translation_layer
        return Viewer(self.team_id, translate)


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
    def __init__(
        self,
        topology: Topology,
        now: Callable[[], float] = time.monotonic,
        *,
        keep_messages: int = KEEP_MESSAGES,
    ) -> None:
        self.clock = TsClock()
        self._now = now
        self.revoked: set[str] = set()
        self.uninstalled: set[tuple[str, str]] = set()  # (app id, team id)
        self.org_wide: set[tuple[str, str]] = set()  # (app id, team id) rows of org installs
        self.migrating: dict[str, str] = {}  # team -> the error its calls answer (Grid migration)
        self.messages = MessageStore(keep_messages)
        self._tickets: dict[str, Ticket] = {}
        # OAuth (oauth.py): earlier tokens of a rotated installation -> its current token, and
        # the deadline of every expiring token (platform-2026.md, "OAuth and token rotation").
        self.aliases: dict[str, str] = {}
        self.expires: dict[str, float] = {}
        self.topology = topology

    @property
    def topology(self) -> Topology:
        return self._topology

    @topology.setter
    def topology(self, topology: Topology) -> None:
        self._topology = topology
        self.tokens = _index_tokens(topology)
        for old, current in self.aliases.items():
            if current in self.tokens:
                self.tokens[old] = dataclasses.replace(self.tokens[current], token=old)

    def expired(self, token: str) -> bool:
        """An expiring token past its deadline: every call with it answers ``token_expired``."""
        deadline = self.expires.get(token)
        return deadline is not None and self._now() >= deadline

    def now(self) -> float:
        return self._now()

    # installations and membership
    def is_installed(self, bot: BotRef) -> bool:
        return bot.key not in self.uninstalled

    def is_live(self, bot: BotRef) -> bool:
        """Installed and its token not revoked: Slack delivers events for it."""
        return bot.key not in self.uninstalled and bot.installation.bot_token not in self.revoked

    def bots_in(self, conv: Conversation) -> list[BotRef]:
        """Live installations whose bot is a member of ``conv`` (by team)."""
        return [
            b
            for b in self.topology.bots
            if b.team in conv.bot_teams and b.team in conv.teams and self.is_live(b)
        ]

    def is_member(self, bot: BotRef, conv: Conversation) -> bool:
        return bot.team in conv.bot_teams and self.is_installed(bot)

    def conversation(self, channel: str) -> Conversation | None:
        return self.topology.conversation_by_id.get(channel)

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

    def add_message(self, msg: Message) -> None:
        self.messages.add(msg)

    # tickets for websocket URLs: single use, expire after 30 s like rtm.connect's URL
    def new_ticket(self, ticket: Ticket) -> str:
        if len(self._tickets) > 64:  # URLs asked for and never used must not pile up
            now = self._now()
            for key in [k for k, t in self._tickets.items() if t.expires < now]:
                del self._tickets[key]
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

    @property
    def open_tickets(self) -> int:
        return len(self._tickets)


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
