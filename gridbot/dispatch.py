"""Routing surviving events to plugin handlers: one owned, named, time-limited task per match.

A handler that raises or hangs is logged with plugin, handler, team, channel and ts and affects
nothing else. A global bound on running handlers turns overload into backpressure on the dedup
stage (:meth:`Dispatcher.room`) instead of an unbounded pile of tasks.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from structlog.typing import FilteringBoundLogger

from gridbot.context import Context
from gridbot.events import Event
from gridbot.logs import get_logger
from gridbot.plugins import Plugin, Route

log = get_logger("gridbot.dispatch")

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
ContextFactory = Callable[[Event, str, str], Context]  # (event, handling team, plugin name)
Observer = Callable[[Route, float, str], None]  # (route, seconds, outcome) for metrics
Waiting = tuple[Route, Event, str, dict[str, Any]]  # (route, event, handling team, arguments)


_DEADLINE_WINDOW = 0.001  # handlers started this close together with one limit share one timer


class _Deadline:
    """One timer for the handlers started within one short window under the same time limit.

    It fires ``limit`` plus at most the window after each of them started: never early, a
    millisecond late at worst, and one timer per window instead of an ``asyncio.timeout`` (a timer
    and a context manager) per handler.
    """

    __slots__ = ("handle", "opened", "tasks")

    def __init__(self, opened: float) -> None:
        self.opened = opened
        self.tasks: set[asyncio.Task[None]] = set()
        self.handle: asyncio.TimerHandle | None = None


@dataclass
class DispatchCounters:
    started: int = 0
    failed: int = 0
    timed_out: int = 0
    match_timeouts: int = 0


def _is_direct(event: Event) -> bool:
    """A one-to-one conversation with the bot: no mention or prefix needed there."""
    return event.raw.get("channel_type") == "im" or (event.channel or "").startswith("D")


def _arguments(route: Route, offered: dict[str, Any]) -> dict[str, Any]:
    """What the handler declared (checked at load): a group that did not take part is left out,
    unless the handler has no default for it."""
    wanted = offered.keys() if route.params is None else route.params
    return {k: v for k, v in offered.items() if k in wanted and (v is not None or k in route.required)}


class Dispatcher:
    def __init__(
        self,
        plugins: list[Plugin],
        make_context: ContextFactory,
        *,
        bot_user_ids: Callable[[], set[str]],
        command_prefix: str = "!",
        max_concurrent: int = 256,
        default_timeout: float = 30.0,
        observer: Observer | None = None,
    ) -> None:
        self.routes = [r for p in plugins for r in p.routes]
        self.counters = DispatchCounters()
        self._make_context = make_context
        self._bot_user_ids = bot_user_ids
        self._prefix = command_prefix
        self._max = max_concurrent
        self._timeout = default_timeout
        self._observer = observer
        self._running: set[asyncio.Task[None]] = set()
        # Handlers waiting for a slot, one queue per conversation served round robin: a flooded
        # channel cannot make a quiet one wait behind its whole backlog.
        self._waiting: OrderedDict[str, deque[Waiting]] = OrderedDict()
        self._waiting_count = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._deadlines: dict[float, _Deadline] = {}  # limit -> the window open for new starts
        self._deadline_of: dict[asyncio.Task[None], _Deadline] = {}
        self._expired: set[asyncio.Task[None]] = set()  # cancelled by their deadline
        self._warn_conflicts()

    # -- routing -------------------------------------------------------------------------------

    def _warn_conflicts(self) -> None:
        seen: dict[str, Route] = {}
        for route in self.routes:
            if route.kind != "command" or route.command is None:
                continue
            first = seen.setdefault(route.command, route)
            if first is not route:
                log.warning(
                    "dispatch.command_conflict",
                    command=route.command,
                    plugins=[first.plugin, route.plugin],
                    handlers=[first.name, route.name],
                )

    def match(self, event: Event) -> list[tuple[Route, dict[str, Any]]]:
        found: list[tuple[Route, dict[str, Any]]] = []
        is_user_message = event.type == "message" and event.subtype in (
            None,
            "thread_broadcast",
            "file_share",
        )
        command = self._command(event) if is_user_message and event.bot_id is None else None
        for route in self.routes:
            if route.kind == "event" and route.event_type == event.type:
                found.append((route, {}))
            elif route.kind == "message" and is_user_message and route.pattern is not None:
                if event.bot_id is not None and not route.include_bots:
                    continue
                groups = self._search(route, event)
                if groups is not None:
                    found.append((route, _arguments(route, groups)))
            elif route.kind == "command" and command is not None and command[0] == route.command:
                found.append((route, _arguments(route, {"args": command[1], "text": command[2]})))
        return found

    def _search(self, route: Route, event: Event) -> dict[str, Any] | None:
        """The pattern's named groups if it matches, within the route's time budget."""
        try:
            m = route.pattern.search(event.text, timeout=route.match_timeout)
        except TimeoutError:
            self.counters.match_timeouts += 1
            log.error(
                "handler.match_timeout",
                plugin=route.plugin,
                handler=route.name,
                team_id=event.team_id,
                channel=event.channel,
                ts=event.ts,
                timeout_s=route.match_timeout,
            )
            return None
        return None if m is None else dict(m.groupdict())

    def _command(self, event: Event) -> tuple[str, list[str], str] | None:
        """(name, words, rest as typed) for ``@bot name ...``, ``<prefix>name ...``, or a DM."""
        text = event.text.strip()
        mention = _MENTION.match(text)
        if mention and mention.group(1) in self._bot_user_ids():
            text = text[mention.end() :].lstrip(" ,:")
        elif self._prefix and text.startswith(self._prefix):
            text = text[len(self._prefix) :]
        elif not _is_direct(event):
            return None
        parts = text.split(maxsplit=1)
        if not parts:
            return None
        rest = parts[1].strip() if len(parts) > 1 else ""
        try:
            words = shlex.split(rest)
        except ValueError:  # an unbalanced quote: fall back to plain words
            words = rest.split()
        return parts[0].lower(), words, rest

    # -- running -------------------------------------------------------------------------------

    def dispatch(self, event: Event, team_id: str, decision: str) -> None:
        for route, kwargs in self.match(event):
            if len(self._running) < self._max:
                self._start(route, event, team_id, kwargs)
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
        """Start one handler outside of event routing (schedules, hooks)."""
        self._start(route, event, team_id, {})

    def _start(self, route: Route, event: Event, team_id: str, kwargs: dict[str, Any]) -> None:
        self.counters.started += 1
        self._idle.clear()
        task = asyncio.create_task(
            self._run(route, event, team_id, kwargs), name=f"handler:{route.plugin}.{route.name}:{event.ts}"
        )
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _arm(self, task: asyncio.Task[None], limit: float) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = self._deadlines.get(limit)
        if deadline is None or now - deadline.opened > _DEADLINE_WINDOW:
            deadline = self._deadlines[limit] = _Deadline(now)
            deadline.handle = loop.call_at(now + _DEADLINE_WINDOW + limit, self._expire, deadline)
        deadline.tasks.add(task)
        self._deadline_of[task] = deadline

    def _expire(self, deadline: _Deadline) -> None:
        for task in deadline.tasks:
            self._expired.add(task)
            task.cancel()
        deadline.tasks.clear()

    def _timed_out(self, task: asyncio.Task[None] | None) -> bool:
        """Did our deadline (and nothing else) cancel ``task``? Clears the mark either way."""
        if task is None or task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        deadline = self._deadline_of.pop(task, None)
        if deadline is not None:
            deadline.tasks.discard(task)
            if not deadline.tasks and deadline.handle is not None:
                # Its handlers all ended: cancel the timer, so asyncio drops it from its heap
                # (thousands of live 30 s timers made garbage collection pauses long).
                deadline.handle.cancel()
                deadline.handle = None
                for limit, open_window in list(self._deadlines.items()):
                    if open_window is deadline:
                        del self._deadlines[limit]
        self._expired.discard(task)
        while self._waiting_count and len(self._running) < self._max:
            self._start(*self._next_waiting())
        if self.capacity() > 0:
            self._room.set()
        if not self._waiting_count and not self._running:
            self._idle.set()

    async def _run(self, route: Route, event: Event, team_id: str, kwargs: dict[str, Any]) -> None:
        started = time.perf_counter()
        outcome = "ok"
        task = asyncio.current_task()
        if task is not None:  # armed once running: a deadline cannot end a task before it began
            self._arm(task, route.timeout or self._timeout)
        try:
            ctx = self._make_context(event, team_id, route.plugin)
            ctx.routes = self.routes
            ctx.command_prefix = self._prefix
            await route.fn(ctx, **kwargs)
        except asyncio.CancelledError:
            if not self._timed_out(task):  # a cancellation from outside (drain) is passed on
                outcome = "cancelled"
                self._log(route, event, team_id).warning("handler.cancelled")
                raise
            outcome = self._timeout_of(route, event, team_id)
        except Exception as exc:
            if isinstance(exc, TimeoutError) and self._timed_out(task):
                outcome = self._timeout_of(route, event, team_id)
            else:  # including a TimeoutError of the handler's own making
                outcome = "error"
                self.counters.failed += 1
                self._log(route, event, team_id).exception("handler.failed")
        finally:
            self._timed_out(task)  # a deadline the handler swallowed leaves no pending cancel
            if self._observer is not None:
                self._observer(route, time.perf_counter() - started, outcome)

    def _timeout_of(self, route: Route, event: Event, team_id: str) -> str:
        self.counters.timed_out += 1
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
        return 2 * self._max - len(self._running) - self._waiting_count

    async def room(self) -> None:
        """Wait while there is no capacity (the dedup stage's backpressure)."""
        await self._room.wait()

    @property
    def running(self) -> int:
        return len(self._running)

    async def drain(self, timeout: float) -> int:
        """Let running handlers finish for up to ``timeout`` s, then cancel the rest. Returns cancelled."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return 0
        except TimeoutError:
            pending = list(self._running)
            self._waiting.clear()
            self._waiting_count = 0
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return len(pending)
