"""The embedded store: one process, same contract as Redis (used by the demo and unit tests)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import orjson

from gridbot.store.acks import MemoryAckRecords
from gridbot.store.base import Decision, Election, Outcome, OwnerLease, Store, merge_candidates


def _without(csv: str, left: set[str]) -> tuple[str, ...]:
    return tuple(t for t in csv.split(",") if t and t not in left)


class MemoryStore(Store):
    def __init__(self, claim_ttl: int = 900, clock: Callable[[], float] = time.monotonic) -> None:
        self.claim_ttl = claim_ttl
        self._clock = clock
        self._claims: dict[str, str] = {}
        # Claims all live claim_ttl, so insertion order is expiry order: evict from the left.
        self._claim_expiry: deque[tuple[float, str]] = deque()
        # A conversation's election; one whose team is "" was cleared (its record kept).
        self._elections: dict[str, Election] = {}
        self._left: dict[str, set[str]] = {}  # teams whose bot left a conversation
        self._heartbeats: dict[str, tuple[str, float]] = {}  # team -> holder, until
        self._kv: dict[str, tuple[bytes, float | None]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._owners: dict[str, tuple[str, int, float]] = {}  # connection -> holder, epoch, until
        self._epochs: dict[str, int] = {}
        self._successors: dict[str, tuple[str, float]] = {}
        self._members: dict[str, tuple[bytes, float]] = {}
        self._status: dict[str, tuple[bytes, float]] = {}
        self._roster: dict[str, dict[str, Any]] = {}
        # Decisions are immutable: one per (outcome, team), not one per event (a frozen
        # dataclass costs about a microsecond to build, and a flood asks tens of thousands/s).
        self._answers: dict[tuple[Outcome, str], Decision] = {}
        self._acks = MemoryAckRecords(clock)

    async def wipe(self) -> None:
        self.__init__(self.claim_ttl, self._clock)  # type: ignore[misc]

    def _evict(self) -> float:
        """Forget expired claims; returns the time it did so at (one clock read per call)."""
        now = self._clock()
        while self._claim_expiry and self._claim_expiry[0][0] <= now:
            _, key = self._claim_expiry.popleft()
            self._claims.pop(key, None)
        return now

    def _set_claim(self, key: str, team: str, now: float) -> None:
        self._claims[key] = team
        self._claim_expiry.append((now + self.claim_ttl, key))

    async def decide_many(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[Decision]:
        now = self._evict()
        return [self._decide(channel, key, covers, now) for channel, key, covers in asks]

    def _decide(self, channel: str, key: str, covers: Sequence[str], now: float) -> Decision:
        election = self._elections.get(channel)
        if election is None or not election.team:
            return Decision(Outcome.UNELECTED, None)
        full = f"{channel}:{key}"
        owner = self._claims.get(full)
        if owner is not None:
            return self._answer(Outcome.DUPLICATE, owner)
        if election.team in covers:
            self._set_claim(full, election.team, now)
            return self._answer(Outcome.HANDLED, election.team)
        return self._answer(Outcome.STANDBY, election.team)

    def _answer(self, outcome: Outcome, team: str) -> Decision:
        answer = self._answers.get((outcome, team))
        if answer is None:
            answer = self._answers[outcome, team] = Decision(outcome, team)
        return answer

    async def claim_many(self, claims: Sequence[tuple[str | None, str, str]]) -> list[str | None]:
        now = self._evict()
        return [self._claim(f"{channel or ''}:{key}", team, now) for channel, key, team in claims]

    def _claim(self, full: str, team: str, now: float) -> str | None:
        owner = self._claims.get(full)
        if owner is not None:
            return owner
        self._set_claim(full, team, now)
        return None

    async def elect(
        self,
        channel: str,
        team: str,
        candidates: Iterable[str],
        *,
        fallback: str | None = None,
        joined: Collection[str] = (),
    ) -> Election:
        left = self._left.setdefault(channel, set())
        left.difference_update(joined)
        current = self._elections.get(channel)
        known = ",".join(current.candidates) if current else ""
        if current is not None and current.team:
            merged = _without(merge_candidates(known, candidates), left)
            election = Election(current.team, merged, current.epoch, current.pinned, current.reason)
        else:
            proposed = [team] if fallback is None else [team, fallback]
            chosen = next((t for t in proposed if t not in left), proposed[-1])
            left.discard(chosen)
            merged = _without(merge_candidates(known, [*candidates, chosen]), left)
            election = Election(chosen, merged, (current.epoch if current else 0) + 1, False, "elected")
        self._elections[channel] = election
        return election

    async def takeover(
        self, channel: str, expected: str, team: str, reason: str = "heartbeat_lapsed"
    ) -> Election | None:
        current = self._elections.get(channel)
        if current is None or not current.team:
            return None
        if current.team != expected:
            return current
        candidates = tuple(merge_candidates(",".join(current.candidates), [team]).split(","))
        self._elections[channel] = Election(team, candidates, current.epoch + 1, False, reason)
        return self._elections[channel]

    async def depart(
        self, channel: str, teams: Sequence[str], successor: str | None, reason: str, *, left: bool
    ) -> tuple[bool, Election | None]:
        gone = set(teams)
        current = self._elections.get(channel) or Election("", (), 0)
        moving = current.team in gone
        cands = set(current.candidates) | ({successor} if moving and successor else set())
        merged = tuple(sorted(cands - gone if left else cands))
        if left:
            self._left.setdefault(channel, set()).update(gone)
        elif not current.team:
            return False, None
        if not moving:
            after = Election(current.team, merged, current.epoch, current.pinned, current.reason)
            self._elections[channel] = after
            return False, after if after.team else None
        after = Election(successor or "", merged, current.epoch + 1, False, reason)
        self._elections[channel] = after
        return True, after if after.team else None

    async def election(self, channel: str) -> Election | None:
        election = self._elections.get(channel)
        return election if election is not None and election.team else None

    async def pin(self, channel: str, team: str) -> Election:
        current = self._elections.get(channel)
        candidates = merge_candidates(",".join(current.candidates) if current else "", [team])
        epoch = current.epoch + 1 if current else 1
        self._elections[channel] = Election(team, tuple(candidates.split(",")), epoch, True, "pinned")
        return self._elections[channel]

    async def clear(self, channel: str) -> bool:
        self._left.pop(channel, None)
        election = self._elections.pop(channel, None)
        return election is not None

    async def elections(self) -> dict[str, Election]:
        return {channel: e for channel, e in self._elections.items() if e.team}

    async def renew_alive(self, teams: Sequence[str], holder: str, ttl_ms: int) -> None:
        now = self._clock()
        for team in teams:
            current = self._heartbeats.get(team)
            if current is None or current[0] == holder or current[1] <= now:
                self._heartbeats[team] = (holder, now + ttl_ms / 1000)

    async def release_alive(self, teams: Sequence[str], holder: str) -> None:
        for team in teams:
            if self._heartbeats.get(team, ("", 0.0))[0] == holder:
                del self._heartbeats[team]

    async def alive(self, teams: Sequence[str]) -> set[str]:
        now = self._clock()
        return {t for t in teams if t in self._heartbeats and self._heartbeats[t][1] > now}

    async def roster_add(self, team_id: str, info: dict[str, Any]) -> None:
        self._roster[team_id] = dict(info)

    async def roster(self) -> dict[str, dict[str, Any]]:
        return {team: dict(info) for team, info in self._roster.items()}

    async def kv_get(self, namespace: str, key: str) -> Any | None:
        item = self._kv.get(f"{namespace}\0{key}")
        if item is None or (item[1] is not None and item[1] <= self._clock()):
            return None
        return orjson.loads(item[0])

    async def kv_set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None:
        expires = self._clock() + ttl if ttl else None
        self._kv[f"{namespace}\0{key}"] = (orjson.dumps(value), expires)

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return self._kv.pop(f"{namespace}\0{key}", None) is not None

    async def try_lock(self, name: str, holder: str, ttl_ms: int) -> bool:
        now = self._clock()
        current = self._locks.get(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._locks[name] = (holder, now + ttl_ms / 1000)
        return True

    async def ping(self) -> None:
        return None

    async def record_ack(self, key: str, ack: str, ttl_ms: int) -> None:
        self._acks.record(key, ack, ttl_ms)

    async def wait_ack(self, key: str, timeout: float) -> str | None:
        return await self._acks.wait(key, timeout)

    # -- ownership and membership: one process, but the same contract as Redis -----------------

    def _owner(self, connection: str) -> tuple[str, int, float] | None:
        current = self._owners.get(connection)
        return current if current is not None and current[2] > self._clock() else None

    def _successor(self, connection: str) -> str | None:
        item = self._successors.get(connection)
        return item[0] if item is not None and item[1] > self._clock() else None

    def _grant(self, connection: str, holder: str, ttl_ms: int) -> int:
        epoch = self._epochs.get(connection, 0) + 1
        self._epochs[connection] = epoch
        self._owners[connection] = (holder, epoch, self._clock() + ttl_ms / 1000)
        return epoch

    async def acquire_owner(self, connection: str, holder: str, ttl_ms: int) -> int | None:
        if self._owner(connection) is not None:
            return None
        return self._grant(connection, holder, ttl_ms)

    async def renew_owners(self, leases: Mapping[str, int], holder: str, ttl_ms: int) -> set[str]:
        renewed = set()
        for connection, epoch in leases.items():
            current = self._owner(connection)
            if current is not None and current[:2] == (holder, epoch):
                self._owners[connection] = (holder, epoch, self._clock() + ttl_ms / 1000)
                renewed.add(connection)
        return renewed

    async def release_owner(self, connection: str, holder: str, epoch: int) -> bool:
        current = self._owner(connection)
        if current is None or current[:2] != (holder, epoch):
            return False
        del self._owners[connection]
        return True

    async def request_handoff(
        self, connection: str, holder: str, epoch: int, successor: str, ttl_ms: int
    ) -> bool:
        current = self._owner(connection)
        if current is None or current[:2] != (holder, epoch) or self._successor(connection):
            return False
        self._successors[connection] = (successor, self._clock() + ttl_ms / 1000)
        return True

    async def take_handoff(self, connection: str, successor: str, ttl_ms: int) -> int | None:
        if self._successor(connection) != successor:
            return None
        del self._successors[connection]
        return self._grant(connection, successor, ttl_ms)

    async def cancel_handoff(self, connection: str, successor: str) -> None:
        if self._successor(connection) == successor:
            del self._successors[connection]

    async def owners(self, connections: Sequence[str]) -> dict[str, OwnerLease]:
        found = {}
        for connection in connections:
            current = self._owner(connection)
            holder, epoch = (current[0], current[1]) if current else (None, self._epochs.get(connection, 0))
            found[connection] = OwnerLease(holder, epoch, self._successor(connection))
        return found

    async def announce_process(self, instance: str, info: Mapping[str, Any], ttl_ms: int) -> None:
        self._members[instance] = (orjson.dumps(dict(info)), self._clock() + ttl_ms / 1000)

    async def processes(self) -> dict[str, dict[str, Any]]:
        now = self._clock()
        return {i: orjson.loads(doc) for i, (doc, until) in self._members.items() if until > now}

    async def leave_process(self, instance: str) -> None:
        self._members.pop(instance, None)

    async def publish_status(self, instance: str, document: dict[str, Any], ttl: float) -> None:
        self._status[instance] = (orjson.dumps(document), self._clock() + ttl)

    async def statuses(self) -> dict[str, dict[str, Any]]:
        now = self._clock()
        return {i: orjson.loads(doc) for i, (doc, expires) in self._status.items() if expires > now}

    async def withdraw_status(self, instance: str) -> None:
        self._status.pop(instance, None)
