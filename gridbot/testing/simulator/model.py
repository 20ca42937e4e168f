"""Topology of one simulated Enterprise Grid org: frozen dataclasses, TOML loading, validation.

Validation errors are ``ValueError`` naming the offending path, e.g.
``conversations[2].teams: unknown team 'T9'``, so a typo in a topology file is found at load time
rather than as a puzzling delivery in a test.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

KINDS = ("channel", "private", "im", "mpim")


@dataclass(frozen=True)
class Enterprise:
    id: str
    name: str


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    domain: str


@dataclass(frozen=True)
class Installation:
    """One app installed on one team: the bot token and the bot user that token acts as."""

    team: str
    bot_token: str
    bot_user_id: str
    bot_id: str


@dataclass(frozen=True)
class App:
    """An app and where it is installed.

    ``translation_layer``: Slack's per-app setting ("When the translation layer is turned on for
    your app, we'll use the old user ID whenever we send you events"; enterprise-grid-developer-guide,
    "A translation layer for the Enterprise Grid"). On, each team sees a user's legacy ``U`` id
    where the user has one there, with ``user_id_mapping_old_to_new``; off, ``W`` ids everywhere.
    """

    id: str
    name: str
    app_token: str | None = None
    installations: tuple[Installation, ...] = ()
    translation_layer: bool = False


@dataclass(frozen=True)
class User:
    id: str
    name: str
    home_team: str
    teams: tuple[str, ...]
    real_name: str = ""
    legacy_ids: Mapping[str, str] = field(default_factory=dict)
    is_admin: bool = False
    is_owner: bool = False
    is_restricted: bool = False
    user_token: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: str
    teams: tuple[str, ...]
    host_team: str
    members: tuple[str, ...] = ()
    bot_teams: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class AppRequest:
    id: str
    app_id: str
    app_name: str
    team: str
    user: str
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BotRef:
    """An installation together with its app, the unit that owns sockets and tokens."""

    app: App
    installation: Installation

    @property
    def team(self) -> str:
        return self.installation.team

    @property
    def key(self) -> tuple[str, str]:
        """(app id, team id): the identity of an installation across org changes."""
        return (self.app.id, self.installation.team)


@dataclass(frozen=True)
class Topology:
    enterprise: Enterprise
    teams: tuple[Team, ...]
    apps: tuple[App, ...] = ()
    users: tuple[User, ...] = ()
    conversations: tuple[Conversation, ...] = ()
    app_requests: tuple[AppRequest, ...] = ()

    def __post_init__(self) -> None:
        _validate(self)

    @cached_property
    def team_by_id(self) -> dict[str, Team]:
        return {t.id: t for t in self.teams}

    @cached_property
    def app_by_id(self) -> dict[str, App]:
        return {a.id: a for a in self.apps}

    @cached_property
    def user_by_id(self) -> dict[str, User]:
        """Users by W id and by every legacy U id (the translation layer works both ways)."""
        index = {u.id: u for u in self.users}
        for u in self.users:
            for legacy in u.legacy_ids.values():
                index[legacy] = u
        return index

    @cached_property
    def conversation_by_id(self) -> dict[str, Conversation]:
        return {c.id: c for c in self.conversations}

    @cached_property
    def bots(self) -> tuple[BotRef, ...]:
        return tuple(BotRef(a, i) for a in self.apps for i in a.installations)

    def bots_on(self, team: str) -> tuple[BotRef, ...]:
        return tuple(b for b in self.bots if b.team == team)

    def bot_by_user_id(self, user_id: str) -> BotRef | None:
        return next((b for b in self.bots if b.installation.bot_user_id == user_id), None)


def load_topology(path: str | Path) -> Topology:
    """Load and validate a topology TOML file."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    try:
        return topology_from_dict(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def default_topology() -> Topology:
    """The developer guide's org: three teams, the app on Team 1 and Team 2, not on Team 3."""
    text = resources.files("gridbot.testing").joinpath("topologies/three_teams.toml").read_text()
    return topology_from_dict(tomllib.loads(text))


def topology_from_dict(data: Mapping[str, Any]) -> Topology:
    r = _Reader(data, "")
    ent = r.table("enterprise")
    topo = Topology(
        enterprise=Enterprise(id=ent.text("id"), name=ent.text("name", "")),
        teams=tuple(
            Team(id=t.text("id"), name=t.text("name", ""), domain=t.text("domain", ""))
            for t in r.tables("teams")
        ),
        apps=tuple(_app(a) for a in r.tables("apps")),
        users=tuple(_user(u) for u in r.tables("users")),
        conversations=tuple(_conversation(c) for c in r.tables("conversations")),
        app_requests=tuple(
            AppRequest(
                id=q.text("id"),
                app_id=q.text("app_id"),
                app_name=q.text("app_name", ""),
                team=q.text("team"),
                user=q.text("user"),
                scopes=q.strs("scopes"),
            )
            for q in r.tables("app_requests")
        ),
    )
    return topo


def _app(a: _Reader) -> App:
    return App(
        id=a.text("id"),
        name=a.text("name", ""),
        app_token=a.opt_str("app_token"),
        translation_layer=a.flag("translation_layer"),
        installations=tuple(
            Installation(
                team=i.text("team"),
                bot_token=i.text("bot_token"),
                bot_user_id=i.text("bot_user_id"),
                bot_id=i.text("bot_id"),
            )
            for i in a.tables("installations")
        ),
    )


def _user(u: _Reader) -> User:
    legacy = u.table("legacy_ids", required=False)
    return User(
        id=u.text("id"),
        name=u.text("name"),
        real_name=u.text("real_name", ""),
        home_team=u.text("home_team"),
        teams=u.strs("teams"),
        legacy_ids={k: legacy.text(k) for k in legacy.keys()},
        is_admin=u.flag("is_admin"),
        is_owner=u.flag("is_owner"),
        is_restricted=u.flag("is_restricted"),
        user_token=u.opt_str("user_token"),
    )


def _conversation(c: _Reader) -> Conversation:
    return Conversation(
        id=c.text("id"),
        name=c.text("name", ""),
        kind=c.text("kind"),
        teams=c.strs("teams"),
        host_team=c.text("host_team"),
        members=c.strs("members"),
        bot_teams=c.strs("bot_teams"),
    )


class _Reader:
    """Typed access to one TOML table that names the key path in every error."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self._data = data
        self._path = path

    def _key(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def keys(self) -> list[str]:
        return list(self._data)

    def text(self, key: str, default: str | None = None) -> str:
        value = self._data.get(key, default)
        if value is None:
            raise ValueError(f"{self._key(key)}: missing")
        if not isinstance(value, str):
            raise ValueError(f"{self._key(key)}: expected a string, got {value!r}")
        return value

    def opt_str(self, key: str) -> str | None:
        return self.text(key) if key in self._data else None

    def flag(self, key: str) -> bool:
        value = self._data.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(f"{self._key(key)}: expected true or false, got {value!r}")
        return value

    def strs(self, key: str) -> tuple[str, ...]:
        value = self._data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{self._key(key)}: expected a list of strings, got {value!r}")
        return tuple(value)

    def table(self, key: str, *, required: bool = True) -> _Reader:
        value = self._data.get(key)
        if value is None and not required:
            return _Reader({}, self._key(key))
        if not isinstance(value, Mapping):
            raise ValueError(f"{self._key(key)}: expected a table")
        return _Reader(value, self._key(key))

    def tables(self, key: str) -> list[_Reader]:
        value = self._data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ValueError(f"{self._key(key)}: expected an array of tables")
        return [_Reader(v, f"{self._key(key)}[{n}]") for n, v in enumerate(value)]


def _validate(topo: Topology) -> None:
    teams = {t.id for t in topo.teams}
    users = {u.id for u in topo.users}
    _unique("teams", [t.id for t in topo.teams])
    _unique("apps", [a.id for a in topo.apps])
    _unique("users", [u.id for u in topo.users])
    _unique("conversations", [c.id for c in topo.conversations])
    _unique("app_requests", [q.id for q in topo.app_requests])
    tokens: list[str] = []
    bot_users: list[str] = []
    for n, app in enumerate(topo.apps):
        if app.app_token:
            tokens.append(app.app_token)
        _unique(f"apps[{n}].installations", [i.team for i in app.installations], what="team")
        for m, inst in enumerate(app.installations):
            _known(f"apps[{n}].installations[{m}].team", [inst.team], teams, "team")
            tokens.append(inst.bot_token)
            bot_users.append(inst.bot_user_id)
    _unique("apps[].installations[].bot_user_id", bot_users, what="bot user")
    for n, user in enumerate(topo.users):
        p = f"users[{n}]"
        _known(f"{p}.home_team", [user.home_team], teams, "team")
        _known(f"{p}.teams", user.teams, teams, "team")
        if user.home_team not in user.teams:
            raise ValueError(f"{p}.teams: must include home_team {user.home_team!r}")
        _known(f"{p}.legacy_ids", list(user.legacy_ids), set(user.teams), "team of this user")
        if user.user_token:
            tokens.append(user.user_token)
    _unique("tokens", tokens, what="token")
    installed = {b.team for b in topo.bots}
    for n, conv in enumerate(topo.conversations):
        p = f"conversations[{n}]"
        if conv.kind not in KINDS:
            raise ValueError(f"{p}.kind: {conv.kind!r} is not one of {', '.join(KINDS)}")
        if not conv.teams:
            raise ValueError(f"{p}.teams: must name at least one team")
        _known(f"{p}.teams", conv.teams, teams, "team")
        _known(f"{p}.host_team", [conv.host_team], set(conv.teams), "team of this conversation")
        _known(f"{p}.members", conv.members, users, "user")
        _known(f"{p}.bot_teams", conv.bot_teams, set(conv.teams), "team of this conversation")
        for team in conv.bot_teams:
            if team not in installed:
                raise ValueError(f"{p}.bot_teams: no app is installed on team {team!r}")
    for n, req in enumerate(topo.app_requests):
        p = f"app_requests[{n}]"
        _known(f"{p}.team", [req.team], teams, "team")
        _known(f"{p}.user", [req.user], users, "user")
    if topo.enterprise.id[:1] != "E":
        raise ValueError(f"enterprise.id: {topo.enterprise.id!r} must start with 'E'")


def _unique(path: str, ids: Sequence[str], *, what: str = "id") -> None:
    seen: set[str] = set()
    for value in ids:
        if value in seen:
            raise ValueError(f"{path}: duplicate {what} {value!r}")
        seen.add(value)


def _known(path: str, values: Sequence[str], known: set[str], what: str) -> None:
    for value in values:
        if value not in known:
            raise ValueError(f"{path}: unknown {what} {value!r}")
