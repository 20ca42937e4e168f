"""Secrets that cannot leak through a repr, a log line or an error message.

Every token and password read from config is wrapped in :class:`Secret` at once. Its value is
registered so that the log redaction processor removes it even where it does not look like a token.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final
from urllib.parse import unquote

# Slack token families (bot, user, app-level, refresh, legacy workspace/admin) and passwords in URLs.
_TOKEN_RE: Final = re.compile(r"\b(xox[abeoprs]|xapp)-[A-Za-z0-9-]+")
_URL_PASSWORD_RE: Final = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]+)@")

_known: set[str] = set()
_known_re: re.Pattern[str] | None = None
_stale = False  # secrets were registered since the pattern was compiled


def register(value: str) -> None:
    """Remember a secret value so that :func:`redact` removes it wherever it appears.

    The pattern is rebuilt on the next :func:`redact`, not here: compiling it once per secret
    made loading a config of 1,000 teams take about 20 s (quadratic in the number of tokens).
    """
    global _stale
    if len(value) >= 6 and value not in _known:
        _known.add(value)
        _stale = True


def forget(value: str) -> None:
    """Stop remembering a rotated Slack token (a replaced bot token, a spent refresh token), so
    that rotation every 12 hours does not grow the registry, and the redaction pattern, forever.

    Only a value the token pattern masks on its own is forgotten: anything else (a password, a
    signing secret) stays registered for the life of the process.
    """
    global _stale
    match = _TOKEN_RE.search(value)
    if match is None or re.search(r"[A-Za-z0-9]{6,}", value[: match.start()] + value[match.end() :]):
        return
    if value in _known:
        _known.discard(value)
        _stale = True


def registered() -> int:
    """How many secret values the redaction knows (bounded under rotation: see :func:`forget`)."""
    return len(_known)


def _pattern() -> re.Pattern[str] | None:
    global _known_re, _stale
    if _stale:
        joined = "|".join(re.escape(v) for v in sorted(_known, key=len, reverse=True))
        _known_re = re.compile(joined) if joined else None
        _stale = False
    return _known_re


def redact(text: str) -> str:
    """Return ``text`` with every Slack token, URL password and registered secret masked.

    Tokens first: a registered secret that is the prefix of another token (``xoxb-1`` and
    ``xoxb-1234-...``) would otherwise mask only that prefix and leave the rest for the token
    pattern to miss.
    """
    # Every token holds "xox" or "xapp", every URL password "://": a substring test skips a regex
    # that costs microseconds on every log line (most lines hold neither).
    if "xox" in text or "xapp" in text:
        text = _TOKEN_RE.sub(lambda m: f"{m.group(1)}-[redacted]", text)
    if "://" in text:
        text = _URL_PASSWORD_RE.sub(lambda m: f"{m['scheme']}{m['user']}:[redacted]@", text)
    known = _pattern()
    if known is not None:
        text = known.sub("[secret]", text)
    return text


class Secret:
    """A string that shows itself only on explicit request (:meth:`get`)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)
        # A URL's password is a secret of its own, even if the whole URL is logged elsewhere;
        # so is its decoded form ("p%40ss" reaches Redis, and any error it echoes, as "p@ss").
        match = _URL_PASSWORD_RE.search(value)
        if match:
            register(match["pw"])
            register(unquote(match["pw"]))

    def get(self) -> str:
        return self._value

    def digest(self) -> str:
        """A stable name for this secret that does not reveal it: 12 hex digits of its SHA-256.

        Connection keys are made of it, and they are parts of Redis keys and the names of
        ownership leases: every process of a deployment, old and new, must compute the same one.
        """
        return hashlib.sha256(self._value.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Secret({redact(self._value)!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
