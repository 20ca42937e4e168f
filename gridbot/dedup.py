"""The dedup stage: every delivery asks one question, "does this delivery get handled?".

* The responsible team's delivery claims the event and is dispatched.
* A copy that arrives after that is a duplicate.
* A standby team's copy is held for ``standby_grace`` seconds. If by then nobody has claimed the
  event (the responsible team's socket was down and RTM does not replay), the standby claims and
  handles it itself, and if the responsible team's liveness lease has lapsed, takes over the
  election. The claim is atomic in the store, so whatever races, an event is handled once.

Transports hand events over synchronously (:meth:`DedupStage.submit`); one worker task decides
them in batches, so a slow store never blocks a socket reader and no task is made per delivery.
Copies of one event are merged on arrival: the first copy opens a question (an :class:`_Ask`),
later copies for our other teams join it while it waits, and a copy of an event this process
already knows was claimed is a duplicate at once, without queueing (two of every three deliveries
in a channel shared by three of our teams cost a string and a dict lookup). A batch is whatever
questions arrived during the previous loop turn (or store round trip): the worker wakes on the
next turn, not on a timer, and sends the batch to the store as one decision (one round trip).
Batches are taken round-robin across conversations, so a flood in one channel does not queue the
others behind it.

When deliveries come faster than the store answers, the stage closes :attr:`DedupStage.intake`
above a high-water mark and the links stop reading until it drains (TCP pushes back). While the
store is unreachable the links keep reading and events wait in a bounded buffer and are retried;
if it fills, the oldest event of the busiest conversation is dropped, loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gridbot.bots import Bots
from gridbot.election import Elector
from gridbot.events import Event, FrameError, normalise, stable_user
from gridbot.logs import get_logger
from gridbot.store import Decision, Outcome, Store, StoreUnavailable
from gridbot.tasks import cancel_and_wait

log = get_logger("gridbot.dedup")

Dispatch = Callable[[Event, str, str], None]  # (event, handling team, decision)
BACKPRESSURE_LOG_INTERVAL = 10.0  # seconds between dedup.backpressure lines
_JOIN_TYPES = frozenset({"channel_joined", "group_joined", "member_joined_channel"})


class _Copy:
    """A delivery that joined a waiting question as its raw frame: it becomes an :class:`Event`
    only if it is the copy chosen for the handler (normalising is the largest cost of a delivery,
    and two of every three copies are never looked at again).

    A copy for a team that is not the conversation's responsible team (as the last decision there
    said) keeps no frame at all (``frame`` is None): it would only be freed later, and holding
    thousands of frames until their batch is decided made every allocation on the read path
    slower (profiled: a third of gridbot's cost per message in a flood).
    """

    __slots__ = ("enterprise_id", "frame", "team_id")

    def __init__(self, frame: dict[str, Any] | None, team_id: str, enterprise_id: str | None) -> None:
        self.frame = frame
        self.team_id = team_id
        self.enterprise_id = enterprise_id

    def event(self) -> Event:
        if self.frame is None:
            raise FrameError("copy_not_kept")
        return normalise(self.frame, team_id=self.team_id, enterprise_id=self.enterprise_id)

    def wrote_by(self, bots: Bots) -> bool:
        # Checked when it joined: only a copy none of our bots wrote drops its frame.
        return self.frame is not None and _wrote(self.frame, bots)


def _wrote(frame: dict[str, Any], bots: Bots) -> bool:
    """:meth:`Bots.wrote` on a raw frame (a copy joins only as a message with a string ts)."""
    user = stable_user(frame.get("user"), frame.get("user_id_mapping_old_to_new"))
    return bots.authored(frame.get("type"), frame.get("bot_id"), user)


Item = tuple[Event | _Copy, tuple[str, ...]]  # a delivery and the teams it speaks for


def _local_key(channel: str, kind: str, subtype: str | None, ts: str) -> str:
    """:attr:`Event.dedup_key` prefixed with its conversation, from the fields themselves (so an
    event and a raw frame that :meth:`DedupStage.join` looks at key alike)."""
    return f"{channel}:{kind}.{subtype or ''}:{ts}"


@dataclass(slots=True, eq=False)
class _Held:
    """A standby copy waiting out the grace period (compared by identity: a key held again after
    a retry is a new entry, and the old one in the deadline queue is skipped)."""

    deadline: float
    key: str  # the local key: conversation and event
    event: Event
    responsible: str  # the team that was responsible when the copy was held
    copies: int  # deliveries it stands for: each ends as one duplicate, or one of them rescued


class _Recent:
    """A bounded memory of keys: it holds at least the last ``cap // 2`` added and at most ``cap``.

    Two generations of plain sets: when the young one is full it becomes the old one and the
    previous old one is dropped whole. Half the cost per key of an ``OrderedDict`` evicting one
    at a time (measured: about 0.3 against 0.6-0.85 µs for a lookup, an add and an eviction at
    200,000 keys), for a memory whose only job is to spare round trips.
    """

    __slots__ = ("_half", "_old", "_young")

    def __init__(self, cap: int) -> None:
        self._half = max(1, cap // 2)
        self._young: set[str] = set()
        self._old: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self._young or key in self._old

    def add(self, key: str) -> None:
        young = self._young
        young.add(key)
        if len(young) >= self._half:
            self._old, self._young = young, set()


@dataclass
class Counters:
    handled: int = 0
    duplicate: int = 0
    standby: int = 0
    rescued: int = 0
    own_message: int = 0
    dropped_overflow: int = 0
    store_errors: int = 0
    backpressure: int = 0  # times the intake closed (the links stopped reading until it drained)


@dataclass(slots=True)
class _Ask:
    """One question for the store: the copies of one event that arrived before it was asked.

    ``local_key`` is None for a delivery that must be looked at alone before its question (a join,
    a bot we do not know yet, an event with nothing to dedup on): it is never merged on arrival.
    """

    channel: str | None
    local_key: str | None
    first: Event  # the copy that opened the question (always normalised)
    items: list[Item] = field(default_factory=list)  # every copy, ``first`` first
    covers: tuple[str, ...] = ()  # every team the copies speak for (a team twice is harmless)

    @property
    def key(self) -> str:
        """The store's key for the event (``local_key`` without the conversation)."""
        if self.local_key is not None and self.channel is not None:
            return self.local_key[len(self.channel) + 1 :]
        return self.first.dedup_key or ""


_UNREADABLE = Event("", None, "unreadable", None, None, None, None, None, None, None, None, "", None, {})


class DedupStage:
    def __init__(
        self,
        store: Store,
        elector: Elector,
        dispatch: Dispatch,
        *,
        bots: Bots,
        standby_grace: float = 2.0,
        max_buffer: int = 50_000,
        high_water: int = 250,
        local_memory: int = 200_000,
        batch_size: int = 2048,
        clock: Callable[[], float] = time.monotonic,
        backpressure: Callable[[], Awaitable[None]] | None = None,
        capacity: Callable[[], int] | None = None,
        received: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.store = store
        self.elector = elector
        self.bots = bots
        self.counters = Counters()
        self.store_ok = True
        self._dispatch = dispatch
        self._grace = standby_grace
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self._clock = clock
        self._backpressure = backpressure
        self._capacity = capacity  # how many more deliveries the dispatcher can take now
        # Deliveries taken in, per (receiving team, event type): the metrics' dict, counted here
        # because every delivery passes through join() or submit() once.
        self.received: dict[tuple[str, str], int] = {} if received is None else received
        # One FIFO lane of questions per conversation; dict order is the round-robin order.
        self._lanes: dict[str | None, deque[_Ask]] = {}
        self._open: dict[str, _Ask] = {}  # queued questions by key: later copies join them
        self._queued = 0  # deliveries in the lanes
        self._wake = asyncio.Event()
        # Open while the buffer has room: links wait on it before reading the next frame.
        self.intake = asyncio.Event()
        self.intake.set()
        # Backpressure starts here, far below the buffer: beyond a batch or two, a deeper queue
        # only holds more frames in memory, and every allocation and lookup gets slower with
        # them (the frames in flight no longer fit the CPU's caches). Bench floods, median
        # ratio to parse only (memory / Redis store): 2,000 queued deliveries 0.54-0.62 /
        # 0.46-0.49; 1,000: 0.70-0.73 / 0.45-0.47; 500: 0.70-0.81 / 0.57-0.61; 250: 0.84-0.90 /
        # 0.53-0.60; 128: 0.87 / 0.58. TCP holds the rest. Even at a 5 ms store round trip, 250 queued
        # plus a batch in flight carry tens of thousands of messages per second.
        self._high_water = max(1, min(high_water, max_buffer // 5))
        self._closed_at = float("-inf")  # when dedup.backpressure was last logged
        self._closures = 0  # intake closures since then
        # Standby copies: one held event per key, and their deadlines in order. A held copy is
        # let go as soon as its key is claimed (usually the responsible team's own copy, a batch
        # later): in a flood 15-45 % of all deliveries were held, for the whole grace period.
        self._held: dict[str, _Held] = {}
        self._pending: deque[_Held] = deque()
        self._pending_wake = asyncio.Event()
        # Keys known to be claimed (by us or, as the store told us, by anyone): a later copy for
        # another of our teams needs no round trip.
        self._local = _Recent(local_memory)
        self._local_cap = local_memory
        # The responsible team per conversation as the last decision there said: the one team
        # whose joining copies keep their frame (see :class:`_Copy`). A hint, never a decision.
        self._responsible: dict[str, str] = {}
        self._frameless_items: dict[str, Item] = {}
        # The frame :meth:`join` last found unknown and its key, for the :meth:`submit` that follows.
        self._missed: tuple[dict[str, Any], str] | None = None
        self._deciding = 0  # taken from the lanes, decision not yet made
        self._idle = asyncio.Event()
        self._idle.set()
        self._log = log.bind()
        self._trace = False

    # -- intake (synchronous, from the transports) ---------------------------------------------

    def submit(self, event: Event, covers: tuple[str, ...]) -> None:
        channel, ts, kind = event.channel, event.ts, event.type
        received, tally = self.received, (event.team_id, kind)
        received[tally] = received.get(tally, 0) + 1
        local_key: str | None = None
        if (
            channel
            and ts
            and kind not in _JOIN_TYPES
            and (event.bot_id is None or event.bot_id in self.bots.bot_ids)  # else: unknown bot
        ):
            missed, self._missed = self._missed, None
            if missed is not None and missed[0] is event.raw:
                # :meth:`join` just built this key from the same frame and found nothing under it
                # (nothing ran in between): skip building and looking it up again.
                local_key = missed[1]
            else:
                local_key = _local_key(channel, kind, event.subtype, ts)
                if local_key in self._local:  # claimed already: no question to ask
                    self.counters.duplicate += 1
                    if self._trace:
                        self._log_decision(event, "duplicate", counted=True)
                    return
                ask = self._open.get(local_key)
                if ask is not None and self._queued < self._max_buffer:  # another team's copy: it joins
                    ask.items.append((event, covers))
                    self._add_covers(ask, covers)
                    self._queued += 1
                    return
        if self._queued >= self._max_buffer:
            self._drop_one()
        ask = _Ask(channel, local_key, event, [(event, covers)], covers)
        if local_key is not None:
            self._open[local_key] = ask
        lane = self._lanes.get(channel)
        if lane is None:
            lane = self._lanes[channel] = deque()
        lane.append(ask)
        self._queued += 1
        if self._queued >= self._high_water and self.store_ok and self.intake.is_set():
            self._close_intake()
        self._idle.clear()
        self._wake.set()

    def _close_intake(self) -> None:
        """Stop the links reading until the queue drains; log it at most every 10 s (a flood
        closes the intake many times a second)."""
        self.intake.clear()
        self.counters.backpressure += 1
        self._closures += 1
        now = self._clock()
        if now - self._closed_at >= BACKPRESSURE_LOG_INTERVAL:
            log.warning("dedup.backpressure", queued=self._queued, closures=self._closures)
            self._closed_at, self._closures = now, 0

    def join(
        self, frame: dict[str, Any], team_id: str, enterprise_id: str | None, covers: tuple[str, ...]
    ) -> bool:
        """Take a frame, before it is normalised, if it is one more copy of a known event.

        True when the frame is a copy of an event already claimed (a duplicate, dropped now) or
        of one whose question is waiting (it joins as a :class:`_Copy`). False: normalise the
        frame and :meth:`submit` it. Only the plainest shape joins: a string ``channel``, ``ts``,
        ``type`` (not a join) and ``subtype``, and no unknown bot: the key is then exactly the
        one :meth:`submit` would compute.
        """
        # The key's parts are checked before the key is built (str() of a hostile value, say a
        # 1,000-deep array, raises), the author fields only on a hit.
        get = frame.get
        channel, kind, ts, subtype = get("channel"), get("type"), get("ts"), get("subtype")
        if (
            type(channel) is not str
            or type(kind) is not str
            or type(ts) is not str
            or (subtype is not None and type(subtype) is not str)
            or self._queued >= self._max_buffer  # at the bound: the full path drops the oldest
        ):
            return False
        local_key = f"{channel}:{kind}.{subtype or ''}:{ts}"  # _local_key, inlined: every frame
        ask = self._open.get(local_key)
        if ask is None and local_key not in self._local:
            if channel and ts:  # the key submit() will build (an empty ts: normalise uses event_ts)
                self._missed = (frame, local_key)  # the first copy: submit() reuses the key
            return False
        bots = self.bots
        bot_id, user = get("bot_id"), get("user")
        if (
            not (channel and ts and kind)
            or kind in _JOIN_TYPES
            or (user is not None and type(user) is not str)
            or (bot_id is not None and (type(bot_id) is not str or bot_id not in bots.bot_ids))
        ):
            return False  # malformed, a bot we do not know yet, or a join: the full path
        received, tally = self.received, (team_id, kind)
        received[tally] = received.get(tally, 0) + 1
        if ask is None:  # claimed already
            self.counters.duplicate += 1
            return True
        if (
            self._responsible.get(channel, team_id) != team_id
            and not self._trace  # a traced decision logs every copy from its frame
            and bot_id is None  # (a known bot: it may be ours)
            and user not in bots.user_ids
            and not (get("user_id_mapping_old_to_new") and _wrote(frame, bots))
        ):
            ask.items.append(self._frameless(team_id, enterprise_id, covers))
        else:
            ask.items.append((_Copy(frame, team_id, enterprise_id), covers))
        if len(covers) == 1:  # _add_covers, inlined for the one team an RTM copy speaks for
            if covers[0] not in ask.covers:
                ask.covers += covers
        else:
            self._add_covers(ask, covers)
        self._queued += 1
        return True

    def _frameless(self, team_id: str, enterprise_id: str | None, covers: tuple[str, ...]) -> Item:
        """A copy that is never the handler's: one shared item per team, so it costs nothing."""
        item = self._frameless_items.get(team_id)
        if item is None or item[1] is not covers or item[0].enterprise_id != enterprise_id:
            item = self._frameless_items[team_id] = (_Copy(None, team_id, enterprise_id), covers)
        return item

    @staticmethod
    def _add_covers(ask: _Ask, covers: tuple[str, ...]) -> None:
        """Add the teams a joining copy speaks for (a redelivery storm must not grow the tuple)."""
        for team in covers:
            if team not in ask.covers:
                ask.covers += (team,)

    def _drop_one(self) -> None:
        channel = max(self._lanes, key=lambda c: len(self._lanes[c]))
        lane = self._lanes[channel]
        ask = lane.popleft()
        if not lane:
            del self._lanes[channel]
        self._close(ask)
        self._queued -= len(ask.items)
        self.counters.dropped_overflow += 1
        lost = ask.first
        log.error(
            "event.dropped",
            reason="buffer_full",
            channel=lost.channel,
            ts=lost.ts,
            team_id=lost.team_id,
            copies=len(ask.items),
            dropped_total=self.counters.dropped_overflow,
        )

    def _close(self, ask: _Ask) -> None:
        """No more copies join ``ask`` (it is being decided, or gone)."""
        if ask.local_key is not None and self._open.get(ask.local_key) is ask:
            del self._open[ask.local_key]

    @property
    def _queue(self) -> list[Item]:
        """Every queued delivery, lane by lane (for inspection; the lanes are the truth)."""
        return [item for lane in self._lanes.values() for ask in lane for item in ask.items]

    @property
    def backlog(self) -> int:
        return self._queued + self._deciding + len(self._held)

    def _take(self, limit: int) -> list[_Ask]:
        """Up to ``limit`` questions (events), a fair share from each conversation in turn."""
        batch: list[_Ask] = []
        while self._lanes and len(batch) < limit:
            share = max(1, (limit - len(batch)) // len(self._lanes))
            for channel in list(self._lanes):
                lane = self._lanes.pop(channel)
                for _ in range(min(share, len(lane), limit - len(batch))):
                    batch.append(lane.popleft())
                if lane:
                    self._lanes[channel] = lane  # back of the round-robin order
                if len(batch) >= limit:
                    break
        taken = 0
        for ask in batch:
            self._close(ask)
            taken += len(ask.items)
        self._queued -= taken
        if not self.intake.is_set() and self._queued <= self._high_water // 2:
            self.intake.set()
        return batch

    def _requeue(self, asks: list[_Ask]) -> None:
        """Put questions back at the front of their lanes (the store was unreachable)."""
        for ask in reversed(asks):
            lane = self._lanes.get(ask.channel)
            if lane is None:
                lane = self._lanes[ask.channel] = deque()
            lane.appendleft(ask)
            self._queued += len(ask.items)

    # -- the worker ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Decide queued events in batches; hold standby copies; never dies of a store error."""
        sweeper = asyncio.create_task(self._sweep(), name="dedup:standby-sweeper")
        retry_delay = 0.1
        unexpected = 0  # consecutive batches that failed with something other than an outage
        try:
            while True:
                if not self._lanes:
                    if not self._held and not self._deciding:
                        self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self._backpressure is not None:
                    await self._backpressure()
                # One more loop turn before taking the batch: a reader woken in the same turn as
                # this worker hands over its copies first. Without it, in a flood, the responsible
                # team's copy often came a turn late, after the question was decided without it:
                # 15-45 % of deliveries were held as standby copies and asked about twice.
                await asyncio.sleep(0)
                # Take no more than the dispatcher has room for: what stays here is served round
                # robin across conversations, so a quiet channel is not queued behind a flood.
                room = self._capacity() if self._capacity is not None else self._batch_size
                batch = self._take(min(self._batch_size, max(1, room)))
                deciding = sum(len(ask.items) for ask in batch)
                self._deciding += deciding
                failed: list[_Ask] = []
                try:
                    failed = await self._decide_batch(batch)
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
                        self._requeue(failed)
                    self._deciding -= deciding
                if failed:
                    self.counters.store_errors += 1
                    if self.store_ok:
                        log.error("store.unavailable", buffered=self._queued)
                    self.store_ok = False
                    # Not backpressure but an outage: keep reading (pings, acks) and buffer.
                    self.intake.set()
                    await asyncio.sleep(retry_delay)
                    retry_delay = min(retry_delay * 2, 1.0)  # a short outage drains within a second
                else:
                    if not self.store_ok:
                        log.warning("store.recovered")
                    self.store_ok = True
                    retry_delay = 0.1
        finally:
            await cancel_and_wait([sweeper])

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or held (shutdown drains through this)."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return True
        except TimeoutError:
            return False

    def _remember(self, key: str) -> None:
        self._local.add(key)
        if self._held:
            held = self._held.pop(key, None)
            if held is not None:  # a standby copy of ours whose event was claimed: let it go
                self._held_duplicate(held)

    def _held_duplicate(self, held: _Held) -> None:
        """Every delivery a held copy stands for ends as a duplicate: the event was claimed."""
        self.counters.duplicate += held.copies
        self._log_decision(held.event, "duplicate", counted=True)

    async def _decide_batch(self, batch: list[_Ask]) -> list[_Ask]:
        """Decide every question of ``batch``; returns those to retry (the store was unreachable)."""
        self._refresh_logger()
        bots = self.bots
        asks: dict[str, _Ask] = {}
        first: list[_Ask] = []  # needing a registry refresh or an election before their decision
        for ask in batch:
            if ask.local_key is None:
                event = ask.first
                if event.type in _JOIN_TYPES or bots.unknown_bot(event):
                    first.append(ask)
                    continue
            self._classify(ask, bots, asks)
        if first:
            joins: dict[str | None, str] = {}
            for ask in first:
                event = ask.first
                if bots.unknown_bot(event):
                    await bots.refresh()
                if event.channel and event.type in _JOIN_TYPES and self._is_our_join(event):
                    joins.setdefault(event.channel, event.team_id)
            if joins and not await self._ensure(joins):
                return [*first, *asks.values()]
            for ask in first:
                self._classify(ask, bots, asks)
        if not asks:
            return []
        loose = [a for a in asks.values() if a.channel is None]
        failed = await self._claim_loose(loose) if loose else []
        pending = [a for a in asks.values() if a.channel is not None]
        for attempt in range(2):
            if not pending:
                break
            try:
                decisions = await self.store.decide_many(
                    [(a.channel or "", a.key, a.covers) for a in pending]
                )
            except StoreUnavailable:
                return failed + pending
            unelected = []
            for ask, decision in zip(pending, decisions, strict=True):
                if decision.outcome is Outcome.UNELECTED and attempt == 0:
                    unelected.append(ask)
                else:
                    self._settle(ask, decision)
            if unelected and not await self._ensure({a.channel: a.first.team_id for a in unelected}):
                return failed + unelected
            pending = unelected
        return failed

    def _classify(self, ask: _Ask, bots: Bots, asks: dict[str, _Ask]) -> None:
        """Settle a question without the store if possible, else add it to the batch's questions."""
        items = ask.items
        event = ask.first
        if event.type == "message":
            for copy, _ in items:
                if copy.wrote_by(bots) if isinstance(copy, _Copy) else bots.wrote(copy):
                    self.counters.own_message += len(items)
                    return
        local_key = ask.local_key
        if local_key is None:
            key = event.dedup_key
            if key is None:
                self._handled(event, event.team_id, "handled")
                return
            local_key = f"{event.channel}:{key}"
        if local_key in self._local:  # claimed while this question waited
            self.counters.duplicate += len(items)
            if self._trace:
                for copy, _ in items:
                    self._log_decision(copy, "duplicate", counted=True)
            return
        merged = asks.get(local_key)
        if merged is None:
            if ask.local_key is None:
                ask = _Ask(ask.channel, local_key, event, items, ask.covers)
            asks[local_key] = ask
        else:  # the same event asked twice (a retried question and a newer one): one decision
            merged.items.extend(items)
            self._add_covers(merged, ask.covers)

    async def _ensure(self, channels: dict[str | None, str]) -> bool:
        """Elect a responsible team where none is; False if the store was unreachable."""
        results = await asyncio.gather(
            *(self.elector.ensure(c, team) for c, team in channels.items() if c), return_exceptions=True
        )
        for result in results:
            if isinstance(result, StoreUnavailable):
                return False
            if isinstance(result, BaseException):
                log.error("election.failed", exc_info=result)
        return True

    async def _claim_loose(self, asks: list[_Ask]) -> list[_Ask]:
        """Events with no conversation (keyed on a Socket Mode event_id): a plain claim each."""
        for n, ask in enumerate(asks):
            first = ask.first
            try:
                owner = await self.store.claim(None, ask.key, first.team_id)
            except StoreUnavailable:
                return asks[n:]
            self._settle(ask, Decision(Outcome.HANDLED if owner is None else Outcome.DUPLICATE, owner))
        return []

    def _settle(self, ask: _Ask, decision: Decision) -> None:
        """Act on the store's answer for every copy of one event."""
        try:
            items = ask.items
            if decision.outcome is Outcome.HANDLED:
                self._remember(ask.local_key or "")
                team = decision.team or ask.first.team_id
                self._note_responsible(ask.channel, decision.team)
                # Hand the handler the responsible team's own copy when we hold it (a copy that
                # kept no frame, because the election moved since, leaves the first copy).
                chosen: Event | _Copy = ask.first
                for copy, _ in items:
                    if copy.team_id == team:
                        if not isinstance(copy, _Copy) or copy.frame is not None:
                            chosen = copy
                        break
                self._handled(self._materialise(chosen, ask.first), team, "handled")
                self.counters.duplicate += len(items) - 1
                if self._trace:
                    for copy, _ in items:
                        if copy is not chosen:
                            self._log_decision(copy, "duplicate", counted=True)
            elif decision.outcome is Outcome.STANDBY:
                self._note_responsible(ask.channel, decision.team)
                # One held copy is enough: a rescue claims once for all of them.
                self.counters.standby += len(items)
                key = ask.local_key or f"{ask.channel}:{ask.key}"
                held = self._held.get(key)
                if held is not None:  # asked again (a later copy, another batch): one hold for all
                    held.copies += len(items)
                else:
                    deadline = self._clock() + self._grace
                    self._hold(_Held(deadline, key, ask.first, decision.team or "", len(items)))
                for copy, _ in items:
                    self._log_decision(copy, "standby", responsible=decision.team)
            else:
                if decision.outcome is Outcome.DUPLICATE:
                    self._remember(ask.local_key or "")
                for copy, _ in items:
                    self._log_decision(copy, "duplicate")
        except Exception as exc:  # one bad event must not take the rest of the batch with it
            with contextlib.suppress(Exception):
                log.error("dedup.failed", channel=ask.channel, key=ask.key, exc_info=exc)

    def _note_responsible(self, channel: str | None, team: str | None) -> None:
        if channel is None or team is None or self._responsible.get(channel) == team:
            return
        if len(self._responsible) >= self._local_cap:  # a hint: forgetting costs one kept frame
            self._responsible.clear()
        self._responsible[channel] = team

    def _materialise(self, copy: Event | _Copy, fallback: Event) -> Event:
        """The chosen copy as an Event; a copy whose frame does not normalise yields ``fallback``
        (the same message as another of our teams received it), and is logged like any bad frame."""
        if isinstance(copy, Event):
            return copy
        try:
            return copy.event()
        except FrameError as exc:
            log.warning("frame.dropped", reason=exc.reason, team_id=copy.team_id, stage="dedup")
            return fallback

    def _is_our_join(self, event: Event) -> bool:
        if event.type == "member_joined_channel":
            return event.user in self.bots.user_ids
        return True  # channel_joined / group_joined go only to the bot that joined

    def _handled(self, event: Event, team: str, decision: str) -> None:
        if decision == "rescued":
            self.counters.rescued += 1
        else:
            self.counters.handled += 1
        if self._trace:  # (the call alone, kwargs and all, cost more than the rest of this)
            self._log_decision(event, decision, handled_by=team)
        self._dispatch(event, team, decision)

    def _refresh_logger(self) -> None:
        """Bind once per batch: the lazy module logger binds anew on every call (~4 us each)."""
        self._log = log.bind()
        self._trace = self._log.is_enabled_for(logging.DEBUG)

    def _log_decision(
        self, copy: Event | _Copy, decision: str, counted: bool = False, **extra: str | None
    ) -> None:
        # Debug, and skipped unless enabled: one line per event at info cost more than the
        # decision itself (profiled), the counters carry the totals.
        if decision == "duplicate" and not counted:
            self.counters.duplicate += 1
        if not self._trace:
            return
        event = copy if isinstance(copy, Event) else self._materialise(copy, _UNREADABLE)
        self._log.debug(
            "event.decided",
            team_id=event.team_id,
            enterprise_id=event.enterprise_id,
            channel=event.channel,
            ts=event.ts,
            type=event.type,
            decision=decision,
            **extra,
        )

    # -- standby copies ------------------------------------------------------------------------

    def _hold(self, held: _Held, *, first: bool = False) -> None:
        """Hold a standby copy until its deadline (``first``: a retry, due before the others)."""
        self._held[held.key] = held
        if first:
            self._pending.appendleft(held)
        else:
            self._pending.append(held)
        self._pending_wake.set()

    async def _sweep(self) -> None:
        """Handle standby copies nobody claimed within the grace period (all those due at once)."""
        pending, holding = self._pending, self._held
        while True:
            while pending and holding.get(pending[0].key) is not pending[0]:
                pending.popleft()  # let go early: its event was claimed
            if not pending:
                if not self._lanes and not self._deciding:
                    self._idle.set()
                self._pending_wake.clear()
                await self._pending_wake.wait()
                continue
            delay = pending[0].deadline - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            now = self._clock()
            due: list[_Held] = []
            while pending and pending[0].deadline <= now and len(due) < self._batch_size:
                held = pending.popleft()
                if holding.get(held.key) is held:
                    del holding[held.key]
                    due.append(held)
            self._deciding += len(due)
            self._refresh_logger()
            try:
                await self._rescue(due)
            except StoreUnavailable:
                retry = self._clock() + 0.5
                for held in reversed(due):
                    self._hold(_Held(retry, held.key, held.event, held.responsible, held.copies), first=True)
                self.store_ok = False
            except Exception:
                log.exception("dedup.rescue_failed", events=len(due))
            finally:
                self._deciding -= len(due)

    async def _rescue(self, due: list[_Held]) -> None:
        """Claim the held copies; handle those we won; move elections whose team is gone.

        Safe to retry as a whole: a copy already won is remembered, so it comes back a duplicate.
        """
        claims: list[_Held] = []
        for held in due:
            if held.key in self._local:
                self._held_duplicate(held)
            else:
                claims.append(held)
        if not claims:
            return
        owners = await self.store.claim_many(
            [(h.event.channel, h.event.dedup_key or "", h.event.team_id) for h in claims]
        )
        takeovers: dict[str, tuple[str, str]] = {}
        for held, owner in zip(claims, owners, strict=True):
            self._remember(held.key)
            event = held.event
            if owner is not None:
                self._held_duplicate(held)
                continue
            self.counters.duplicate += held.copies - 1  # the other copies it stood for
            self._handled(event, event.team_id, "rescued")
            takeovers.setdefault(event.channel or "", (held.responsible, event.team_id))
        for channel, (responsible, standby) in takeovers.items():
            await self.elector.check_takeover(channel, responsible, standby)
