"""The decider: the dedup stage's one worker, from a queued question to the dispatcher.

It takes a batch from the intake (whatever arrived during the previous loop turn or store round
trip, no more than the dispatcher has room for), settles what it can without the store (our own
bots' messages, keys known claimed), asks the store about the rest in one round trip
(:meth:`Store.decide_many`), and acts on each answer: handled (the chosen copy goes to the
dispatcher), duplicate, or standby (held by :class:`~gridbot.dedup.standby.Standby`). A slow
store never blocks a socket reader and no task is made per delivery.

Facts (:mod:`gridbot.dedup.facts`: joins, leaves, a team gone) are applied here, in order, before
the batch they came in is asked about, so later events are decided under the election they made. A
standby copy whose responsible team is known gone is rescued at once (:class:`Standby` knows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gridbot.bots import Bots
from gridbot.dedup.facts import FACT_TYPES, NAMES_A_BOT, SOLO_TYPES, Fact, Kind, fact_of
from gridbot.dedup.intake import Intake
from gridbot.dedup.questions import UNREADABLE, Ask, Copy, local_key, log_decision, materialise
from gridbot.dedup.standby import Dispatch, Standby
from gridbot.events import Event
from gridbot.logs import HotLogger, get_logger
from gridbot.store import Decision, Outcome, Store, StoreUnavailable
from gridbot.tasks import cancel_and_wait

if TYPE_CHECKING:  # the elector imports this package's facts
    from gridbot.election import Elector

log = get_logger("gridbot.dedup")
_BATCH_LOG = HotLogger("gridbot.dedup")  # bound once per configuration, not once per batch


class Decider:
    def __init__(
        self,
        intake: Intake,
        store: Store,
        elector: Elector,
        dispatch: Dispatch,
        *,
        bots: Bots,
        standby_grace: float = 2.0,
        batch_size: int = 2048,
        capacity: Callable[[], int] | None = None,
        room: Callable[[], Awaitable[None]] | None = None,
        heartbeat_trust: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counters = intake.counters
        self._intake = intake
        self._outcomes = intake.outcomes  # a waiting transport learns its delivery's fate here
        self._standby = Standby(
            store,
            intake.claimed,
            elector,
            dispatch,
            intake.counters,
            outcomes=intake.outcomes,
            grace=standby_grace,
            heartbeat_trust=heartbeat_trust,
            batch_size=batch_size,
            clock=clock,
        )
        self._store = store
        self._elector = elector
        self._dispatch = dispatch
        self._bots = bots
        self._claimed = intake.claimed
        self._responsible = intake.responsible
        self._batch_size = batch_size
        self._capacity = capacity  # how many more handlers the dispatcher can take now
        self._room = room  # waits until the dispatcher has room
        self._store_ok = True
        self._clock = clock
        self._now = 0.0  # read once per batch
        self._deciding = 0  # deliveries taken from the intake, decision not yet made
        self._settled = asyncio.Event()  # set after every batch
        self._log = log.bind()
        self._trace = False

    # -- what the rest of gridbot reads --------------------------------------------------------

    @property
    def store_ok(self) -> bool:
        return self._store_ok and self._standby.store_ok

    @property
    def backlog(self) -> int:
        """Deliveries not decided yet: queued, being decided, or held as standby copies."""
        return self._intake.queued + self._deciding + len(self._standby)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or held (shutdown drains through this)."""
        try:
            async with asyncio.timeout(timeout):
                while self.backlog:
                    progress = (self._settled, self._standby.settled)
                    for event in progress:
                        event.clear()
                    waits = [asyncio.create_task(e.wait(), name="dedup:wait-idle") for e in progress]
                    try:
                        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        await cancel_and_wait(waits)
            return True
        except TimeoutError:
            return False

    # -- the worker ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Decide queued events in batches; rescue standby copies; never dies of a store error."""
        sweeper = asyncio.create_task(self._standby.run(), name="dedup:standby-sweeper")
        retry_delay = 0.1
        unexpected = 0  # consecutive batches that failed with something other than an outage
        intake = self._intake
        try:
            while True:
                if not intake.queued:
                    self._settled.set()
                    await intake.wait()
                if self._room is not None:
                    await self._room()
                # One more loop turn before taking the batch: a reader woken in the same turn as
                # this worker hands over its copies first. Without it, in a flood, the responsible
                # team's copy often came a turn late, after the question was decided without it:
                # 15-45 % of deliveries were held as standby copies and asked about twice.
                if not intake.whole:  # (not after a whole hand-over: the Events API window)
                    await asyncio.sleep(0)
                self._log = _BATCH_LOG.bound  # (the lazy logger binds again on every call)
                self._trace = self._log.is_enabled_for(logging.DEBUG)
                # Take no more than the dispatcher has room for: the rest is served round robin
                room = self._capacity() if self._capacity is not None else self._batch_size
                batch = intake.take(min(self._batch_size, max(1, room)), trace=self._trace)
                deciding = sum(len(ask.items) for ask in batch)
                self._deciding += deciding
                failed: list[Ask] = []
                try:
                    failed = await self._decide(batch)
                    unexpected = 0
                except Exception as exc:
                    # Seen from redis-py mid-failover (e.g. AttributeError on a dead connection):
                    # retried like an outage, but a batch that keeps failing is dropped, loudly,
                    # so a bug cannot stop intake for good.
                    unexpected += 1
                    with contextlib.suppress(Exception):
                        log.error("dedup.failed", events=len(batch), attempt=unexpected, exc_info=exc)
                    if unexpected <= 3:
                        failed = batch
                    else:
                        unexpected = 0
                        self.counters.dropped_overflow += len(batch)
                finally:
                    if failed:
                        intake.requeue(failed)
                    self._deciding -= deciding
                    self._settled.set()
                if failed:
                    self.counters.store_errors += 1
                    if self._store_ok:
                        log.error("store.unavailable", buffered=intake.queued)
                    self._store_ok = False
                    intake.store_down()
                    await asyncio.sleep(retry_delay)
                    retry_delay = min(retry_delay * 2, 1.0)  # a short outage drains within a second
                else:
                    if not self._store_ok:
                        log.warning("store.recovered")
                        intake.store_up()
                    self._store_ok = True
                    retry_delay = 0.1
        finally:
            await cancel_and_wait([sweeper])

    async def _decide(self, batch: list[Ask]) -> list[Ask]:
        """Decide every question of ``batch``; returns those to retry (the store was unreachable)."""
        self._now = self._clock()
        retry = await self._decide_batch(batch)
        await self._standby.ask_heartbeats()  # of standby teams this batch did not know
        return retry

    async def _decide_batch(self, batch: list[Ask]) -> list[Ask]:
        bots = self._bots
        asks: dict[str, Ask] = {}
        first: list[Ask] = []  # facts and unknown bots: looked at before the others are asked
        for ask in batch:
            if ask.local is None:
                event = ask.first
                if event.type in FACT_TYPES or bots.unknown_bot(event):
                    first.append(ask)
                    continue
            self._classify(ask, asks)
        if first:
            if not await self._facts(first):
                return [*first, *asks.values()]
            for ask in first:
                self._classify(ask, asks)
        if not asks:
            return []
        loose = [a for a in asks.values() if a.channel is None or a.first.type in SOLO_TYPES]
        failed = await self._claim(loose) if loose else []
        pending = [a for a in asks.values() if a.channel is not None and a.first.type not in SOLO_TYPES]
        for attempt in range(2):
            if not pending:
                break
            try:
                decisions = await self._store.decide_many(
                    [(a.channel or "", a.key, a.covers) for a in pending]
                )
            except StoreUnavailable:
                return failed + pending
            unelected = []
            for ask, decision in zip(pending, decisions, strict=True):
                if decision.outcome is Outcome.UNELECTED:
                    unelected.append(ask)
                else:
                    self._settle(ask, decision)
            if not unelected:
                break
            if attempt == 1:  # the election failed (and was logged): answered all the same
                return failed + await self._claim(unelected)
            if not await self._ensure({a.channel: a.first.team_id for a in unelected}):
                return failed + unelected
            pending = unelected
        return failed

    async def _facts(self, first: list[Ask]) -> bool:
        """Refresh the roster for bots we do not know; apply the facts among ``first``, in order.

        False: the store was unreachable (the whole batch is retried; applying a fact twice
        changes nothing the first time did not).
        """
        bots = self._bots
        facts: list[Fact] = []
        for ask in first:
            event = ask.first
            if bots.unknown_bot(event):
                await bots.refresh()
            if event.type in FACT_TYPES:
                fact = fact_of(event, bots)
                if fact is None and event.type in NAMES_A_BOT:
                    await bots.refresh()  # a bot of a team another process serves
                    fact = fact_of(event, bots)
                if fact is not None:
                    facts.append(fact)
        joins: dict[str | None, str] = {}
        joined: dict[str, frozenset[str]] = {}
        for fact in [*facts, None]:  # in order: a bot that left and came back is a candidate
            if fact is not None and fact.kind is Kind.JOIN:
                if fact.channel:  # joins in a row are ensured together, before the next fact
                    joins.setdefault(fact.channel, fact.via)
                    joined[fact.channel] = joined.get(fact.channel, frozenset()) | fact.teams
                continue
            if joins and not await self._ensure(joins, joined):
                return False
            if fact is None:
                return True
            joins, joined = {}, {}
            channels = self._responsible.channels_of(fact.teams) if fact.kind is Kind.GONE else ()
            try:
                teams = await self._elector.apply(fact, channels)
            except StoreUnavailable:
                return False
            except Exception as exc:  # a fact that cannot be applied must not stop the stage
                log.error("election.failed", reason=fact.reason, exc_info=exc)
                continue
            # Copies held for a team that is gone are rescued now, not after the grace.
            self._standby.gone(teams, fact.channel, everywhere=fact.kind is Kind.GONE)
        return True

    def _classify(self, ask: Ask, asks: dict[str, Ask]) -> None:
        """Settle a question without the store if possible, else add it to the batch's questions."""
        items = ask.items
        event = ask.first
        if event.type == "message":
            bots = self._bots
            for copy, _ in items:
                if copy.wrote_by(bots) if isinstance(copy, Copy) else bots.wrote(copy):
                    self.counters.own_message += len(items)
                    if self._outcomes:
                        self._outcomes.settle(items, "own_message")
                    return
        local = ask.local
        if local is None:
            key = event.dedup_key
            if key is None:  # nothing to dedup on
                self._handled(event, event.team_id)
                return
            local = local_key(event.channel or "", key)
        if local in self._claimed:  # claimed while this question waited
            self.counters.duplicate += len(items)
            if self._outcomes:
                self._outcomes.settle(items, "duplicate")
            if self._trace:
                for copy, _ in items:
                    log_decision(self._log, materialise(copy, UNREADABLE), "duplicate")
            return
        merged = asks.get(local)
        if merged is None:
            if ask.local is None:
                ask = Ask(ask.channel, local, event, items, ask.covers)
            asks[local] = ask
        else:  # the same event asked twice (a retried question and a newer one): one decision
            merged.items.extend(items)
            merged.add_covers(ask.covers)

    async def _ensure(
        self, channels: dict[str | None, str], joined: dict[str, frozenset[str]] | None = None
    ) -> bool:
        """Elect a responsible team where none is (``joined``: teams whose bot just joined each
        conversation); False if the store was unreachable."""
        joined = joined or {}
        results = await asyncio.gather(
            *(self._elector.ensure(c, team, joined.get(c, ())) for c, team in channels.items() if c),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, StoreUnavailable):
                return False
            if isinstance(result, BaseException):
                log.error("election.failed", exc_info=result)
        return True

    async def _claim(self, asks: list[Ask]) -> list[Ask]:
        """Claim for the receiving team, in one round trip: no channel, SOLO_TYPES, failed elections."""
        try:
            owners = await self._store.claim_many([(a.channel, a.key, a.first.team_id) for a in asks])
        except StoreUnavailable:
            return asks
        for ask, owner in zip(asks, owners, strict=True):
            self._settle(ask, Decision(Outcome.HANDLED if owner is None else Outcome.DUPLICATE, owner))
        return []

    def _claimed_now(self, local: str | None) -> None:
        if local is not None:
            self._claimed.add(local)
            self._standby.release(local)

    def _settle(self, ask: Ask, decision: Decision) -> None:
        """Act on the store's answer for every copy of one event."""
        try:
            items = ask.items
            if self._outcomes:  # before the handler is dispatched: the ack leaves first
                if decision.outcome is Outcome.STANDBY:
                    self._outcomes.hold(ask.local or local_key(ask.channel or "", ask.key), items)
                else:
                    self._outcomes.settle(items, decision.outcome.value)
            if decision.outcome is Outcome.HANDLED:
                self._claimed_now(ask.local)
                team = decision.team or ask.first.team_id
                self._responsible.note(ask.channel, decision.team)
                # Hand the handler the responsible team's own copy when we hold it (a copy that
                # kept no frame, because the election moved since, leaves the first copy).
                chosen: Event | Copy = ask.first
                for copy, _ in items:
                    if copy.team_id == team:
                        if not isinstance(copy, Copy) or copy.frame is not None:
                            chosen = copy
                        break
                self._handled(materialise(chosen, ask.first), team)
                self.counters.duplicate += len(items) - 1
                if self._trace:
                    for copy, _ in items:
                        if copy is not chosen:
                            log_decision(self._log, materialise(copy, UNREADABLE), "duplicate")
            elif decision.outcome is Outcome.STANDBY:
                responsible = decision.team or ""
                self._responsible.note(ask.channel, responsible)
                self.counters.standby += len(items)
                # One held copy is enough: a rescue claims once for all of them.
                local = ask.local or local_key(ask.channel or "", ask.key)
                self._standby.hold(local, ask.first, responsible, len(items), self._now)
                if self._trace:
                    for copy, _ in items:
                        event = materialise(copy, UNREADABLE)
                        log_decision(self._log, event, "standby", responsible=decision.team)
            else:
                if decision.outcome is Outcome.DUPLICATE:
                    self._claimed_now(ask.local)
                self.counters.duplicate += len(items)
                if self._trace:
                    for copy, _ in items:
                        log_decision(self._log, materialise(copy, UNREADABLE), "duplicate")
        except Exception as exc:  # one bad event must not take the rest of the batch with it
            with contextlib.suppress(Exception):
                log.error("dedup.failed", channel=ask.channel, key=ask.key, exc_info=exc)

    def _handled(self, event: Event, team: str) -> None:
        self.counters.handled += 1
        if self._trace:  # (the call alone, kwargs and all, cost more than the rest of this)
            log_decision(self._log, event, "handled", handled_by=team)
        self._dispatch(event, team, "handled")
