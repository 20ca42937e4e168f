"""Slack's rules for the Events API over HTTP, as numbers and records the delivery follows.

Every number is platform-2026.md, "Events API over HTTP" (the Events API docs it cites), except
``disable_min_attempts`` (marked [infer] there: the reference gives a rate and a window, and a
rate needs some attempts to mean anything). Slack's durations (retry delays, the hour windows,
the minute between ``app_rate_limited`` notices) run ``time_scale`` times faster, like the
simulator's other clocks; the ack deadline is the receiver's real time and is not scaled.
"""

from __future__ import annotations

import urllib.parse
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class HttpPolicy:
    """How the simulator delivers over HTTP. The defaults are Slack's."""

    #: "Ack: HTTP 2xx within 3 s" (real seconds).
    ack_deadline: float = 3.0
    #: "retries up to 3 times (about immediately, after 1 min, after 5 min)": the wait before each
    #: retry, after the attempt before it failed (Slack seconds).
    retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0)
    #: "More than 30,000 events per workspace per app per hour: ``app_rate_limited`` event".
    events_per_hour: int = 30_000
    #: "Subscriptions are disabled when fewer than 5 % of deliveries succeed over 60 minutes".
    disable_below: float = 0.05
    disable_window: float = 3600.0
    #: [infer] attempts in the window before the rate is judged at all.
    disable_min_attempts: int = 20
    #: ``app_rate_limited`` carries ``minute_rate_limited``: one notice per workspace per minute.
    notice_every: float = 60.0

    def __post_init__(self) -> None:
        if self.ack_deadline <= 0:
            raise ValueError("ack_deadline must be positive")
        if any(d < 0 for d in self.retry_delays):
            raise ValueError("retry_delays must not be negative")
        if self.events_per_hour < 1 or self.disable_min_attempts < 1:
            raise ValueError("events_per_hour and disable_min_attempts must be at least 1")
        if not 0.0 <= self.disable_below <= 1.0:
            raise ValueError("disable_below is a fraction between 0 and 1")


@dataclass
class HttpCounts:
    """One app's deliveries, counted without limit.

    ``acks`` are 2xx answers within the deadline; ``late_acks`` 2xx answers after it (Slack has
    already counted a timeout and retries); ``timeouts`` attempts with no answer by the deadline
    (late or never); ``non_2xx`` answers in time that were not 2xx; ``connection_failures``
    attempts that reached no server. Of the deliveries: ``gave_up`` ran out of retries,
    ``no_retry`` were stopped by ``X-Slack-No-Retry``, ``withdrawn`` stopped because the
    subscription was disabled or the installation went away. Events never sent: ``dropped``
    (subscription disabled) and ``rate_limited`` (over ``events_per_hour``).
    """

    deliveries: int = 0
    attempts: int = 0
    acks: int = 0
    late_acks: int = 0
    timeouts: int = 0
    non_2xx: int = 0
    connection_failures: int = 0
    retries: int = 0
    gave_up: int = 0
    no_retry: int = 0
    withdrawn: int = 0
    dropped: int = 0
    rate_limited: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class HttpAttempt:
    """One POST. ``result``: ``ack``, ``http_timeout``, ``http_error`` or ``connection_failed``
    (the last three are what the next retry's ``X-Slack-Retry-Reason`` says)."""

    app_id: str
    event_id: str | None
    number: int  # 0, then X-Slack-Retry-Num
    retry_reason: str | None  # the X-Slack-Retry-Reason this attempt carried
    status: int | None  # None: no answer by the deadline, or no connection
    seconds: float
    result: str
    time: float

    @property
    def acked(self) -> bool:
        return self.result == "ack"


@dataclass
class HttpDelivery:
    """One body's attempts until acked or given up. ``outcome`` is None while in flight, then
    ``acked``, ``gave_up``, ``no_retry`` or ``withdrawn``; ``answer`` is the acking response's body."""

    app_id: str
    event_id: str | None
    kind: str
    ts: str | None = None  # the event's ts (or event_ts), to find a message's delivery
    attempts: list[HttpAttempt] = field(default_factory=list)
    answer: bytes = b""
    outcome: str | None = None

    @property
    def acked(self) -> bool:
        return self.outcome == "acked"

    @property
    def retries(self) -> int:
        return max(len(self.attempts) - 1, 0)


@dataclass(frozen=True)
class HttpNotice:
    """What Slack did about an app: ``subscription_disabled`` (its events stopped) or
    ``app_rate_limited`` (an event sent to the request URL)."""

    app_id: str
    kind: str
    team_id: str | None
    detail: str
    time: float


class SuccessWindow:
    """Attempts and their success over the last ``window`` seconds, for the disable rule."""

    def __init__(self, window: float, below: float, min_attempts: int) -> None:
        self._window = window
        self._below = below
        self._min = min_attempts
        self._seen: deque[tuple[float, bool]] = deque()
        self._ok = 0

    def add(self, ok: bool, now: float) -> float | None:
        """Record one attempt; returns the success rate when it is now below the bar, else None."""
        self._seen.append((now, ok))
        self._ok += ok
        while self._seen and self._seen[0][0] < now - self._window:
            self._ok -= self._seen.popleft()[1]
        total = len(self._seen)
        rate = self._ok / total
        return rate if total >= self._min and rate < self._below else None


class EventBudget:
    """Events per (app, workspace) over the last hour, and when the last notice went out."""

    def __init__(self, limit: int, window: float, notice_every: float) -> None:
        self._limit = limit
        self._window = window
        self._every = notice_every
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self._noticed: dict[tuple[str, str], float] = {}

    def allow(self, key: tuple[str, str], now: float) -> bool:
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0] < now - self._window:
            sent.popleft()
        if len(sent) >= self._limit:
            return False
        sent.append(now)
        return True

    def notice_due(self, key: tuple[str, str], now: float) -> bool:
        last = self._noticed.get(key)
        if last is not None and now - last < self._every:
            return False
        self._noticed[key] = now
        return True


def form_body(fields: Mapping[str, str]) -> bytes:
    """A form-encoded body, as Slack posts slash commands and ``payload=`` interactions."""
    return urllib.parse.urlencode(fields).encode()


def describe_body(body: Mapping[str, Any] | bytes, content_type: str) -> tuple[str | None, str, str | None]:
    """(event_id, kind, the event's ts) of a body, for the records."""
    if isinstance(body, bytes):
        parsed = None
        if content_type == JSON:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                pass
        if not isinstance(parsed, dict):
            return None, "form" if content_type == FORM else "raw", None
        body = parsed
    event_id, event = body.get("event_id"), body.get("event")
    ts = (event.get("ts") or event.get("event_ts")) if isinstance(event, dict) else None
    return (
        event_id if isinstance(event_id, str) else None,
        str(body.get("type", "raw")),
        ts if isinstance(ts, str) else None,
    )
