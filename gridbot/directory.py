"""Who and where: ``users.info``, ``conversations.info`` and ``team.info`` answers, cached.

One :class:`Directory` is shared by every plugin of a runtime; a burst of messages from one
stranger costs one API call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

V = TypeVar("V")
MIGRATION_BATCH = 400  # migration.exchange takes at most this many ids a call (platform-2026.md)


class UserNotFound(LookupError):
    """``users.info`` knows no such user (the id is wrong, or the user is not in this org)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(user_id)
        self.user_id = user_id


@dataclass(frozen=True)
class Profile:
    """A person (or bot user) as ``users.info`` describes them, under their stable id."""

    id: str  # the stable W id when the user belongs to an Enterprise Grid org
    name: str
    real_name: str
    home_team: str | None
    teams: tuple[str, ...]  # the org's teams they belong to (enterprise_user.teams)
    enterprise_id: str | None
    is_admin: bool  # org admin (enterprise_user), not a workspace admin
    is_owner: bool  # org owner (enterprise_user)
    is_restricted: bool  # a guest
    is_bot: bool
    deleted: bool
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, user: Mapping[str, Any]) -> Profile:
        ent = user.get("enterprise_user") or {}
        profile = user.get("profile") or {}
        return cls(
            # With the translation layer on, ``id`` is the reader's legacy U id and
            # ``enterprise_user.id`` the stable W id (enterprise-grid-developer-guide, "User object changes").
            id=str(ent.get("id") or user.get("id", "")),
            name=str(user.get("name", "")),
            real_name=str(user.get("real_name") or profile.get("real_name") or user.get("name", "")),
            home_team=user.get("team_id"),
            teams=tuple(ent.get("teams") or ([user["team_id"]] if user.get("team_id") else [])),
            enterprise_id=ent.get("enterprise_id"),
            is_admin=bool(ent.get("is_admin")),
            is_owner=bool(ent.get("is_owner")),
            is_restricted=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
            is_bot=bool(user.get("is_bot")),
            deleted=bool(user.get("deleted")),
            raw=user,
        )

    @property
    def is_org_admin(self) -> bool:
        """An admin or owner of the Enterprise Grid org, as ``enterprise_user`` says."""
        return self.is_admin or self.is_owner


@dataclass(frozen=True)
class ChannelInfo:
    """What ``conversations.info`` says about a conversation's sharing."""

    id: str
    is_shared: bool
    is_org_shared: bool
    is_ext_shared: bool
    is_im: bool
    is_mpim: bool
    is_private: bool
    team_ids: tuple[str, ...]  # shared_team_ids, or empty for a single-team conversation
    host_team: str | None

    @property
    def shared(self) -> bool:
        """Seen by more than one team: shared within the org or with another organisation."""
        return self.is_shared or self.is_org_shared or self.is_ext_shared

    @classmethod
    def from_api(cls, channel: Mapping[str, Any]) -> ChannelInfo:
        return cls(
            id=str(channel.get("id", "")),
            is_shared=bool(channel.get("is_shared")),
            is_org_shared=bool(channel.get("is_org_shared")),
            is_ext_shared=bool(channel.get("is_ext_shared")),
            is_im=bool(channel.get("is_im")),
            is_mpim=bool(channel.get("is_mpim")),
            is_private=bool(channel.get("is_private")),
            team_ids=tuple(channel.get("shared_team_ids") or ()),
            host_team=channel.get("conversation_host_id"),
        )


class TtlCache(Generic[V]):
    """A bounded cache whose entries live ``ttl`` seconds. Concurrent misses for one key share one
    lookup, so a burst of messages from one stranger costs one API call."""

    def __init__(self, ttl: float, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[V]] = {}

    def peek(self, key: str) -> V | None:
        hit = self._items.get(key)
        if hit is None or hit[0] <= self._clock():
            return None
        return hit[1]

    def put(self, keys: Sequence[str], value: V) -> None:
        expires = self._clock() + self.ttl
        for key in keys:
            self._items[key] = (expires, value)
            self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    async def get(self, key: str, load: Callable[[], Awaitable[tuple[Sequence[str], V]]]) -> V:
        """The cached value, or ``load()``'s (which also names every key the value answers to)."""
        hit = self.peek(key)
        if hit is not None:
            return hit
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            keys, value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            self.put([key, *keys], value)
            future.set_result(value)
            return value
        finally:
            del self._inflight[key]


class Directory:
    """``users.info``, ``conversations.info`` and ``team.info`` answers, cached for a while and
    shared by every plugin of one runtime. A user is cached under both the id asked for and their
    stable W id, so a legacy U id from the translation layer and the W id are one person."""

    def __init__(
        self,
        ttl: float = 600.0,
        capacity: int = 10_000,
        *,
        channel_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users: TtlCache[Profile] = TtlCache(ttl, capacity, clock)
        self.channels: TtlCache[ChannelInfo] = TtlCache(channel_ttl, capacity, clock)
        self.teams: TtlCache[str] = TtlCache(ttl, 1_000, clock)
        # migration.exchange answers: (team, direction, id) -> the other id ("" when it has none).
        # A mapping never changes once a workspace has joined: a day, bounded by capacity.
        self.exchanged: TtlCache[str] = TtlCache(86_400.0, capacity, clock)

    async def user(self, client: AsyncWebClient, user_id: str, *, fresh: bool = False) -> Profile:
        async def load() -> tuple[Sequence[str], Profile]:
            try:
                response = await client.users_info(user=user_id)
            except SlackApiError as exc:
                if exc.response.get("error") in ("user_not_found", "users_not_found"):
                    raise UserNotFound(user_id) from None
                raise
            profile = Profile.from_api(response["user"])
            return [profile.id], profile

        if fresh:
            keys, profile = await load()
            self.users.put([user_id, *keys], profile)
            return profile
        return await self.users.get(user_id, load)

    async def channel(self, client: AsyncWebClient, channel: str) -> ChannelInfo:
        async def load() -> tuple[Sequence[str], ChannelInfo]:
            response = await client.conversations_info(channel=channel)
            return [], ChannelInfo.from_api(response["channel"])

        return await self.channels.get(channel, load)

    async def team_name(self, client: AsyncWebClient, team_id: str) -> str:
        async def load() -> tuple[Sequence[str], str]:
            try:
                response = await client.team_info(team=team_id)
            except SlackApiError:
                return [], team_id  # a team this token may not describe: its id will do
            return [], str(response["team"].get("name") or team_id)

        return await self.teams.get(team_id, load)

    async def exchange(
        self, client: AsyncWebClient, user_ids: Sequence[str], *, team_id: str, to_old: bool = False
    ) -> dict[str, str]:
        """Legacy user ids of ``team_id`` (a workspace that joined the org) translated to the org's
        ids, or with ``to_old`` back: ``{asked: translated}`` for each id that has a counterpart
        (ids without one are left out). ``migration.exchange``, at most 400 ids a call; every
        answer cached, so ids a plugin stored are translated once."""
        direction = "old" if to_old else "new"
        found: dict[str, str] = {}
        missing = []
        for user_id in dict.fromkeys(user_ids):
            hit = self.exchanged.peek(f"{team_id}/{direction}/{user_id}")
            if hit is None:
                missing.append(user_id)
            elif hit:
                found[user_id] = hit
        for start in range(0, len(missing), MIGRATION_BATCH):
            batch = missing[start : start + MIGRATION_BATCH]
            response = await client.api_call(
                "migration.exchange",
                http_verb="GET",
                params={"users": ",".join(batch), "team_id": team_id, "to_old": str(to_old).lower()},
            )
            mapping = {str(k): str(v) for k, v in (response.get("user_id_map") or {}).items()}
            for user_id in batch:
                self.exchanged.put([f"{team_id}/{direction}/{user_id}"], mapping.get(user_id, ""))
            found.update(mapping)
        return found
