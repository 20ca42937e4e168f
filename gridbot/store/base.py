"""The store interface: the few atomic decisions gridbot needs, with memory and Redis twins."""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    HANDLED = "handled"  # this delivery won the claim, on behalf of the responsible team
    DUPLICATE = "duplicate"  # the event was already handled
    STANDBY = "standby"  # another team is responsible and has not handled it (yet)
    UNELECTED = "unelected"  # the conversation has no responsible team yet


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    team: str | None  # handled: who handles it; duplicate: who did; standby: who is responsible


@dataclass(frozen=True, slots=True)
class Election:
    """The responsible team of one conversation, as the store records it.

    ``epoch`` grows on every change of team (a takeover, a departure, a pin, a fresh election
    after one was cleared); ``reason`` says what made the last change (``elected``, ``pinned``,
    ``heartbeat_lapsed``, or the lifecycle fact: ``channel_left``, ``team_stopped`` ...).
    """

    team: str
    candidates: tuple[str, ...]
    epoch: int
    pinned: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OwnerLease:
    """Who serves one connection: the holder, its fencing epoch, and a pending handoff."""

    holder: str | None  # None: nobody (the lease lapsed or was released)
    epoch: int  # grows on every change of holder, never reused
    successor: str | None = None  # the process a handoff was requested for


class StoreUnavailable(Exception):
    """The store could not be reached; the caller buffers and retries."""


class Store(abc.ABC):
    """Atomic decisions shared by every gridbot process using the same backend."""

    @abc.abstractmethod
    async def decide_many(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[Decision]:
        """For each ``(channel, key, covers)``, in one round trip: claim ``key`` if the
        conversation's responsible team is in ``covers`` (the dedup stage's hot path).

        Decided in order: two asks for one key get "handled" then "duplicate".
        """

    async def decide(self, channel: str, key: str, covers: Sequence[str]) -> Decision:
        """:meth:`decide_many` for one event."""
        return (await self.decide_many([(channel, key, covers)]))[0]

    @abc.abstractmethod
    async def claim_many(self, claims: Sequence[tuple[str | None, str, str]]) -> list[str | None]:
        """Claim each ``(channel, key, team)`` unconditionally, in order, in one round trip:
        None where it was won, else the team that has it."""

    async def claim(self, channel: str | None, key: str, team: str) -> str | None:
        """:meth:`claim_many` for one event."""
        return (await self.claim_many([(channel, key, team)]))[0]

    @abc.abstractmethod
    async def elect(
        self,
        channel: str,
        team: str,
        candidates: Iterable[str],
        *,
        fallback: str | None = None,
        joined: Collection[str] = (),
    ) -> Election:
        """Record ``team`` as responsible unless a team already is; merge the candidates.

        A team whose bot left the conversation (:meth:`depart`) is neither a candidate nor
        chosen until it joins again (``joined``: the teams whose bot just joined): ``fallback``
        (the team that saw the event, so it is in the conversation) is chosen instead.
        """

    @abc.abstractmethod
    async def takeover(
        self, channel: str, expected: str, team: str, reason: str = "heartbeat_lapsed"
    ) -> Election | None:
        """Move the election from ``expected`` to ``team``; the current election if it had moved."""

    @abc.abstractmethod
    async def depart(
        self, channel: str, teams: Sequence[str], successor: str | None, reason: str, *, left: bool
    ) -> tuple[bool, Election | None]:
        """``teams`` can no longer answer in ``channel``. If one of them is responsible the
        election moves to ``successor``, or (None) loses its team so that the next event elects
        afresh; the record keeps ``reason`` and the next epoch either way.

        ``left``: their bots left the conversation: they also leave its candidates and are not
        elected there again until they join (a stopped team is not ``left``: it may come back).

        Returns whether this call moved the election, and the election after it (None: no team).
        """

    @abc.abstractmethod
    async def election(self, channel: str) -> Election | None: ...

    @abc.abstractmethod
    async def pin(self, channel: str, team: str) -> Election: ...

    @abc.abstractmethod
    async def clear(self, channel: str) -> bool: ...

    @abc.abstractmethod
    async def elections(self) -> dict[str, Election]: ...

    @abc.abstractmethod
    async def renew_alive(self, teams: Sequence[str], holder: str, ttl_ms: int) -> None:
        """Extend the heartbeat of each team whose socket ``holder`` has up (it lapses after ``ttl_ms``)."""

    @abc.abstractmethod
    async def release_alive(self, teams: Sequence[str], holder: str) -> None:
        """End the heartbeat of each of ``teams`` that ``holder`` has (a clean stop, no lapse)."""

    @abc.abstractmethod
    async def alive(self, teams: Sequence[str]) -> set[str]:
        """Those of ``teams`` whose heartbeat has not lapsed."""

    @abc.abstractmethod
    async def roster_add(self, team_id: str, info: dict[str, Any]) -> None:
        """Put a team some process serves on the roster (its bot's ids only, never tokens)."""

    @abc.abstractmethod
    async def roster(self) -> dict[str, dict[str, Any]]:
        """The roster: every team any process serves, team id -> the info given to roster_add."""

    @abc.abstractmethod
    async def kv_get(self, namespace: str, key: str) -> Any | None: ...

    @abc.abstractmethod
    async def kv_set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def kv_delete(self, namespace: str, key: str) -> bool: ...

    @abc.abstractmethod
    async def try_lock(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take (or keep) a named lock for ``ttl_ms``; False if another holder has it."""

    @abc.abstractmethod
    async def ping(self) -> None: ...

    # -- interactions: the winner's ack, for the copies that lost the claim (gridbot/store/acks.py) --
    # Concrete, so a test fake need not care: without them a copy is answered empty at once.

    async def record_ack(self, key: str, ack: str, ttl_ms: int) -> None:
        """Record ``ack`` (JSON, ``null`` for empty) as the answer to the interaction claimed
        (with no conversation) under ``key``, for ``ttl_ms``; a second record is ignored."""
        raise NotImplementedError

    async def wait_ack(self, key: str, timeout: float) -> str | None:
        """The ack recorded for ``key``, waiting up to ``timeout`` seconds for it to be; None
        if none was by then."""
        raise NotImplementedError

    # -- process status documents (``gridbot status``); concrete so test fakes need not care --

    async def publish_status(self, instance: str, document: dict[str, Any], ttl: float) -> None:
        """Write one process's status document; it expires ``ttl`` seconds later unless rewritten."""
        raise NotImplementedError

    async def statuses(self) -> dict[str, dict[str, Any]]:
        """Every unexpired status document, by instance id."""
        raise NotImplementedError

    async def withdraw_status(self, instance: str) -> None:
        """Delete one process's status document (clean shutdown)."""
        raise NotImplementedError

    async def close(self) -> None:
        return None

    async def wipe(self) -> None:
        """Delete everything this store holds (under its key prefix, for Redis): a demo or a
        playground sharing a Redis leaves nothing behind. Never called by the daemon."""
        raise NotImplementedError

    # -- scale-out: connection ownership and process membership (gridbot/ownership.py) ----------
    # Concrete, so a single-process test fake need not implement them. ``connection`` is a
    # connection key (``rtm:<digest>``, ``socket_mode:<digest>``): one lease per connection.

    # True when several processes can share this store (Redis): they then split the connections
    # through ownership leases. False (memory, test fakes): one process, ownership is trivially "me".
    shared: bool = False

    async def acquire_owner(self, connection: str, holder: str, ttl_ms: int) -> int | None:
        """Take a free connection for ``ttl_ms``; its new fencing epoch, or None if it is held."""
        raise NotImplementedError

    async def renew_owners(self, leases: Mapping[str, int], holder: str, ttl_ms: int) -> set[str]:
        """Extend each lease ``{connection: epoch}`` still held by ``holder`` at that epoch.

        Returns the connections renewed; any other is lost (lapsed, or handed off).
        """
        raise NotImplementedError

    async def release_owner(self, connection: str, holder: str, epoch: int) -> bool:
        raise NotImplementedError

    async def request_handoff(
        self, connection: str, holder: str, epoch: int, successor: str, ttl_ms: int
    ) -> bool:
        """Mark the lease held by ``holder`` at ``epoch`` for ``successor`` (one at a time, expiring)."""
        raise NotImplementedError

    async def take_handoff(self, connection: str, successor: str, ttl_ms: int) -> int | None:
        """The successor takes the lease marked for it (its socket is up); the new epoch or None."""
        raise NotImplementedError

    async def cancel_handoff(self, connection: str, successor: str) -> None:
        raise NotImplementedError

    async def owners(self, connections: Sequence[str]) -> dict[str, OwnerLease]:
        """The current lease of each connection (holder None when free)."""
        raise NotImplementedError

    async def announce_process(self, instance: str, info: Mapping[str, Any], ttl_ms: int) -> None:
        """Announce a live process (its status document) for ``ttl_ms``."""
        raise NotImplementedError

    async def processes(self) -> dict[str, dict[str, Any]]:
        """The live processes: instance id -> the last document it announced."""
        raise NotImplementedError

    async def leave_process(self, instance: str) -> None:
        raise NotImplementedError


def merge_candidates(current: str, new: Iterable[str]) -> str:
    return ",".join(sorted(set(filter(None, current.split(","))) | set(new)))
