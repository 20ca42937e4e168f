"""The worker pool: each handler an event matched runs alone and time-limited.

A handler that raises or hangs is logged with plugin, handler, team, channel and ts and affects
nothing else. A global bound on running handlers turns overload into backpressure on the dedup
stage (:meth:`Dispatcher.room`) instead of an unbounded pile of work.

Handlers run in a pool of long-lived, named worker tasks rather than a new task each: most
handlers finish without ever waiting (or wait once on a Slack call), and creating, scheduling and
collecting a task cost more than the handler itself (profiled: a third of the hot path). A worker
takes the next handler from the ready queue and awaits it; before it does, it wakes one spare
worker if more are ready, so a handler that waits never holds up the ones behind it. Each worker
runs one handler at a time, so cancelling the worker is cancelling that handler: its deadline
timer and a drain do exactly that. A handler that leaves a context variable set retires its
worker, so the next handler starts in a clean context as it would in a fresh task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from structlog.typing import FilteringBoundLogger

from gridbot.context import Context
from gridbot.dispatch.routing import Router
from gridbot.events import Event
from gridbot.logs import HotLogger, get_logger
from gridbot.plugins import Route
from gridbot.tasks import cancel_and_wait

log = get_logger("gridbot.dispatch")
_HANDLED = HotLogger("gridbot.dispatch")  # the event.handled line, bound once per configuration

ContextFactory = Callable[[Event, str, str], Context]  # (event, handling team, plugin name)
Observer = Callable[[Route, float, str], None]  # (route, seconds, outcome) for metrics
Waiting = tuple[Route, Event, str, dict[str, Any]]  # (route, event, handling team, arguments)


class _Worker:
    """One worker task and the handler it runs now (if any), with that handler's deadline."""

    __slots__ = ("base", "deadline", "expired", "running", "task", "timer", "timer_at", "wake")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.wake: asyncio.Future[None] | None = None  # set while idle
        self.running = False
        self.deadline = 0.0  # loop time the running handler must end by
        self.expired = False  # its deadline cancelled the running handler
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.base: contextvars.Context | None = None


@dataclass(frozen=True)
class DispatchCounters:
    started: int
    failed: int
    timed_out: int
    match_timeouts: int


class Dispatcher:
    """Runs the handlers ``router`` matches, each in a context ``make_context`` builds.

    ``make_context(event, team_id, plugin)`` returns the finished context of one handler run (a
    bound method such as ``Contexts.make``: calling an object's ``__call__`` costs more per run).
    """

    def __init__(
        self,
        router: Router,
        make_context: ContextFactory,
        *,
        max_concurrent: int = 256,
        default_timeout: float = 30.0,
        observer: Observer | None = None,
        log_handled: bool = False,
    ) -> None:
        self._router = router
        self._log_handled = log_handled  # one event.handled info line per event ([logging])
        self._match = router.match
        self._make_context = make_context
        self._started = 0
        self._failed = 0
        self._timeouts = 0
        self._max = max_concurrent
        self._timeout = default_timeout
        self._observer = observer
        self._active = 0  # handlers started and not yet ended (ready or running in a worker)
        self._ready: deque[Waiting] = deque()  # started, not yet picked up by a worker
        # Handlers waiting for a slot, one queue per conversation served round robin: a flooded
        # channel cannot make a quiet one wait behind its whole backlog.
        self._waiting: OrderedDict[str, deque[Waiting]] = OrderedDict()
        self._waiting_count = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: set[_Worker] = set()
        self._resting: list[_Worker] = []  # idle workers, the most recent last
        self._waking = False  # a worker was woken (or made) and has not run yet
        self._serial = 0
        self._closing = False
        # Workers start in a copy of the context the dispatcher was made in, never in the context
        # of whatever handler happened to make them (its variables would leak into the rest).
        self._context = contextvars.copy_context()

    @property
    def counters(self) -> DispatchCounters:
        """How many handlers started, failed and timed out, and how many pattern searches ran
        out of their budget, so far (a snapshot)."""
        return DispatchCounters(self._started, self._failed, self._timeouts, self._router.match_timeouts)

    def dispatch(self, event: Event, team_id: str, decision: str) -> None:
        """Start the handlers of one decided event: ``team_id`` handles it (its token answers),
        ``decision`` is how it was won (``handled``, or ``rescued`` by a standby team)."""
        matches = self._match(event)
        if self._log_handled:
            # Every handled event, handled or rescued, passes here exactly once: the one place an
            # operator can follow messages at info level (a few us a line: README, "Performance").
            _HANDLED.info(
                "event.handled",
                {
                    "received_by": event.team_id,
                    "handled_by": team_id,
                    "decision": decision,
                    "channel": event.channel,
                    "ts": event.ts,
                    "type": event.type,
                    "handlers": [f"{route.plugin}.{route.name}" for route, _ in matches],
                },
            )
        for route, kwargs in matches:
            if self._active < self._max:
                self._start((route, event, team_id, kwargs))
            else:
                self._waiting.setdefault(event.channel or "", deque()).append((route, event, team_id, kwargs))
                self._waiting_count += 1
                if self.capacity() <= 0:
                    self._room.clear()

    def _next_waiting(self) -> Waiting:
        channel, queue = next(iter(self._waiting.items()))
        item = queue.popleft()
        self._waiting_count -= 1
        if queue:
            self._waiting.move_to_end(channel)  # its next one waits for every other channel's turn
        else:
            del self._waiting[channel]
        return item

    def run_now(self, route: Route, event: Event, team_id: str) -> None:
        """Start one handler outside of event routing (schedules, hooks), past the bound."""
        self._start((route, event, team_id, {}))

    def _start(self, item: Waiting) -> None:
        self._started += 1
        self._active += 1
        self._idle.clear()
        self._ready.append(item)
        self._kick()

    def _kick(self) -> None:
        """Make sure a worker will look at the ready queue: wake a resting one or make one."""
        if self._waking or not self._ready or self._closing:
            return
        while self._resting:
            wake = self._resting.pop().wake
            if wake is not None and not wake.done():  # else: cancelled while resting, gone soon
                wake.set_result(None)
                self._waking = True
                return
        self._waking = True
        worker = _Worker()
        self._serial += 1
        worker.task = asyncio.create_task(
            self._work(worker), name=f"dispatch:worker-{self._serial}", context=self._context.copy()
        )
        worker.task.add_done_callback(functools.partial(self._gone, worker))
        self._workers.add(worker)

    def _gone(self, worker: _Worker, task: asyncio.Task[None]) -> None:
        self._workers.discard(worker)
        self._disarm(worker)

    @staticmethod
    def _disarm(worker: _Worker) -> None:
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None

    async def _work(self, worker: _Worker) -> None:
        """Run ready handlers one at a time until cancelled (or retired by a context change)."""
        loop = asyncio.get_running_loop()
        worker.base = contextvars.copy_context()
        ready = self._ready
        ctx: Context | None = None
        while not self._closing:
            self._waking = False
            while ready and not self._closing:
                route, event, team_id, kwargs = ready.popleft()
                if ready:
                    self._kick()  # should this handler wait, a spare worker takes the next one
                worker.running = True
                worker.deadline = loop.time() + (route.timeout or self._timeout)
                if worker.timer is None or worker.timer_at > worker.deadline:
                    self._arm(loop, worker)
                # The handler is awaited here, not through a helper coroutine: one coroutine
                # fewer per run (a handler that ends at once costs about 3 us in all).
                started = time.perf_counter()
                outcome = "ok"
                try:
                    ctx = self._make_context(event, team_id, route.plugin)
                    await route.fn(ctx, **kwargs)
                except asyncio.CancelledError:
                    if not self._timed_out(worker):  # a cancellation from outside (drain) is passed on
                        outcome = "cancelled"
                        self._log(route, event, team_id).warning("handler.cancelled")
                        raise
                    outcome = self._timeout_of(route, event, team_id)
                except Exception as exc:
                    if isinstance(exc, TimeoutError) and self._timed_out(worker):
                        outcome = self._timeout_of(route, event, team_id)
                    else:  # including a TimeoutError of the handler's own making
                        outcome = "error"
                        self._failed += 1
                        self._log(route, event, team_id).exception("handler.failed")
                finally:
                    if worker.expired:
                        self._timed_out(worker)  # a deadline the handler swallowed: no pending cancel
                    worker.running = False
                    self._ended()
                    if self._observer is not None:
                        self._observer(route, time.perf_counter() - started, outcome)
                ctx = None  # (a resting worker must not keep the last handler's context alive)
                if contextvars.copy_context() != worker.base:
                    return  # the handler left a context variable set: start the next one clean
            if self._closed():
                return  # a handler that swallowed close()'s cancellation ends its worker here
            worker.wake = loop.create_future()
            self._resting.append(worker)
            try:
                await worker.wake
            finally:
                worker.wake = None
                with contextlib.suppress(ValueError):
                    self._resting.remove(worker)

    def _closed(self) -> bool:
        return self._closing  # (a method: a handler run in between may have set it)

    def _arm(self, loop: asyncio.AbstractEventLoop, worker: _Worker) -> None:
        if worker.timer is not None:
            worker.timer.cancel()
        worker.timer_at = worker.deadline
        worker.timer = loop.call_at(worker.deadline, self._expire, loop, worker)

    def _expire(self, loop: asyncio.AbstractEventLoop, worker: _Worker) -> None:
        """The worker's timer: cancel its handler if that one is past its deadline, else re-arm.

        One timer per worker, re-armed only when it fires: a handler that ends in time costs no
        timer of its own, and a deadline is never early and at most a timer tick late.
        """
        worker.timer = None
        if not worker.running or worker.task is None:
            return
        if loop.time() >= worker.deadline:
            worker.expired = True
            worker.task.cancel()
        else:
            self._arm(loop, worker)

    def _timed_out(self, worker: _Worker) -> bool:
        """Did the deadline (and nothing else) cancel the worker's handler? Clears the mark."""
        if not worker.expired:
            return False
        worker.expired = False
        return worker.task is not None and worker.task.uncancel() == 0

    def _ended(self) -> None:
        self._active -= 1
        while self._waiting_count and self._active < self._max:
            self._start(self._next_waiting())
        if self.capacity() > 0:
            self._room.set()
        if not self._waiting_count and not self._active:
            self._idle.set()

    def _timeout_of(self, route: Route, event: Event, team_id: str) -> str:
        self._timeouts += 1
        limit = route.timeout or self._timeout
        self._log(route, event, team_id).error("handler.timeout", timeout_s=limit)
        return "timeout"

    @staticmethod
    def _log(route: Route, event: Event, team_id: str) -> FilteringBoundLogger:
        """The handler's context for a log line: bound only when there is something to say
        (binding on every start cost a few microseconds per handler)."""
        return log.bind(
            plugin=route.plugin, handler=route.name, team_id=team_id, channel=event.channel, ts=event.ts
        )

    def capacity(self) -> int:
        """How many more handler starts fit: the running bound plus an equal waiting allowance."""
        return 2 * self._max - self._active - self._waiting_count

    async def room(self) -> None:
        """Wait while there is no capacity (the dedup stage's backpressure)."""
        await self._room.wait()

    @property
    def running(self) -> int:
        return self._active

    async def drain(self, timeout: float) -> int:
        """Let handlers finish for up to ``timeout`` s, cancel the rest, stop the workers.

        Returns how many handlers were cancelled (started ones, and ready ones never begun).
        """
        cancelled = 0
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            self._waiting.clear()
            self._waiting_count = 0
            cancelled = len(self._ready) + sum(1 for w in self._workers if w.running)
            self._active -= len(self._ready)
            self._ready.clear()
        await self.close()
        return cancelled

    async def close(self) -> None:
        """Cancel every worker (and the handler it runs) and wait for them to end.

        Cancelled again until they do (a handler may swallow one cancellation), for at most 5 s;
        one still running then is named in ``shutdown.tasks_stuck``.
        """
        self._closing = True
        try:
            tasks = [w.task for w in self._workers if w.task is not None]
            for worker in self._workers:
                self._disarm(worker)  # before cancelling: a deadline must not claim a drained handler
            await cancel_and_wait(tasks)
        finally:
            self._resting.clear()
            self._waking = False
            self._closing = False
