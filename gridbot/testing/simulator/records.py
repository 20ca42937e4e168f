"""What the simulator observed, as frozen records tests can assert on."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

MAX_DELIVERIES = 10_000


@dataclass(frozen=True)
class ApiCall:
    """One Web API request. ``args`` never contains the token."""

    method: str
    team_id: str | None
    user_id: str | None
    args: dict[str, Any]
    status: int
    error: str | None
    time: float

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class PostedMessage:
    """A message a bot or user token posted (chat.postMessage) or an ephemeral (``user`` set)."""

    team_id: str | None
    channel: str
    text: str
    blocks: list[Any] | None
    thread_ts: str | None
    ts: str
    bot_user_id: str | None
    time: float
    user: str | None = None


@dataclass(frozen=True)
class Reaction:
    team_id: str | None
    channel: str
    timestamp: str
    name: str
    user_id: str | None
    time: float


@dataclass(frozen=True)
class SentEnvelope:
    """One Socket Mode envelope written to one socket (redeliveries are separate records)."""

    app_id: str
    envelope_id: str
    event_id: str
    retry_attempt: int
    socket_id: int
    payload: dict[str, Any]
    time: float


@dataclass(frozen=True)
class Ack:
    app_id: str
    envelope_id: str
    event_id: str | None
    socket_id: int
    time: float


class Delivery(NamedTuple):
    """One RTM copy written to one socket, in write order (a tuple: this is the hot path)."""

    team: str
    socket_id: int
    channel: str | None
    ts: str | None


class Journal:
    """Everything observed through the Web API, in arrival order."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.posted: list[PostedMessage] = []
        self.ephemeral: list[PostedMessage] = []
        self.reactions: list[Reaction] = []
        # bounded: a long-running `gridbot simulate` must not grow without limit
        self.deliveries: deque[Delivery] = deque(maxlen=MAX_DELIVERIES)
