"""The intake: where every delivery enters the dedup stage, through one method, :meth:`Intake.offer`.

Transports hand over a frame synchronously, with the team that received it. The intake merges the
copies of one event: the first copy opens a question (an :class:`~gridbot.dedup.questions.Ask`),
later copies for our other teams are merged into it while it waits, before they are even
normalised, and a copy of an event this process already knows was claimed is a duplicate at once,
without queueing (two of every three deliveries in a channel shared by three of our teams cost a
string and a dict lookup).

Questions wait in one FIFO lane per conversation; the decider takes them round-robin across
conversations, so a flood in one channel does not queue the others behind it. Above a high-water
mark the intake closes (:attr:`Intake.open` is cleared) and the links stop reading until it drains:
TCP pushes back. While the store is unreachable the links keep reading and questions wait in a
bounded buffer; if it fills, the oldest question of the busiest conversation is dropped, loudly.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gridbot.bots import Bots
from gridbot.dedup.claimed import ClaimedKeys, ResponsibleHints
from gridbot.dedup.counters import Counters
from gridbot.dedup.facts import FACT_TYPES
from gridbot.dedup.outcomes import Outcomes
from gridbot.dedup.questions import Ask, Copy, Item, local_key, log_decision
from gridbot.events import Event, event_key, normalise
from gridbot.logs import get_logger

log = get_logger("gridbot.dedup")

BACKPRESSURE_LOG_INTERVAL = 10.0  # seconds between dedup.backpressure lines


class Intake:
    def __init__(
        self,
        bots: Bots,
        *,
        received: dict[tuple[str, str], int] | None = None,
        max_buffer: int = 50_000,
        high_water: int = 250,
        memory: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # What the stage knows between decisions, kept here because every delivery consults it
        # on arrival; the decider writes what the store answered.
        self.counters = Counters()
        self.claimed = ClaimedKeys(memory)
        self.responsible = ResponsibleHints(memory)
        # Transports that answer only after the decision (the Events API over HTTP) wait here.
        self.outcomes = Outcomes()
        # Deliveries taken in, per (receiving team, event type): the metrics' dict, counted here
        # because every delivery passes through offer() once.
        self.received: dict[tuple[str, str], int] = {} if received is None else received
        # Open while the buffer has room: links wait on it before reading the next frame.
        self.open = asyncio.Event()
        self.open.set()
        self._bots = bots
        self._max_buffer = max_buffer
        # Backpressure starts here, far below the buffer: beyond a batch or two, a deeper queue
        # only holds more frames in memory, and every allocation and lookup gets slower with
        # them (the frames in flight no longer fit the CPU's caches). Bench floods, median
        # ratio to parse only (memory / Redis store): 2,000 queued deliveries 0.54-0.62 /
        # 0.46-0.49; 1,000: 0.70-0.73 / 0.45-0.47; 500: 0.70-0.81 / 0.57-0.61; 250: 0.84-0.90 /
        # 0.53-0.60; 128: 0.87 / 0.58. TCP holds the rest. Even at a 5 ms store round trip, 250 queued
        # plus a batch in flight carry tens of thousands of messages per second.
        self._high_water = max(1, min(high_water, max_buffer // 5))
        self._clock = clock
        # One FIFO lane of questions per conversation; dict order is the round-robin order.
        self._lanes: dict[str | None, deque[Ask]] = {}
        self._open: dict[str, Ask] = {}  # queued questions by local key: later copies merge into them
        self._queued = 0  # deliveries in the lanes
        self._wake = asyncio.Event()
        self._store_ok = True
        self._closed_at = float("-inf")  # when dedup.backpressure was last logged
        self._closures = 0  # intake closures since then
        self._frameless: dict[str, Item] = {}
        self._trace = False  # decisions logged at debug: every copy keeps its frame to be logged
        # Everything queued since the last take came in one hand-over (see :meth:`handed_over`).
        self.whole = False

    # -- the transports' entry -----------------------------------------------------------------

    def offer(
        self,
        frame: dict[str, Any],
        team_id: str,
        enterprise_id: str | None,
        covers: tuple[str, ...],
        event_id: str | None = None,
    ) -> None:
        """Take one delivery: ``frame`` as ``team_id`` received it, speaking for ``covers``.

        A copy of an event already waiting or claimed is merged as its raw frame; any other
        delivery is normalised (raising :class:`~gridbot.events.FrameError` for a frame that is not
        an event) and opens a question. Only the plainest shape is merged unparsed: a string
        ``channel``, ``ts``, ``type`` (not a fact) and ``subtype``, and no unknown bot: its key is
        then exactly the one the normalised event would have.
        """
        self.whole = False
        # The key's parts are checked before the key is built (str() of a hostile value, say a
        # 1,000-deep array, raises), the author fields only on a hit.
        get = frame.get
        channel, kind, ts, subtype = get("channel"), get("type"), get("ts"), get("subtype")
        local: str | None = None
        if (
            type(channel) is str
            and type(kind) is str
            and type(ts) is str
            and (subtype is None or type(subtype) is str)
            and self._queued < self._max_buffer  # at the bound: the full path drops the oldest
        ):
            local = local_key(channel, event_key(kind, subtype, ts))
            ask = self._open.get(local)
            if ask is not None or local in self.claimed:
                if self._merge(frame, ask, channel, kind, ts, team_id, enterprise_id, covers, event_id):
                    return
                local = None  # not mergeable after all: asked about on its own
            elif not (channel and ts):
                local = None  # normalise keys an empty ts on event_ts: not this key
        event = normalise(frame, team_id=team_id, enterprise_id=enterprise_id, event_id=event_id)
        self._submit(event, covers, local)

    def handed_over(self) -> None:
        """The caller just offered, in this loop turn, every delivery it had (the Events API
        receiver at the end of its batch window): unless another offer comes before the decider
        runs, the decider takes its batch at once instead of first yielding a loop turn for
        readers woken with it (a turn of its own per batch: about a sixth of the loop's
        iterations on the http bench)."""
        self.whole = True

    def _merge(
        self,
        frame: dict[str, Any],
        ask: Ask | None,
        channel: str,
        kind: str,
        ts: str,
        team_id: str,
        enterprise_id: str | None,
        covers: tuple[str, ...],
        event_id: str | None,
    ) -> bool:
        """Merge a copy of a waiting or claimed event; False: it must be normalised and asked."""
        get = frame.get
        bots = self._bots
        bot_id, user = get("bot_id"), get("user")
        if (
            not (channel and ts and kind)
            or kind in FACT_TYPES
            or (user is not None and type(user) is not str)
            or (bot_id is not None and (type(bot_id) is not str or bot_id not in bots.bot_ids))
        ):
            return False  # malformed, a bot we do not know yet, or a fact: the full path
        received, tally = self.received, (team_id, kind)
        received[tally] = received.get(tally, 0) + 1
        if ask is None:  # claimed already
            self.counters.duplicate += 1
            if event_id is not None and self.outcomes:
                self.outcomes.settle_one(event_id, "duplicate")
            return True
        if (
            self.responsible.get(channel, team_id) != team_id
            and not self._trace  # a traced decision logs every copy from its frame
            and bot_id is None  # (a known bot: it may be ours)
            and user not in bots.user_ids
            and not (get("user_id_mapping_old_to_new") and bots.wrote_frame(frame))
            and (event_id is None or event_id not in self.outcomes)  # a waiter needs its id
        ):
            ask.items.append(self._frameless_copy(team_id, enterprise_id, covers))
        else:
            ask.items.append((Copy(frame, team_id, enterprise_id, event_id), covers))
        if len(covers) == 1:  # add_covers, inlined for the one team an RTM copy speaks for
            if covers[0] not in ask.covers:
                ask.covers += covers
        else:
            ask.add_covers(covers)
        self._queued += 1
        return True

    def _frameless_copy(self, team_id: str, enterprise_id: str | None, covers: tuple[str, ...]) -> Item:
        """A copy that is never the handler's: one shared item per team, so it costs nothing."""
        item = self._frameless.get(team_id)
        if item is None or item[1] is not covers or item[0].enterprise_id != enterprise_id:
            item = self._frameless[team_id] = (Copy(None, team_id, enterprise_id, None), covers)
        return item

    def _submit(self, event: Event, covers: tuple[str, ...], local: str | None) -> None:
        """Queue a normalised delivery; ``local`` is its key when :meth:`offer` just looked that
        key up and found nothing under it (nothing ran in between)."""
        channel, ts, kind = event.channel, event.ts, event.type
        received, tally = self.received, (event.team_id, kind)
        received[tally] = received.get(tally, 0) + 1
        if (
            channel
            and ts
            and kind not in FACT_TYPES
            and (event.bot_id is None or event.bot_id in self._bots.bot_ids)  # else: unknown bot
        ):
            if local is None:
                local = local_key(channel, event_key(kind, event.subtype, ts))
                if local in self.claimed:  # claimed already: no question to ask
                    self.counters.duplicate += 1
                    if self.outcomes:
                        self.outcomes.settle_one(event.event_id, "duplicate")
                    if self._trace:
                        log_decision(log, event, "duplicate")
                    return
                ask = self._open.get(local)
                if ask is not None and self._queued < self._max_buffer:  # another team's copy
                    ask.items.append((event, covers))
                    ask.add_covers(covers)
                    self._queued += 1
                    return
        else:
            local = None
        if self._queued >= self._max_buffer:
            self._drop_one()
        ask = Ask(channel, local, event, [(event, covers)], covers)
        if local is not None:
            self._open[local] = ask
        lane = self._lanes.get(channel)
        if lane is None:
            lane = self._lanes[channel] = deque()
        lane.append(ask)
        self._queued += 1
        if self._queued >= self._high_water and self._store_ok and self.open.is_set():
            self._close()
        self._wake.set()

    # -- flow control --------------------------------------------------------------------------

    def _close(self) -> None:
        """Stop the links reading until the queue drains; log it at most every 10 s (a flood
        closes the intake many times a second)."""
        self.open.clear()
        self.counters.backpressure += 1
        self._closures += 1
        now = self._clock()
        if now - self._closed_at >= BACKPRESSURE_LOG_INTERVAL:
            log.warning("dedup.backpressure", queued=self._queued, closures=self._closures)
            self._closed_at, self._closures = now, 0

    def store_down(self) -> None:
        """The store is unreachable: keep reading (pings, acks) and buffer, not backpressure."""
        self._store_ok = False
        self.open.set()
        self.outcomes.unavailable()

    def store_up(self) -> None:
        self._store_ok = True
        self.outcomes.available()

    def _drop_one(self) -> None:
        channel = max(self._lanes, key=lambda c: len(self._lanes[c]))
        lane = self._lanes[channel]
        ask = lane.popleft()
        if not lane:
            del self._lanes[channel]
        self._stop_merging(ask)
        self._queued -= len(ask.items)
        self.counters.dropped_overflow += 1
        if self.outcomes:
            self.outcomes.settle(ask.items, "dropped")
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

    def _stop_merging(self, ask: Ask) -> None:
        """No more copies merge into ``ask`` (it is being decided, or gone)."""
        if ask.local is not None and self._open.get(ask.local) is ask:
            del self._open[ask.local]

    # -- the decider's side --------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Deliveries waiting in the lanes."""
        return self._queued

    async def wait(self) -> None:
        """Return once a question is queued."""
        while not self._lanes:
            self._wake.clear()
            await self._wake.wait()

    def take(self, limit: int, *, trace: bool) -> list[Ask]:
        """Up to ``limit`` questions (events), a fair share from each conversation in turn.

        ``trace``: decisions are logged at debug from now on, so merged copies keep their frame.
        """
        self._trace = trace
        self.whole = False
        batch: list[Ask] = []
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
            self._stop_merging(ask)
            taken += len(ask.items)
        self._queued -= taken
        if not self.open.is_set() and self._queued <= self._high_water // 2:
            self.open.set()
        return batch

    def requeue(self, asks: list[Ask]) -> None:
        """Put questions back at the front of their lanes (the store was unreachable)."""
        for ask in reversed(asks):
            lane = self._lanes.get(ask.channel)
            if lane is None:
                lane = self._lanes[ask.channel] = deque()
            lane.appendleft(ask)
            self._queued += len(ask.items)
        self._wake.set()
