"""Stored messages: each conversation's history, its threads and reactions, in bounded memory.

Slack keeps history for ever; a simulator that did the same held 1.1 GB after 400,000 messages.
The store keeps the newest ``keep`` messages of the whole org (``conversations.history`` pages
through what is kept) and forgets the oldest first.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .model import BotRef, User

#: Messages kept by default, across all conversations.
KEEP_MESSAGES = 10_000


@dataclass(frozen=True)
class Message:
    """A message as stored once; each receiving team gets its own rendering of it.

    ``subtype`` is set for messages Slack writes itself (``channel_join``, ``channel_leave``);
    ``text`` holds enterprise (``W``) ids in its mentions, translated per reader."""

    channel: str
    ts: str
    text: str
    source_team: str
    user: User | None = None
    bot: BotRef | None = None
    thread_ts: str | None = None
    blocks: list[Any] | None = None
    client_msg_id: str = field(default_factory=lambda: secrets.token_hex(16))
    edited: tuple[User | BotRef, str] | None = None  # (editor, edit ts)
    subtype: str | None = None
    inviter: User | None = None


class MessageStore:
    def __init__(self, keep: int = KEEP_MESSAGES) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.keep = keep
        self._by_channel: dict[str, dict[str, Message]] = {}
        self._order: deque[tuple[str, str]] = deque()  # insertion order, to forget the oldest
        self._reactions: dict[tuple[str, str], set[tuple[str, str | None]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, msg: Message) -> None:
        if len(self._order) >= self.keep:
            self._forget(*self._order.popleft())
        self._by_channel.setdefault(msg.channel, {})[msg.ts] = msg
        self._order.append((msg.channel, msg.ts))
        self._count += 1

    def replace(self, msg: Message) -> None:
        """An edited message keeps its place in history."""
        stored = self._by_channel.get(msg.channel)
        if stored is not None and msg.ts in stored:
            stored[msg.ts] = msg

    def remove(self, channel: str, ts: str) -> None:
        # its entry in _order stays until it reaches the front: an edit of the order is O(n)
        self._forget(channel, ts)

    def get(self, channel: str, ts: str) -> Message | None:
        return self._by_channel.get(channel, {}).get(ts)

    def newest_first(self, channel: str) -> Iterator[Message]:
        return reversed(list(self._by_channel.get(channel, {}).values()))

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The parent and its replies, oldest first."""
        stored = self._by_channel.get(channel, {})
        return [m for m in stored.values() if m.ts == thread_ts or m.thread_ts == thread_ts]

    def react(self, channel: str, ts: str, name: str, user: str | None) -> bool:
        """Record a reaction; False if this user already reacted so."""
        seen = self._reactions.setdefault((channel, ts), set())
        if (name, user) in seen:
            return False
        seen.add((name, user))
        return True

    def forget_channel(self, channel: str) -> None:
        for ts in list(self._by_channel.get(channel, ())):
            self._forget(channel, ts)

    def _forget(self, channel: str, ts: str) -> None:
        stored = self._by_channel.get(channel)
        if stored is None or stored.pop(ts, None) is None:
            return
        self._count -= 1
        self._reactions.pop((channel, ts), None)
        if not stored:
            del self._by_channel[channel]
