"""structlog set-up: JSON lines off a terminal, readable on one, secrets always redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

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


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask Slack tokens, URL passwords and registered secrets in every key and value."""
    return {redact(str(k)): _redact_value(v) for k, v in event_dict.items()}


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at write time (it may be swapped, e.g. by pytest)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def configure(level: str = "info", *, stream: TextIO | None = None, json: bool | None = None) -> None:
    """Configure structlog once per process.

    ``json`` defaults to "stream is not a terminal". Exceptions are formatted to text *before*
    redaction so that a token inside an exception message never reaches the output.
    """
    as_json = not (stream or sys.stdout).isatty() if json is None else json
    out: Any = stream if stream is not None else _CurrentStdout()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
