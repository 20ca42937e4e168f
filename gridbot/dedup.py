"""The dedup stage: every delivery asks one question, "does this delivery get handled?".

* The responsible team's delivery claims the event (one store round trip) and is dispatched.
* A copy that arrives after that is a duplicate.
* A standby team's copy is held for ``standby_grace`` seconds. If by then nobody has claimed the
  event (the responsible team's socket was down and RTM does not replay), the standby claims and
  handles it itself, and if the responsible team's liveness lease has lapsed, takes over the
  election. The claim is atomic in the store, so whatever races, an event is handled once.

Transports hand events over synchronously (:meth:`DedupStage.submit`); a worker task makes the
decisions, so a slow store never blocks a socket reader. While the store is unreachable events
wait in a bounded buffer and are retried; when it is full the oldest are dropped, loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gridbot.bots import Bots
from gridbot.election import Elector
from gridbot.events import Event
from gridbot.logs import get_logger
from gridbot.store import Outcome, Store, StoreUnavailable

log = get_logger("gridbot.dedup")

Dispatch = Callable[[Event, str, str], None]  # (event, handling team, decision)
_JOIN_TYPES = frozenset({"channel_joined", "group_joined", "member_joined_channel"})


@dataclass
class Counters:
    handled: int = 0
    duplicate: int = 0
    standby: int = 0
    rescued: int = 0
    own_message: int = 0
    dropped_overflow: int = 0
    store_errors: int = 0


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
        local_memory: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
        backpressure: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.elector = elector
        self.bots = bots
        self.counters = Counters()
        self.store_ok = True
        self._dispatch = dispatch
        self._grace = standby_grace
        self._max_buffer = max_buffer
        self._clock = clock
        self._backpressure = backpressure
        self._queue: deque[tuple[Event, tuple[str, ...]]] = deque()
        self._wake = asyncio.Event()
        self._pending: deque[tuple[float, Event, str]] = deque()  # (deadline, event, responsible)
        self._pending_wake = asyncio.Event()
        # Keys this process has handled: a copy for another of our teams needs no round trip.
        self._local: OrderedDict[str, None] = OrderedDict()
        self._local_cap = local_memory
        self._deciding = 0  # popped from the queue, decision not yet made
        self._idle = asyncio.Event()
        self._idle.set()

    # -- intake (synchronous, from the transports) ---------------------------------------------

    def submit(self, event: Event, covers: tuple[str, ...]) -> None:
        if len(self._queue) >= self._max_buffer:
            lost, _ = self._queue.popleft()
            self.counters.dropped_overflow += 1
            log.error(
                "event.dropped",
                reason="buffer_full",
                channel=lost.channel,
                ts=lost.ts,
                team_id=lost.team_id,
                dropped_total=self.counters.dropped_overflow,
            )
        self._queue.append((event, covers))
        self._idle.clear()
        self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._queue) + self._deciding + len(self._pending)

    # -- the worker ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Decide queued events in batches; hold standby copies; never dies of a store error."""
        sweeper = asyncio.create_task(self._sweep(), name="dedup:standby-sweeper")
        retry_delay = 0.1
        try:
            while True:
                if not self._queue:
                    if not self._pending:
                        self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self._backpressure is not None:
                    await self._backpressure()
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), 256))]
                results = await asyncio.gather(
                    *(self._decide(e, c) for e, c in batch), return_exceptions=True
                )
                failed = [
                    item for item, r in zip(batch, results, strict=True) if isinstance(r, StoreUnavailable)
                ]
                for item, r in zip(batch, results, strict=True):
                    if isinstance(r, BaseException) and not isinstance(r, StoreUnavailable):
                        with contextlib.suppress(Exception):  # not even a broken log sink stops intake
                            log.error("dedup.failed", channel=item[0].channel, ts=item[0].ts, exc_info=r)
                if failed:
                    self.counters.store_errors += 1
                    if self.store_ok:
                        log.error("store.unavailable", buffered=len(self._queue) + len(failed))
                    self.store_ok = False
                    self._queue.extendleft(reversed(failed))
                    await asyncio.sleep(retry_delay)
                    retry_delay = min(retry_delay * 2, 5.0)
                else:
                    if not self.store_ok:
                        log.warning("store.recovered")
                    self.store_ok = True
                    retry_delay = 0.1
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or held (shutdown drains through this)."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return True
        except TimeoutError:
            return False

    def _remember(self, key: str) -> None:
        self._local[key] = None
        if len(self._local) > self._local_cap:
            self._local.popitem(last=False)

    async def _decide(self, event: Event, covers: tuple[str, ...]) -> None:
        if await self.bots.ours(event):
            self.counters.own_message += 1
            return
        channel, key = event.channel, event.dedup_key
        if channel and event.type in _JOIN_TYPES and self._is_our_join(event):
            await self.elector.ensure(channel, event.team_id)
        if key is None:
            self._handled(event, event.team_id, "handled")
            return
        local_key = f"{channel}:{key}"
        if local_key in self._local:
            self._log_decision(event, "duplicate")
            return
        if channel is None:
            owner = await self.store.claim(None, key, event.team_id)
            if owner is None:
                self._remember(local_key)
                self._handled(event, event.team_id, "handled")
            else:
                self._log_decision(event, "duplicate")
            return
        decision = await self.store.decide(channel, key, covers)
        if decision.outcome is Outcome.UNELECTED:
            await self.elector.ensure(channel, event.team_id)
            decision = await self.store.decide(channel, key, covers)
        if decision.outcome is Outcome.HANDLED:
            self._remember(local_key)
            self._handled(event, decision.team or event.team_id, "handled")
        elif decision.outcome is Outcome.STANDBY:
            self.counters.standby += 1
            self._pending.append((self._clock() + self._grace, event, decision.team or ""))
            self._pending_wake.set()
            self._log_decision(event, "standby", responsible=decision.team)
        else:
            self._log_decision(event, "duplicate")

    def _is_our_join(self, event: Event) -> bool:
        if event.type == "member_joined_channel":
            return event.user in self.bots.user_ids
        return True  # channel_joined / group_joined go only to the bot that joined

    def _handled(self, event: Event, team: str, decision: str) -> None:
        if decision == "rescued":
            self.counters.rescued += 1
        else:
            self.counters.handled += 1
        self._log_decision(event, decision, handled_by=team, level="info")
        self._dispatch(event, team, decision)

    def _log_decision(self, event: Event, decision: str, level: str = "debug", **extra: str | None) -> None:
        if decision == "duplicate":
            self.counters.duplicate += 1
        getattr(log, level)(
            "event.decided",
            team_id=event.team_id,
            enterprise_id=event.enterprise_id,
            channel=event.channel,
            ts=event.ts,
            type=event.type,
            decision=decision,
            **extra,
        )

    async def _sweep(self) -> None:
        """Handle standby copies nobody claimed within the grace period."""
        while True:
            if not self._pending:
                if not self._queue:
                    self._idle.set()
                self._pending_wake.clear()
                await self._pending_wake.wait()
                continue
            deadline, event, responsible = self._pending[0]
            delay = deadline - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            self._pending.popleft()
            self._deciding += 1
            try:
                await self._rescue(event, responsible)
            except StoreUnavailable:
                self._pending.appendleft((self._clock() + 0.5, event, responsible))
                self.store_ok = False
            except Exception:
                log.exception("dedup.rescue_failed", channel=event.channel, ts=event.ts)
            finally:
                self._deciding -= 1

    async def _rescue(self, event: Event, responsible: str) -> None:
        assert event.channel is not None and event.dedup_key is not None
        local_key = f"{event.channel}:{event.dedup_key}"
        if local_key in self._local:
            self._log_decision(event, "duplicate")
            return
        owner = await self.store.claim(event.channel, event.dedup_key, event.team_id)
        if owner is not None:
            self._log_decision(event, "duplicate")
            return
        self._remember(local_key)
        self._handled(event, event.team_id, "rescued")
        await self.elector.check_takeover(event.channel, responsible, event.team_id)
