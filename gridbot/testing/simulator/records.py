"""What the simulator observed, as frozen records tests can assert on, in bounded logs.

Every log counts without limit and keeps only its newest records: a simulator left running for a
day must hold the same memory after 400,000 messages as after 4,000, while ``Grid.settle`` and
anything else that compares counts must never see a count stop growing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar, overload

#: How many records each log keeps by default (the counts are never capped).
KEEP = 100_000

T = TypeVar("T")


class Recent(Generic[T]):
    """An append-only log that counts every record and keeps the newest ``keep`` of them.

    ``len(log)`` is how many records were ever appended, and positions are positions in that
    whole history, so ``log[n:]`` is "everything since the log had n records" (as far as it is
    still kept) however long the run. Iterating yields the kept records, oldest first; reading a
    single record that is no longer kept raises ``IndexError`` saying so.
    """

    __slots__ = ("_items", "_total")

    def __init__(self, keep: int = KEEP) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self._items: deque[T] = deque(maxlen=keep)
        self._total = 0

    def append(self, item: T) -> None:
        self._items.append(item)
        self._total += 1

    @property
    def keep(self) -> int:
        maxlen = self._items.maxlen
        assert maxlen is not None
        return maxlen

    @property
    def kept(self) -> int:
        """How many records are held (at most ``keep``)."""
        return len(self._items)

    @property
    def first(self) -> int:
        """The position of the oldest record still kept."""
        return self._total - len(self._items)

    def __len__(self) -> int:
        return self._total

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __bool__(self) -> bool:
        return self._total > 0

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._total)
            first = self.first
            return [self._items[i - first] for i in range(max(start, first), stop, step) if i >= first]
        position = index + self._total if index < 0 else index
        if not 0 <= position < self._total:
            raise IndexError(f"record {index} of {self._total}")
        if position < self.first:
            raise IndexError(f"record {index} is no longer kept (the newest {self.keep} are)")
        return self._items[position - self.first]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Recent):
            return self._total == other._total and list(self._items) == list(other._items)
        if isinstance(other, list):
            return self._total == len(other) and list(self._items) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Recent({list(self._items)!r}, total={self._total})"


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
    """An ack frame a client sent. ``counted`` is False when it came on a socket other than the
    one that carried the envelope (Slack ignores it: the envelope is redelivered)."""

    app_id: str
    envelope_id: str
    event_id: str | None
    socket_id: int
    time: float
    counted: bool = True


@dataclass(frozen=True)
class Injection:
    """One timing fault the simulator applied to one copy: what, to whom, how late."""

    kind: str  # "lag" | "duplicate"
    team: str | None  # the receiving team (RTM) or the authorized team (Socket Mode)
    app_id: str | None  # set for Socket Mode envelopes
    channel: str | None
    ts: str | None
    delay: float  # seconds after the undisturbed copy would have been written
    time: float


class Delivery(NamedTuple):
    """One RTM copy written to one socket, in write order (a tuple: this is the hot path)."""

    team: str
    socket_id: int
    channel: str | None
    ts: str | None


class Journal:
    """Everything observed through the Web API and the sockets, in arrival order."""

    def __init__(self, keep: int = KEEP) -> None:
        self.calls: Recent[ApiCall] = Recent(keep)
        self.posted: Recent[PostedMessage] = Recent(keep)
        self.ephemeral: Recent[PostedMessage] = Recent(keep)
        self.reactions: Recent[Reaction] = Recent(keep)
        self.deliveries: Recent[Delivery] = Recent(keep)
        self.sent: Recent[SentEnvelope] = Recent(keep)
        self.acks: Recent[Ack] = Recent(keep)
        self.injected: Recent[Injection] = Recent(keep)
