"""Slack's side of the Events API over HTTP, for tests and the demo: sign, send, retry.

It behaves as platform-2026.md, "Events API over HTTP", describes Slack (and no kinder):

* every request is signed: ``X-Slack-Signature: v0=`` + hex HMAC-SHA256 of
  ``v0:{X-Slack-Request-Timestamp}:{raw body}`` with the app's signing secret, a fresh timestamp
  per attempt;
* a delivery not answered 2xx within 3 s (``timeout``) is retried up to 3 times, about at once,
  after 1 minute and after 5 minutes (``retry_delays``, scaled by ``scale`` so a test runs in
  seconds), with ``X-Slack-Retry-Num`` (1..3) and ``X-Slack-Retry-Reason`` (``http_timeout``,
  ``http_error``, ``connection_failed``); a late answer does not count;
* ``X-Slack-No-Retry: 1`` on an error answer stops the retries of that delivery.

It counts acks, late answers and non-2xx answers per delivery. (It is meant to move into the
simulator, which will deliver its own events this way; until then a test builds the payloads
with :func:`event_callback` and friends.)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

SLACK_TIMEOUT = 3.0  # seconds Slack waits for a 2xx
SLACK_RETRIES = (0.0, 60.0, 300.0)  # about immediately, after 1 minute, after 5 minutes
_ids = itertools.count(1)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def event_callback(
    event: Mapping[str, Any],
    *,
    team_id: str,
    app_id: str = "A0GRIDBOT1",
    enterprise_id: str | None = None,
    event_id: str | None = None,
    source_team: str | None = None,
) -> dict[str, Any]:
    """An ``event_callback`` envelope as Slack posts it: the top-level ``team_id`` is the source
    team, ``authorizations`` holds one installation (``team_id``) (slack-protocol-notes.md, D)."""
    return {
        "token": "legacy-verification-token",
        "team_id": source_team or team_id,
        "enterprise_id": enterprise_id,
        "api_app_id": app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):010d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": "U0BOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event.get('type')}-{team_id}-{event.get('channel')}",
    }


def message(channel: str, user: str, text: str, *, team: str, ts: str | None = None) -> dict[str, Any]:
    """A plain ``message`` event."""
    return {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts or f"{time.time():.6f}",
        "team": team,
        "channel_type": "channel",
    }


@dataclass
class Attempt:
    number: int  # 0 for the first delivery, then X-Slack-Retry-Num
    status: int | None  # None: no answer within the timeout, or no connection
    seconds: float
    reason: str | None = None  # why this attempt failed, as Slack would say it in the next retry


@dataclass
class Delivery:
    """One event's deliveries until one was acknowledged or the retries ran out."""

    event_id: str | None
    attempts: list[Attempt] = field(default_factory=list)
    body: bytes = b""  # the answer to the acknowledged attempt

    @property
    def acked(self) -> bool:
        status = self.attempts[-1].status if self.attempts else None
        return status is not None and 200 <= status < 300

    @property
    def retries(self) -> int:
        return len(self.attempts) - 1


class EventsSender:
    """Posts signed payloads to one request URL, retrying as Slack does."""

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        timeout: float = SLACK_TIMEOUT,
        retry_delays: Sequence[float] = SLACK_RETRIES,
        scale: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.secret = signing_secret
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self.scale = scale
        self.clock = clock
        self.deliveries: list[Delivery] = []
        self.late = 0  # answers that came after the timeout (not acks)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EventsSender:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def non_2xx(self) -> int:
        return sum(1 for d in self.deliveries for a in d.attempts if a.status is not None and a.status >= 300)

    async def deliver(self, payload: Mapping[str, Any]) -> Delivery:
        """Send an Events API payload (JSON) until acknowledged or out of retries."""
        body = orjson.dumps(payload)
        event_id = payload.get("event_id")
        delivery = Delivery(event_id if isinstance(event_id, str) else None)
        self.deliveries.append(delivery)
        reason: str | None = None
        for number in range(len(self.retry_delays) + 1):
            if number:
                await asyncio.sleep(self.retry_delays[number - 1] * self.scale)
            attempt, answer, no_retry = await self._attempt(body, "application/json", number, reason)
            delivery.attempts.append(attempt)
            if attempt.reason is None:
                delivery.body = answer
                break
            if no_retry:
                break
            reason = attempt.reason
        return delivery

    async def send_form(self, fields: Mapping[str, str]) -> tuple[int | None, bytes]:
        """An interactive payload or slash command (form-encoded; Slack does not retry these)."""
        attempt, answer, _ = await self._attempt(
            urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded", 0, None
        )
        return attempt.status, answer

    async def post(
        self,
        body: bytes,
        *,
        content_type: str = "application/json",
        timestamp: str | None = None,
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One raw signed request (tests of refusals: a stale timestamp, another secret ...)."""
        assert self._session is not None, "use `async with EventsSender(...)`"
        ts = timestamp or str(int(self.clock()))
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(secret or self.secret, ts, body),
            **(headers or {}),
        }
        async with self._session.post(self.url, data=body, headers=sent) as response:
            return response.status, await response.read()

    async def _attempt(
        self, body: bytes, content_type: str, number: int, reason: str | None
    ) -> tuple[Attempt, bytes, bool]:
        assert self._session is not None, "use `async with EventsSender(...)`"
        ts = str(int(self.clock()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(self.secret, ts, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if number:
            headers["X-Slack-Retry-Num"] = str(number)
            headers["X-Slack-Retry-Reason"] = reason or "unknown_error"
        started = time.monotonic()
        request = asyncio.ensure_future(self._session.post(self.url, data=body, headers=headers))
        try:
            async with asyncio.timeout(self.timeout):
                response = await asyncio.shield(request)
                answer = await response.read()
        except TimeoutError:
            request.add_done_callback(self._count_late)
            return Attempt(number, None, time.monotonic() - started, "http_timeout"), b"", False
        except aiohttp.ClientError:
            return Attempt(number, None, time.monotonic() - started, "connection_failed"), b"", False
        seconds = time.monotonic() - started
        status = response.status
        failed = None if 200 <= status < 300 else "http_error"
        no_retry = response.headers.get("X-Slack-No-Retry") == "1"
        return Attempt(number, status, seconds, failed), answer, no_retry

    def _count_late(self, request: asyncio.Future[aiohttp.ClientResponse]) -> None:
        if not request.cancelled() and request.exception() is None:
            self.late += 1
            request.result().release()
