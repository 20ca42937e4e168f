"""Standby copies: a delivery to a team that is not responsible for its conversation, held for
``standby_grace`` seconds in case the responsible team's copy never comes (not at all when the
responsible team is known gone: its heartbeat lapsed, or a fact said it left).

A held copy is let go as soon as its event is claimed (usually the responsible team's own copy, a
batch later: in a flood 15-45 % of all deliveries were held). One that is still held at its
deadline is rescued: this process claims the event for the standby team and handles it, and if
the responsible team's heartbeat has lapsed the election moves (:meth:`Elector.check_takeover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridbot.dedup.claimed import ClaimedKeys, Heartbeats
from gridbot.dedup.counters import Counters
from gridbot.dedup.outcomes import Outcomes
from gridbot.dedup.questions import log_decision
from gridbot.events import Event
from gridbot.logs import get_logger
from gridbot.store import Store, StoreUnavailable

if TYPE_CHECKING:  # the elector imports the facts of this package
    from gridbot.election import Elector

log = get_logger("gridbot.dedup")

Dispatch = Callable[[Event, str, str], None]  # (event, handling team, decision)


@dataclass(slots=True, eq=False)
class Held:
    """A standby copy waiting out the grace period (compared by identity: a key held again after
    a retry is a new entry, and the old one in the deadline queue is skipped)."""

    deadline: float
    key: str  # the local key: conversation and event
    event: Event
    responsible: str  # the team that was responsible when the copy was held
    copies: int  # deliveries it stands for: each ends as one duplicate, or one of them rescued


class Standby:
    def __init__(
        self,
        store: Store,
        claimed: ClaimedKeys,
        elector: Elector,
        dispatch: Dispatch,
        counters: Counters,
        *,
        outcomes: Outcomes | None = None,
        grace: float = 2.0,
        heartbeat_trust: float = 1.0,
        batch_size: int = 2048,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store_ok = True  # the last rescue reached the store
        self.settled = asyncio.Event()  # set after every rescue and whenever nothing is held
        self._store = store
        self._claimed = claimed
        self._elector = elector
        self._dispatch = dispatch
        self._counters = counters
        self._outcomes = outcomes if outcomes is not None else Outcomes()
        self._grace = grace
        self._batch_size = batch_size
        self._clock = clock
        self._held: dict[str, Held] = {}  # one held copy per key
        self._pending: deque[Held] = deque()  # their deadlines, in order
        self._wake = asyncio.Event()
        self._heartbeats = Heartbeats(heartbeat_trust)
        # Copies held since the last ask_heartbeats() whose responsible team's heartbeat was not
        # known: team -> keys.
        self._unsure: dict[str, list[str]] = {}
        self._rescuing = 0
        self._log = log.bind()
        self._trace = False

    def __len__(self) -> int:
        """Copies held or being rescued."""
        return len(self._held) + self._rescuing

    def hold(self, key: str, event: Event, responsible: str, copies: int, at: float) -> None:
        """Hold a standby copy decided at ``at`` (asked again: one hold stands for every copy).

        For the grace, unless its responsible team is known gone: then it is rescued on the
        sweeper's next turn. Not known: held for the grace, and asked about in
        :meth:`ask_heartbeats` (a dict lookup here, no round trip).
        """
        alive = self._heartbeats.get(responsible, at)
        held = self._held.get(key)
        if held is not None:
            held.copies += copies
            if alive is False:
                self._push(Held(at, key, held.event, held.responsible, held.copies), first=True)
            return
        if alive is False:
            self._push(Held(at, key, event, responsible, copies), first=True)
            return
        self._push(Held(at + self._grace, key, event, responsible, copies))
        if alive is None:
            self._unsure.setdefault(responsible, []).append(key)

    async def ask_heartbeats(self) -> None:
        """Ask the store, in one round trip, about the heartbeat of every standby team held for
        since the last call that was not known; rescue now the copies held for one that is gone.
        The store unreachable: they wait out the grace, as before."""
        if not self._unsure:
            return
        unsure, self._unsure = self._unsure, {}
        try:
            alive = await self._store.alive(list(unsure))
        except StoreUnavailable:
            return
        self._heartbeats.learn(unsure, alive, self._clock())
        held = self._held
        self._due_now(
            h for team, keys in unsure.items() if team not in alive for k in keys if (h := held.get(k))
        )

    def gone(self, teams: Collection[str], channel: str | None, *, everywhere: bool) -> None:
        """A fact says ``teams`` no longer answer in ``channel`` (``everywhere``: at all): the
        copies held for them there are rescued now, and, everywhere, so is every later one."""
        if everywhere:
            self._heartbeats.learn(teams, (), self._clock())
        self.expedite(teams, None if everywhere else channel)

    def expedite(self, responsible: Collection[str], channel: str | None = None) -> None:
        """Rescue now every copy held for one of ``responsible`` (in ``channel``, if given): those
        teams are gone (a scan of what is held: a fact is rare)."""
        if responsible and self._held:
            self._due_now(
                h
                for h in self._held.values()
                if h.responsible in responsible and (channel is None or h.event.channel == channel)
            )

    def _due_now(self, due: Iterable[Held]) -> None:
        now = self._clock()
        for held in list(due):
            self._push(Held(now, held.key, held.event, held.responsible, held.copies), first=True)

    def _push(self, held: Held, *, first: bool = False) -> None:
        """``first``: due before the others (a retry, or a copy to rescue now)."""
        self._held[held.key] = held
        pending = self._pending
        if first:
            pending.appendleft(held)
        else:
            pending.append(held)
        if first or len(pending) == 1:  # the sweeper waits for an earlier deadline than before
            self._wake.set()

    def release(self, key: str) -> None:
        """The event of ``key`` was claimed: a copy held for it ends as duplicates."""
        if self._held:
            held = self._held.pop(key, None)
            if held is not None:
                self._duplicate(held)

    def _duplicate(self, held: Held) -> None:
        self._counters.duplicate += held.copies
        self._outcomes.settle_key(held.key, "duplicate")
        if self._trace:
            log_decision(self._log, held.event, "duplicate")

    async def run(self) -> None:
        """Rescue standby copies nobody claimed within the grace period (all those due at once)."""
        pending, holding = self._pending, self._held
        while True:
            while pending and holding.get(pending[0].key) is not pending[0]:
                pending.popleft()  # let go early: its event was claimed
            if not pending:
                self.settled.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = pending[0].deadline - self._clock()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue
            now = self._clock()
            due: list[Held] = []
            while pending and pending[0].deadline <= now and len(due) < self._batch_size:
                held = pending.popleft()
                if holding.get(held.key) is held:
                    del holding[held.key]
                    due.append(held)
            self._rescuing += len(due)
            self._log = log.bind()
            self._trace = self._log.is_enabled_for(logging.DEBUG)
            try:
                await self._rescue(due)
                self.store_ok = True
            except StoreUnavailable:
                retry = self._clock() + 0.5
                for held in reversed(due):
                    self._push(Held(retry, held.key, held.event, held.responsible, held.copies), first=True)
                self.store_ok = False
            except Exception:
                log.exception("dedup.rescue_failed", events=len(due))
            finally:
                self._rescuing -= len(due)
                self.settled.set()

    async def _rescue(self, due: list[Held]) -> None:
        """Claim the held copies; handle those we won; move elections whose team is gone.

        Safe to retry as a whole: a copy already won is remembered, so it comes back a duplicate.
        """
        claims: list[Held] = []
        for held in due:
            if held.key in self._claimed:
                self._duplicate(held)
            else:
                claims.append(held)
        if not claims:
            return
        owners = await self._store.claim_many(
            [(h.event.channel, h.event.dedup_key or "", h.event.team_id) for h in claims]
        )
        takeovers: dict[str, tuple[str, str]] = {}
        for held, owner in zip(claims, owners, strict=True):
            self._claimed.add(held.key)
            self.release(held.key)  # held again while this rescue was asking
            event = held.event
            if owner is not None:
                self._duplicate(held)
                continue
            self._counters.duplicate += held.copies - 1  # the other copies it stood for
            self._counters.rescued += 1
            self._outcomes.settle_key(held.key, "rescued")
            if self._trace:
                log_decision(self._log, event, "rescued", handled_by=event.team_id)
            self._dispatch(event, event.team_id, "rescued")
            takeovers.setdefault(event.channel or "", (held.responsible, event.team_id))
        for channel, (responsible, standby) in takeovers.items():
            await self._elector.check_takeover(channel, responsible, standby)
