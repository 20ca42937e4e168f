"""The Events API over HTTP: each subscribed app's events POSTed to its request URL, as Slack does.

platform-2026.md, "Events API over HTTP" (and no kinder):

* every request is signed: ``X-Slack-Signature: v0=`` + hex HMAC-SHA256 of
  ``v0:{X-Slack-Request-Timestamp}:{raw body}`` with the app's signing secret (slack_sdk's
  ``SignatureVerifier.generate_signature``), a fresh timestamp (wall clock) per attempt;
* "Ack: HTTP 2xx within 3 s. Otherwise Slack retries up to 3 times (about immediately, after
  1 min, after 5 min) with ``X-Slack-Retry-Num`` (1..3) and ``X-Slack-Retry-Reason``
  (``http_timeout``, ..., ``connection_failed``, ..., ``http_error``)"; a late 2xx is no ack;
* "``X-Slack-No-Retry: 1`` on an error answer stops retries of that answer, not of timeouts";
* "``url_verification``: answer the ``challenge`` value": a request URL is saved only once it has
  [infer];
* "More than 30,000 events per workspace per app per hour: ``app_rate_limited`` event" (the
  events over the limit are not sent [infer]);
* "Subscriptions are disabled when fewer than 5 % of deliveries succeed over 60 minutes": the
  app's events stop until re-enabled, and a :class:`HttpNotice` records it (how Slack tells the
  app's owners is not in the reference).

An app subscribed here gets its events over HTTP and not over Socket Mode (an app has one or
the other in its settings). :meth:`HttpHub.deliver` posts any body (an event, or an interactive
payload, form-encoded) through the same signing, retries and counts.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from slack_sdk.signature import SignatureVerifier

from .http_policy import (
    JSON,
    EventBudget,
    HttpAttempt,
    HttpCounts,
    HttpDelivery,
    HttpNotice,
    HttpPolicy,
    SuccessWindow,
    describe_body,
)
from .records import KEEP, Recent

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
#: How long a late answer is still waited for (and counted as a late ack), in real seconds.
LATE_LIMIT = 30.0


@dataclass
class Subscription:
    """An app's request URL and signing secret (never in a repr: it is a secret)."""

    url: str
    signer: SignatureVerifier
    verification_token: str

    def __repr__(self) -> str:
        return f"Subscription(url={self.url!r})"


class RequestUrlRefused(ValueError):
    """The request URL did not answer ``url_verification`` with its challenge: not saved."""


class HttpHub:
    """Subscriptions by app, deliveries in flight, and what was observed."""

    def __init__(
        self,
        policy: HttpPolicy,
        time_scale: float,
        *,
        keep: int = KEEP,
        wanted: Callable[[dict[str, Any]], bool] = lambda _payload: True,
    ) -> None:
        self.policy = policy
        self._scale = time_scale
        self._wanted = wanted
        self._subs: dict[str, Subscription] = {}
        self._disabled: set[str] = set()
        self._counts: dict[str, HttpCounts] = {}
        self._windows: dict[str, SuccessWindow] = {}
        self._budget = EventBudget(
            policy.events_per_hour, 3600.0 / time_scale, policy.notice_every / time_scale
        )
        self.attempts: Recent[HttpAttempt] = Recent(keep)
        self.deliveries: Recent[HttpDelivery] = Recent(keep)
        self.notices: Recent[HttpNotice] = Recent(keep)
        self.in_flight = 0  # deliveries not finished yet
        self.events_submitted = 0  # events from the fan-out sent to a request URL (not retries)
        self._lose: dict[str, int] = {}  # app -> event answers still to lose on the way back
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=LATE_LIMIT))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # subscriptions
    async def subscribe(self, app_id: str, url: str, signing_secret: str, *, verify: bool = True) -> None:
        """Set the app's request URL. Slack sends ``url_verification`` first and saves the URL
        only if the challenge comes back; ``verify=False`` skips that (a receiver under test
        that must fail from its first request)."""
        sub = Subscription(url, SignatureVerifier(signing_secret), "sim-verification-" + app_id)
        if verify:
            await self._verify(app_id, sub)
        self._subs[app_id] = sub
        self._disabled.discard(app_id)
        self._windows.pop(app_id, None)

    def unsubscribe(self, app_id: str) -> None:
        self._subs.pop(app_id, None)

    def subscribed(self, app_id: str) -> bool:
        """Does the app take its events over HTTP (also while its subscription is disabled)?"""
        return app_id in self._subs

    def is_disabled(self, app_id: str) -> bool:
        return app_id in self._disabled

    async def enable(self, app_id: str, *, verify: bool = True) -> None:
        """Turn a disabled subscription back on (the owner's click in the app's settings)."""
        sub = self._subs[app_id]
        if verify:
            await self._verify(app_id, sub)
        self._disabled.discard(app_id)
        self._windows.pop(app_id, None)

    def lose_answers(self, app_id: str, times: int = 1) -> None:
        """A network fault: the app's next ``times`` answers to events never reach Slack, which
        waits out its deadline and retries (``http_timeout``), though the app did answer."""
        self._lose[app_id] = self._lose.get(app_id, 0) + times

    def counts(self, app_id: str) -> HttpCounts:
        return self._counts.setdefault(app_id, HttpCounts())

    async def _verify(self, app_id: str, sub: Subscription) -> None:
        challenge = secrets.token_urlsafe(36)
        body = orjson.dumps(
            {"token": sub.verification_token, "challenge": challenge, "type": "url_verification"}
        )
        delivery = await self._run(app_id, sub, body, JSON, None, "url_verification", None, retries=False)
        answer = delivery.answer
        try:
            parsed = orjson.loads(answer)
        except orjson.JSONDecodeError:
            parsed = None
        echoed = answer == challenge.encode() or (
            isinstance(parsed, dict) and parsed.get("challenge") == challenge
        )
        if not (delivery.acked and echoed):
            raise RequestUrlRefused(f"{sub.url} did not answer the url_verification challenge")

    # delivery
    def submit(self, app_id: str, payload: dict[str, Any]) -> None:
        """An event for the app (from the fan-out): sent in the background, with retries."""
        if app_id in self._disabled:
            self.counts(app_id).dropped += 1
            return
        auths = payload.get("authorizations") or [{}]
        team = str(auths[0].get("team_id") or payload.get("team_id"))
        now = time.monotonic()
        if not self._budget.allow((app_id, team), now):
            self.counts(app_id).rate_limited += 1
            if self._budget.notice_due((app_id, team), now):
                self._rate_limited(app_id, team)
            return
        self.events_submitted += 1
        self._spawn(self.deliver(app_id, payload), f"sim.http.deliver.{payload.get('event_id')}")

    def _rate_limited(self, app_id: str, team: str) -> None:
        minute = int(time.time()) // 60 * 60
        notice = {"token": self._subs[app_id].verification_token, "type": "app_rate_limited",
                  "team_id": team, "minute_rate_limited": minute, "api_app_id": app_id}  # fmt: skip
        self.notices.append(HttpNotice(app_id, "app_rate_limited", team, f"minute {minute}", time.time()))
        self._spawn(self.deliver(app_id, notice), f"sim.http.rate_limited.{app_id}")

    async def deliver(
        self,
        app_id: str,
        body: Mapping[str, Any] | bytes,
        *,
        content_type: str = JSON,
        retries: bool = True,
        url: str | None = None,
    ) -> HttpDelivery:
        """POST ``body`` (a mapping is sent as JSON) to the app's request URL (or ``url``),
        signed, until acked or out of retries (``retries=False``: one attempt, as Slack sends
        interactive payloads); counted and recorded like every event. Returns the delivery,
        whose ``answer`` is the acking response's body."""
        sub = self._subs.get(app_id)
        if sub is None:
            raise ValueError(f"app {app_id!r} has no request URL")
        if url is not None:
            sub = Subscription(url, sub.signer, sub.verification_token)
        data = orjson.dumps(body) if not isinstance(body, bytes) else body
        return await self._run(
            app_id, sub, data, content_type, *describe_body(body, content_type), retries=retries
        )

    async def _run(
        self,
        app_id: str,
        sub: Subscription,
        body: bytes,
        content_type: str,
        event_id: str | None,
        kind: str,
        ts: str | None,
        *,
        retries: bool,
    ) -> HttpDelivery:
        delivery = HttpDelivery(app_id, event_id, kind, ts)
        counts = self.counts(app_id)
        counts.deliveries += 1
        self.deliveries.append(delivery)
        delays = self.policy.retry_delays if retries else ()
        self.in_flight += 1
        try:
            reason: str | None = None
            for number in range(len(delays) + 1):
                if number:
                    await asyncio.sleep(delays[number - 1] / self._scale)
                    if self._withdrawn(app_id, body, content_type):
                        delivery.outcome = "withdrawn"
                        counts.withdrawn += 1
                        return delivery
                attempt, answer, no_retry = await self._attempt(
                    app_id, sub, body, content_type, number, reason, event_id
                )
                delivery.attempts.append(attempt)
                if attempt.acked:
                    delivery.answer, delivery.outcome = answer, "acked"
                    return delivery
                if no_retry:
                    delivery.outcome = "no_retry"
                    counts.no_retry += 1
                    return delivery
                reason = attempt.result
            delivery.outcome = "gave_up"
            counts.gave_up += 1
            return delivery
        finally:
            self.in_flight -= 1

    def _withdrawn(self, app_id: str, body: bytes, content_type: str) -> bool:
        """Retries stop once the subscription is off or the installation went away."""
        if app_id in self._disabled or app_id not in self._subs:
            return True
        if content_type != JSON:
            return False
        payload = orjson.loads(body)
        return (
            isinstance(payload, dict)
            and payload.get("type") == "event_callback"
            and not self._wanted(payload)
        )

    async def _attempt(
        self,
        app_id: str,
        sub: Subscription,
        body: bytes,
        content_type: str,
        number: int,
        reason: str | None,
        event_id: str | None,
    ) -> tuple[HttpAttempt, bytes, bool]:
        ts = str(int(time.time()))
        signature = sub.signer.generate_signature(timestamp=ts, body=body)
        assert signature is not None
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
            "User-Agent": USER_AGENT,
        }
        if number:
            headers["X-Slack-Retry-Num"] = str(number)
            headers["X-Slack-Retry-Reason"] = reason or "unknown_error"
        counts = self.counts(app_id)
        counts.attempts += 1
        counts.retries += number > 0
        started = time.monotonic()
        request = self._spawn(
            self._post(sub.url, body, headers), f"sim.http.post.{app_id}.{event_id}.{number}"
        )
        done, _ = await asyncio.wait({request}, timeout=self.policy.ack_deadline)
        status: int | None = None
        answer, no_retry = b"", False
        if not done:
            result = "http_timeout"
            counts.timeouts += 1
            request.add_done_callback(lambda task: self._late(app_id, task))
        elif request.exception() is not None:
            result = "connection_failed"
            counts.connection_failures += 1
        elif self._lose.get(app_id) and event_id is not None:
            self._lose[app_id] -= 1
            await asyncio.sleep(max(self.policy.ack_deadline - (time.monotonic() - started), 0.0))
            result = "http_timeout"
            counts.timeouts += 1
        else:
            status, answer, no_retry = request.result()
            result = "ack" if 200 <= status < 300 else "http_error"
            if result == "ack":
                counts.acks += 1
            else:
                counts.non_2xx += 1
        seconds = time.monotonic() - started
        attempt = HttpAttempt(
            app_id,
            event_id,
            number,
            headers.get("X-Slack-Retry-Reason"),
            status,
            seconds,
            result,
            time.time(),
        )
        self.attempts.append(attempt)
        self._judge(app_id, attempt.acked)
        return attempt, answer, no_retry and result == "http_error"

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, bool]:
        assert self._session is not None, "the simulator is not started"
        async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            answer = await response.read()
            return response.status, answer, response.headers.get("X-Slack-No-Retry") == "1"

    def _late(self, app_id: str, task: asyncio.Task[tuple[int, bytes, bool]]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        if 200 <= task.result()[0] < 300:
            self.counts(app_id).late_acks += 1

    def _judge(self, app_id: str, ok: bool) -> None:
        """The disable rule, after every attempt."""
        p = self.policy
        window = self._windows.setdefault(
            app_id, SuccessWindow(p.disable_window / self._scale, p.disable_below, p.disable_min_attempts)
        )
        rate = window.add(ok, time.monotonic())
        if rate is not None and app_id not in self._disabled:
            self._disabled.add(app_id)
            detail = f"{rate:.1%} of the deliveries in the last {p.disable_window / 60:.0f} minutes succeeded"
            self.notices.append(HttpNotice(app_id, "subscription_disabled", None, detail, time.time()))

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(_forget(self._tasks))
        return task


def _forget(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failed connection is counted, not an unhandled error

    return done
