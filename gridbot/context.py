"""What a handler gets: the event, the answering team's client, and a few well-chosen helpers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from gridbot.events import Event
from gridbot.store import Store


class PluginStore:
    """A plugin's own key-value namespace (JSON values) in the shared store."""

    def __init__(self, store: Store, namespace: str) -> None:
        self._store = store
        self._ns = namespace

    async def get(self, key: str, default: Any = None) -> Any:
        value = await self._store.kv_get(self._ns, key)
        return default if value is None else value

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        await self._store.kv_set(self._ns, key, value, ttl)

    async def delete(self, key: str) -> bool:
        return await self._store.kv_delete(self._ns, key)


class UserCache:
    """``users.info`` answers for a while, shared by all plugins; keyed by the stable (W) id."""

    def __init__(self, ttl: float = 600.0, capacity: int = 10_000) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, client: AsyncWebClient, user_id: str) -> dict[str, Any]:
        hit = self._items.get(user_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        response = await client.users_info(user=user_id)
        user = dict(response["user"])
        expires = time.monotonic() + self._ttl
        if len(self._items) >= self._capacity:
            self._items.pop(next(iter(self._items)))
        for key in {user_id, str(user.get("id", user_id))}:
            self._items[key] = (expires, user)
        return user


@dataclass
class Context:
    """Handed to every handler. ``client`` speaks with the token of the team handling the event."""

    event: Event
    team_id: str
    enterprise_id: str | None
    client: AsyncWebClient
    plugin: str
    store: PluginStore
    config: Mapping[str, Any]
    bot_user_id: str
    users: UserCache

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
        """Post in the event's conversation. In its thread if it has one (or ``thread=True``)."""
        if self.event.channel is None:
            raise ValueError("this event has no conversation to reply in")
        thread_ts = self.event.thread_ts
        if thread is True:
            thread_ts = thread_ts or self.event.ts
        elif thread is False:
            thread_ts = None
        response = await self.client.chat_postMessage(
            channel=self.event.channel, text=text or "", blocks=blocks, thread_ts=thread_ts
        )
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def react(self, name: str) -> None:
        await self.client.reactions_add(
            channel=self.event.channel or "", timestamp=self.event.ts or "", name=name
        )

    async def ephemeral(self, text: str, *, user: str | None = None) -> None:
        target = user or self.event.user
        if target is None or self.event.channel is None:
            raise ValueError("an ephemeral message needs a conversation and a user")
        await self.client.chat_postEphemeral(channel=self.event.channel, user=target, text=text)

    async def user(self, user_id: str | None = None) -> dict[str, Any]:
        """The profile of ``user_id`` (default: the event's author), for users of any team."""
        target = user_id or self.event.user
        if target is None:
            raise ValueError("this event has no user")
        return await self.users.get(self.client, target)

    @property
    def is_shared_channel(self) -> bool:
        raw = self.event.raw
        return bool(
            raw.get("is_ext_shared_channel")
            or (raw.get("source_team") and raw.get("source_team") != self.team_id)
            or (raw.get("user_team") and raw.get("user_team") != self.team_id)
        )
