"""The playground's window on the runtime: a structlog processor that copies chosen log events.

The runtime says what it decides in its log: ``event.decided`` (debug, one per delivery),
``election.decided`` and ``election.moved``, ``team.state``, ``store.unavailable`` and so on,
each with stable keys. The playground reads those lines instead of hooking into the event path:
:class:`LogTap` turns debug logging on (the decider logs its decisions only when debug is
enabled), copies the events it watches to a callback, and then drops every line below the level
the user asked for, so the terminal shows what it would have shown without the playground.

Only the keys in :data:`KEYS` are copied, and every string passes through
:func:`gridbot.secrets.redact`: what reaches the page never carries a token.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from gridbot.secrets import redact

#: The log events the page shows, by name.
WATCHED = frozenset(
    {
        "event.decided",
        "election.decided",
        "election.moved",
        "team.state",
        "team.paused",
        "link.connected",
        "link.connect_failed",
        "link.stale",
        "link.stopped",
        "store.unavailable",
        "store.recovered",
        "plugin.loaded",
        "plugin.load_failed",
        "handler.failed",
        "handler.timeout",
        "frame.dropped",
        "dedup.backpressure",
    }
)

#: The keys copied from a watched event (the README's stable keys and a few event-specific ones).
KEYS = (
    "team_id",
    "channel",
    "ts",
    "type",
    "decision",
    "handled_by",
    "responsible",
    "previous",
    "epoch",
    "candidates",
    "host",
    "state",
    "error",
    "reason",
    "plugin",
    "handler",
    "handlers",
    "link",
    "reconnects",
    "retry_in",
    "timeout_s",
    "buffered",
)

Sink = Callable[[str, str, dict[str, Any]], None]  # (event name, level, fields)

_LEVELS = logging.getLevelNamesMapping()


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)[:300]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in list(value)[:20]]
    return redact(repr(value))[:300]


def _exception(value: Any) -> str | None:
    """``Type: message`` of the exception a line was logged with (``.exception()`` or exc_info)."""
    exc: BaseException | None = None
    if isinstance(value, BaseException):
        exc = value
    elif value is True:
        exc = sys.exc_info()[1]
    elif isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        exc = value[1]
    if exc is None:
        return None
    return redact(f"{type(exc).__name__}: {exc}")[:300]


class LogTap:
    """Copy watched log events to ``sink``; show the user only lines at ``level`` and above.

    ``install()`` reconfigures structlog around the current processors and ``remove()`` puts the
    previous configuration back. Events logged from another thread are handed to the loop that
    installed the tap.
    """

    def __init__(self, sink: Sink, level: str = "info") -> None:
        self._sink = sink
        self._floor = _LEVELS[level.upper()]
        self._saved: dict[str, Any] | None = None
        self._thread = threading.get_ident()
        self._call_soon: Callable[..., Any] | None = None

    def install(self) -> None:
        if self._saved is not None:
            return
        try:
            self._call_soon = asyncio.get_running_loop().call_soon_threadsafe
        except RuntimeError:
            self._call_soon = None
        self._thread = threading.get_ident()
        saved = structlog.get_config()
        self._saved = saved
        processors = list(saved["processors"])
        # After merge_contextvars (values bound per team), before anything renders or redacts.
        at = 1 if processors and processors[0] is structlog.contextvars.merge_contextvars else 0
        processors[at:at] = [self._observe, self._gate]
        structlog.configure(
            processors=processors,
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        )

    def remove(self) -> None:
        if self._saved is not None:
            structlog.configure(**self._saved)
            self._saved = None

    def _observe(self, _logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        name = event_dict.get("event")
        if name in WATCHED:
            try:
                fields = {k: _clean(event_dict[k]) for k in KEYS if k in event_dict}
                error = _exception(event_dict.get("exc_info"))
                if error is not None:
                    fields["exception"] = error
                level = "error" if method == "exception" else method
                if threading.get_ident() == self._thread or self._call_soon is None:
                    self._sink(str(name), level, fields)
                else:
                    self._call_soon(self._sink, str(name), level, fields)
            except Exception:  # the page may miss a line; the runtime must never notice the tap
                pass
        return event_dict

    def _gate(self, _logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        level = _LEVELS.get("ERROR" if method == "exception" else method.upper(), logging.INFO)
        if level < self._floor:
            raise structlog.DropEvent
        return event_dict
