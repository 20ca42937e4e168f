"""structlog set-up: JSON lines off a terminal, readable on one, secrets always redacted."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from gridbot.secrets import redact

LEVELS = ("debug", "info", "warning", "error", "critical")


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    # Anything else is rendered to text first, so a token hiding in a repr is caught too.
    return redact(repr(value))


_SCALARS = frozenset({int, float, bool, type(None)})


def _flat_text(event_dict: MutableMapping[str, Any]) -> str | None:
    """Every key and value of a flat event (strings, numbers, lists of them) in one string, or
    None for anything else (nested tables, objects: they take the item-by-item path)."""
    parts: list[str] = []
    append = parts.append
    for key, value in event_dict.items():
        append(key)
        if isinstance(value, str):
            append(value)
        elif type(value) in _SCALARS:
            continue
        elif type(value) is list or type(value) is tuple:
            for item in value:
                if isinstance(item, str):
                    append(item)
                elif type(item) not in _SCALARS:
                    return None
        else:
            return None
    try:
        return "\x00".join(parts)
    except TypeError:  # a key that is not a string
        return None


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask Slack tokens, URL passwords and registered secrets in every key and value.

    A flat event whose keys and values hold nothing to mask, the common case, is checked with one
    pass over all of them together and passed on as it is: masking each of its twenty-odd strings
    on its own cost about 25 us a line, more than the rest of the line (measured; README,
    "Performance"). Whatever a value holds, it appears verbatim in the joined text, so anything
    one item would have masked is found there too.
    """
    text = _flat_text(event_dict)
    if text is not None and redact(text) == text:
        return event_dict
    return {redact(str(k)): _redact_value(v) for k, v in event_dict.items()}


def _json(value: Any, **_: Any) -> str:
    """The JSON line: orjson, a few microseconds less per line than json.dumps. What it cannot
    encode (an integer beyond 64 bits) goes to json.dumps; objects were made text by the
    redaction processor already."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str)


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at write time (it may be swapped, e.g. by pytest)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_generation = 0  # configure() calls so far: a HotLogger binds again after each
_second, _prefix = -1, ""  # the last second stamped, and its text up to the seconds


def _now_iso() -> str:
    """Now in UTC as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it
    (``datetime.now(timezone.utc).isoformat()`` with ``Z`` for ``+00:00``; no fraction at a
    whole second), with the date and time formatted once per second: a third of its cost."""
    global _second, _prefix
    now = time.time()
    second = int(now)
    micro = int((now - second) * 1e6)  # truncated, as datetime.now() does
    if second != _second:
        _second, _prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_prefix}.{micro:06d}Z" if micro else f"{_prefix}Z"


def _stamp(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict["timestamp"] = _now_iso()
    return event_dict


class _Pipeline:
    """What :func:`configure` installed, when it renders JSON: :meth:`HotLogger.info` writes the
    same line itself while structlog still runs these ``processors``."""

    __slots__ = ("flushing", "level", "out", "processors")

    def __init__(self, level: int, out: Any, processors: list[Any]) -> None:
        self.level, self.out, self.processors = level, out, processors
        self.flushing = False  # a flush is scheduled for the end of this loop turn

    def flush(self) -> None:
        self.flushing = False
        self.out.flush()


_pipeline: _Pipeline | None = None


def configure(level: str = "info", *, stream: TextIO | None = None, json: bool | None = None) -> None:
    """Configure structlog once per process.

    ``json`` defaults to "stream is not a terminal". Exceptions are formatted to text *before*
    redaction so that a token inside an exception message never reaches the output.
    """
    as_json = not (stream or sys.stdout).isatty() if json is None else json
    out: Any = stream if stream is not None else _CurrentStdout()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _stamp,
        structlog.processors.format_exc_info,
        redact_processor,
        renderer,
    ]
    number = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    global _generation, _pipeline
    _generation += 1
    _pipeline = _Pipeline(number, out, processors) if as_json else None


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


class HotLogger:
    """A logger for a line written per event: bound once per :func:`configure`, not per call.

    A module's ``get_logger`` logger binds itself again on every call (loggers are not cached,
    so that a new configuration applies to them at once); that cost about 7 us a line, more than
    half of the ``event.handled`` line (measured with ``python -m bench.handled_line``).
    """

    __slots__ = ("_bound", "_generation", "_name", "_processors")

    def __init__(self, name: str) -> None:
        self._name = name
        self._generation = -1
        self._processors: object = None
        self._bound: structlog.typing.FilteringBoundLogger | None = None

    @property
    def bound(self) -> structlog.typing.FilteringBoundLogger:
        # A bound logger keeps the processors of its day: bind again after configure() and after
        # anyone else reconfigures structlog (the playground's tap, a test capturing logs).
        processors = structlog.get_config()["processors"]
        if self._bound is None or self._generation != _generation or self._processors is not processors:
            self._bound = get_logger(self._name).bind()
            self._generation = _generation
            self._processors = processors
        return self._bound

    def info(self, event: str, fields: dict[str, Any]) -> None:
        """One info line of ``fields`` (a dict of its own: it becomes the line). Under
        :func:`configure`'s JSON pipeline the line is rendered here, exactly as the processors
        would render it (context variables, level, timestamp, redaction, orjson), without
        structlog's wrapper and processor calls, and the lines written in one loop turn reach
        the stream with one flush at the start of the next turn, not one each (a write to a
        pipe wakes its reader every time): the ``event.handled`` line went from 8.5 to ~4 us
        (``python -m bench.handled_line``). Any other configuration (the console renderer, a
        test capturing logs) takes structlog's own path, a line and a flush at a time."""
        pipeline = _pipeline
        if pipeline is None or structlog.get_config()["processors"] is not pipeline.processors:
            self.bound.info(event, **fields)
            return
        if pipeline.level > logging.INFO:
            return
        fields["event"] = event
        for key, value in structlog.contextvars.get_contextvars().items():
            fields.setdefault(key, value)
        fields["level"] = "info"
        fields["timestamp"] = _now_iso()
        pipeline.out.write(_json(redact_processor(None, "info", fields)) + "\n")
        if not pipeline.flushing:  # one flush (one write to the log) for the lines of a loop turn
            pipeline.flushing = True
            try:
                asyncio.get_running_loop().call_soon(pipeline.flush)
            except RuntimeError:  # no loop running: now
                pipeline.flush()
