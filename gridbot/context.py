"""What a handler gets: the event, the answering team's client, and a few well-chosen helpers."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.events import Event
from gridbot.store import Store

if TYPE_CHECKING:
    from gridbot.plugins import Route

V = TypeVar("V")


class PluginStore:
    """A plugin's own key-value namespace in the shared store.

    Values are JSON (dicts, lists, strings, numbers, booleans, None): a tuple comes back as a list,
    and anything JSON cannot express is refused with ``TypeError`` by the memory and Redis stores
    alike. Nothing is pickled.
    """

    def __init__(self, store: Store, namespace: str) -> None:
        self._store = store
        self._ns = namespace

    async def get(self, key: str, default: Any = None) -> Any:
        value = await self._store.kv_get(self._ns, key)
        return default if value is None else value

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, for ``ttl`` seconds if given."""
        try:
            orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError as exc:
            raise TypeError(f"store {self._ns}: {key!r} is not a JSON value ({exc})") from None
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be positive")
        await self._store.kv_set(self._ns, key, value, ttl)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""
        return await self._store.kv_delete(self._ns, key)


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
            id=str(user.get("id", "")),
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




@dataclass
class Context:
    """Handed to every handler. ``client`` speaks with the token of the team handling the event.

    The runtime builds one per handler run; the dispatcher fills in ``routes`` and
    ``command_prefix`` (what ``help`` lists).
    """

    event: Event
    team_id: str
    enterprise_id: str | None
    client: AsyncWebClient
    plugin: str
    store: PluginStore
    config: Mapping[str, Any]
    bot_user_id: str
    users: Directory
    routes: Sequence[Route] = ()
    command_prefix: str = ""

    @property
    def team(self) -> str:
        """The id of the team whose installation handles this event (same as ``team_id``)."""
        return self.team_id

    @property
    def channel(self) -> str | None:
        return self.event.channel

    async def reply(
        self,
        text: str | None = None,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread: bool | None = None,
    ) -> dict[str, Any]:
        """Post in the event's conversation: in its thread if it has one (``thread=True``: start one
        under the event; ``thread=False``: never in a thread)."""
        if self.event.channel is None:
            raise ValueError("this event has no conversation to reply in")
        thread_ts = self.event.thread_ts
        if thread is True:
            thread_ts = thread_ts or self.event.ts
        elif thread is False:
            thread_ts = None
        return await self.post(self.event.channel, text, blocks=blocks, thread_ts=thread_ts)

    async def post(
        self,
        channel: str,
        text: str | None = None,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        """Post in any conversation the handling team's bot is in (e.g. from a schedule)."""
        if not text and not blocks:
            raise ValueError("a message needs text or blocks")
        response = await self.client.chat_postMessage(
            channel=channel, text=text or "", blocks=blocks, thread_ts=thread_ts
        )
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def react(self, name: str) -> None:
        """Add the emoji reaction ``name`` to the event's message."""
        if self.event.channel is None or self.event.ts is None:
            raise ValueError("this event has no message to react to")
        await self.client.reactions_add(channel=self.event.channel, timestamp=self.event.ts, name=name)

    async def ephemeral(
        self, text: str | None = None, *, blocks: list[dict[str, Any]] | None = None, user: str | None = None
    ) -> None:
        """A message only ``user`` (default: the event's author) sees, in the event's conversation."""
        target = user or self.event.user
        if target is None or self.event.channel is None:
            raise ValueError("an ephemeral message needs a conversation and a user")
        await self.client.chat_postEphemeral(
            channel=self.event.channel, user=target, text=text or "", blocks=blocks
        )

    async def user(self, user_id: str | None = None, *, fresh: bool = False) -> Profile:
        """The profile of ``user_id`` (default: the event's author), for users of any team.

        Answers are cached for a while; ``fresh=True`` asks Slack again (do that before any
        decision about permissions). Raises :class:`UserNotFound` for an unknown id.
        """
        target = user_id or self.event.user
        if target is None:
            raise ValueError("this event has no user")
        return await self.users.user(self.client, target, fresh=fresh)

    async def channel_info(self, channel: str | None = None) -> ChannelInfo:
        """``conversations.info`` of ``channel`` (default: the event's), cached per channel."""
        target = channel or self.event.channel
        if target is None:
            raise ValueError("this event has no conversation")
        return await self.users.channel(self.client, target)

    async def is_shared_channel(self, channel: str | None = None) -> bool:
        """Whether the conversation is seen by more than one team (org-shared or external)."""
        return (await self.channel_info(channel)).shared

    async def team_name(self, team_id: str | None = None) -> str:
        """The display name of a team of the org (its id when Slack will not say)."""
        return await self.users.team_name(self.client, team_id or self.team_id)
