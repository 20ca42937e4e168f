"""The simulator delivers over HTTP as Slack does (platform-2026.md, "Events API over HTTP").

A tiny aiohttp receiver stands for the app: it records every request and answers as each test
scripts it (200, 500, too late, ``X-Slack-No-Retry``). Slack's clock runs 100x faster here
(``time_scale=100``: the retries come about at once, after 0.6 s and after 3 s).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from gridtest import SHARED, serving, wait_until
from slack_sdk.signature import SignatureVerifier

from gridbot.testing import GridSimulator
from gridbot.testing.simulator import HttpPolicy, RequestUrlRefused, form_body

APP = "A0GRIDBOT1"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ALICE = "W0ALICE01"


@dataclass
class Seen:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict[str, Any]:
        data = orjson.loads(self.body)
        assert isinstance(data, dict)
        return data


@dataclass
class Receiver:
    """An app's request URL. ``script`` answers each request (its index, the request); the
    default echoes challenges and acks everything."""

    seen: list[Seen] = field(default_factory=list)
    script: Callable[[int, Seen], web.Response | float] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        seen = Seen(dict(request.headers), await request.read(), time.monotonic())
        self.seen.append(seen)
        if request.content_type == "application/json" and seen.json.get("type") == "url_verification":
            return web.json_response({"challenge": seen.json["challenge"]})
        answer = self.script(len(self.events) - 1, seen) if self.script else web.Response()
        if isinstance(answer, float):  # answer 200, that many seconds later
            await asyncio.sleep(answer)  # the receiver's slowness is what is under test
            return web.Response()
        return answer

    @property
    def events(self) -> list[Seen]:
        return [s for s in self.seen if b'"url_verification"' not in s.body]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/slack/events", rec.handle)
    async with serving(app) as base:
        yield rec, base + "/slack/events"


def fast(**policy: object) -> dict[str, object]:
    return {"time_scale": 100.0, "http": HttpPolicy(**policy)}  # type: ignore[arg-type]


SCALED = pytest.mark.parametrize("sim", [fast(ack_deadline=0.3)], indirect=True, ids=["x100"])


@SCALED
async def test_a_message_is_posted_once_per_app_signed_as_slack_signs(
    sim: GridSimulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    await sim.http.subscribe(APP, url, SECRET)
    assert [s.json["type"] for s in rec.seen] == ["url_verification"]  # the URL was verified first
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="hello over http")
    await wait_until(lambda: sim.http.counts(APP).acks == 2, 5, "the event acked")
    [seen] = rec.events  # the app is installed on two teams in the channel: one delivery
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(seen.body, seen.headers)
    assert not SignatureVerifier("another-secret-0123456789abcdef").is_valid_request(seen.body, seen.headers)
    assert seen.headers["Content-Type"] == "application/json"
    assert abs(int(seen.headers["X-Slack-Request-Timestamp"]) - time.time()) < 5
    assert "X-Slack-Retry-Num" not in seen.headers
    payload = seen.json
    assert payload["type"] == "event_callback" and payload["api_app_id"] == APP
    assert payload["team_id"] == payload["context_team_id"] == "T0TEAM001"  # Alice's team: the source
    assert str(payload["event_id"]).startswith("Ev") and isinstance(payload["event_time"], int)
    assert payload["event"]["ts"] == ts and payload["event"]["text"] == "hello over http"
    [auth] = payload["authorizations"]
    assert auth["team_id"] in ("T0TEAM001", "T0TEAM002") and auth["is_bot"] is True
    assert {"token", "is_ext_shared_channel", "event_context", "enterprise_id"} <= set(payload)
    assert sim.envelopes_sent == []  # Socket Mode is off for an app with a request URL
    counts = sim.http.counts(APP).as_dict()
    assert {k: v for k, v in counts.items() if v} == {"deliveries": 2, "attempts": 2, "acks": 2}


@SCALED
async def test_a_500_is_retried_on_the_scaled_schedule_with_slacks_headers_until_acked(
    sim: GridSimulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.script = lambda n, _: web.Response(status=500 if n < 2 else 200)
    await sim.http.subscribe(APP, url, SECRET)
    await sim.post_message(user=ALICE, channel=SHARED, text="retry me")
    await wait_until(lambda: len(rec.events) == 3, 10, "two retries")
    first, second, third = rec.events
    assert [s.headers.get("X-Slack-Retry-Num") for s in rec.events] == [None, "1", "2"]
    assert [s.headers.get("X-Slack-Retry-Reason") for s in rec.events] == [None, "http_error", "http_error"]
    assert first.json["event_id"] == second.json["event_id"] == third.json["event_id"]
    assert second.at - first.at < 0.3  # "about immediately"
    assert 0.55 <= third.at - second.at < 1.5  # "after 1 min", 100x faster
    assert all(SignatureVerifier(SECRET).is_valid_request(s.body, s.headers) for s in rec.events)
    await wait_until(lambda: sim.http.counts(APP).acks == 2, 5, "the third attempt acked")
    [delivery] = [d for d in sim.http.deliveries if d.kind == "event_callback"]
    assert delivery.outcome == "acked" and delivery.retries == 2
    c = sim.http.counts(APP)
    assert (c.deliveries, c.attempts, c.non_2xx, c.retries, c.gave_up) == (2, 4, 2, 2, 0)
    # the ack stopped the retries: a later event's delivery is the next request
    await sim.post_message(user=ALICE, channel=SHARED, text="marker")
    await wait_until(lambda: len(rec.events) == 4, 5, "the marker")
    assert rec.events[3].json["event"]["text"] == "marker"


@SCALED
async def test_an_answer_after_the_deadline_is_a_timeout_retried_and_counted_late(
    sim: GridSimulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.script = lambda n, _: 0.6 if n == 0 else web.Response()
    await sim.http.subscribe(APP, url, SECRET)
    await sim.post_message(user=ALICE, channel=SHARED, text="slow")
    await wait_until(lambda: sim.http.counts(APP).late_acks == 1, 5, "the late answer")
    assert [s.headers.get("X-Slack-Retry-Reason") for s in rec.events] == [None, "http_timeout"]
    c = sim.http.counts(APP)
    assert (c.timeouts, c.late_acks, c.acks, c.retries) == (1, 1, 2, 1)  # (acks: the verification too)
    [first, retry] = [a for a in sim.http.attempts if a.event_id]
    assert (first.result, first.status, retry.result) == ("http_timeout", None, "ack")
    assert 0.3 <= first.seconds < 0.5


@SCALED
async def test_an_answer_lost_on_the_way_is_a_timeout_to_slack(
    sim: GridSimulator, receiver: tuple[Receiver, str]
) -> None:
    """``lose_answers``: the app answered 200 but Slack never saw it; it waits out its deadline
    and retries the same event_id (``http_timeout``)."""
    rec, url = receiver
    await sim.http.subscribe(APP, url, SECRET)
    sim.http.lose_answers(APP, times=1)
    await sim.post_message(user=ALICE, channel=SHARED, text="lost ack")
    await wait_until(lambda: len(rec.events) == 2 and sim.http.in_flight == 0, 5, "the retry acked")
    first, retry = rec.events
    assert first.json["event_id"] == retry.json["event_id"]
    assert retry.headers["X-Slack-Retry-Reason"] == "http_timeout" and retry.at - first.at >= 0.3
    c = sim.http.counts(APP)
    assert (c.timeouts, c.late_acks, c.acks) == (1, 0, 2)  # (acks: the verification too)


@SCALED
async def test_no_retry_header_on_an_error_stops_the_retries(
    sim: GridSimulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.script = lambda n, _: web.Response(status=503, headers={"X-Slack-No-Retry": "1"} if n == 0 else {})
    await sim.http.subscribe(APP, url, SECRET)
    await sim.post_message(user=ALICE, channel=SHARED, text="do not retry")
    await sim.post_message(user=ALICE, channel=SHARED, text="then this one")
    await wait_until(lambda: sim.http.counts(APP).gave_up == 1, 10, "the second one given up")
    texts = [s.json["event"]["text"] for s in rec.events]
    assert texts == ["do not retry", *["then this one"] * 4]  # one attempt; one and 3 retries
    gaps = [b.at - a.at for a, b in zip(rec.events[1:], rec.events[2:], strict=False)]
    assert gaps[0] < 0.3 and 0.55 <= gaps[1] < 1.5 and 2.95 <= gaps[2] < 4.5  # at once, 1 min, 5 min
    c = sim.http.counts(APP)
    assert (c.no_retry, c.gave_up, c.non_2xx) == (1, 1, 5)


@SCALED
async def test_an_unreachable_url_is_retried_as_connection_failed(sim: GridSimulator) -> None:
    await sim.http.subscribe(APP, "http://127.0.0.1:9/slack/events", SECRET, verify=False)
    await sim.post_message(user=ALICE, channel=SHARED, text="nobody home")
    await wait_until(lambda: sim.http.counts(APP).gave_up == 1, 10, "given up")
    assert [a.retry_reason for a in sim.http.attempts] == [None, *["connection_failed"] * 3]
    assert sim.http.counts(APP).connection_failures == 4


@SCALED
async def test_a_url_that_does_not_echo_the_challenge_is_not_saved(sim: GridSimulator) -> None:
    """A 200 is not enough: the answer must carry the challenge (a 404 fails as well)."""

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/ok", ok)
    async with serving(app) as base:
        for path in ("/ok", "/missing"):
            with pytest.raises(RequestUrlRefused):
                await sim.http.subscribe(APP, base + path, SECRET)
    assert not sim.http.subscribed(APP)
    assert [d.attempts[0].status for d in sim.http.deliveries] == [200, 404]


@pytest.mark.parametrize("sim", [fast(ack_deadline=0.3, disable_min_attempts=8)], indirect=True)
async def test_sustained_failure_disables_the_subscription_until_it_is_enabled_again(
    sim: GridSimulator, receiver: tuple[Receiver, str]
) -> None:
    """Fewer than 5 % of the deliveries in the (scaled) hour succeed: the app's events stop, its
    owners are told; enabled again (after a new url_verification), they flow."""
    rec, url = receiver
    failing = True
    rec.script = lambda _n, _s: web.Response(status=500 if failing else 200)
    await sim.http.subscribe(APP, url, SECRET)
    for n in range(3):
        await sim.post_message(user=ALICE, channel=SHARED, text=f"failing {n}")
    await wait_until(lambda: sim.http.is_disabled(APP), 10, "the subscription disabled")
    [notice] = list(sim.http.notices)
    assert (notice.kind, notice.detail[:4]) == ("subscription_disabled", "0.0%")  # 0 of 8 attempts
    await wait_until(lambda: sim.http.in_flight == 0, 10, "retries withdrawn")
    sent = len(rec.events)
    assert sim.http.counts(APP).withdrawn >= 1
    await sim.post_message(user=ALICE, channel=SHARED, text="while disabled")
    assert sim.http.counts(APP).dropped == 1 and len(rec.events) == sent
    failing = False
    await sim.http.enable(APP)
    await sim.post_message(user=ALICE, channel=SHARED, text="back")
    await wait_until(lambda: rec.events[-1].json["event"]["text"] == "back", 5, "delivered again")


@pytest.mark.parametrize("sim", [fast(events_per_hour=2)], indirect=True)
async def test_over_the_hourly_budget_events_stop_and_app_rate_limited_is_sent(
    sim: GridSimulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    await sim.http.subscribe(APP, url, SECRET)
    for n in range(4):
        await sim.post_message(user=ALICE, channel="C0ONE0001", text=f"m{n}")  # Team One's bot only
    await wait_until(lambda: len(rec.events) == 3, 5, "two events and one notice")
    kinds = [s.json["type"] for s in rec.events]
    assert sorted(kinds) == ["app_rate_limited", "event_callback", "event_callback"]
    [notice] = [s.json for s in rec.events if s.json["type"] == "app_rate_limited"]
    assert (notice["api_app_id"], notice["team_id"]) == (APP, "T0TEAM001")
    minute = notice["minute_rate_limited"]
    assert isinstance(minute, int) and minute % 60 == 0 and 0 <= time.time() - minute < 120
    assert sim.http.counts(APP).rate_limited == 2
    assert [n.kind for n in sim.http.notices] == ["app_rate_limited"]  # once a (scaled) minute


@SCALED
async def test_lifecycle_and_membership_events_go_to_the_request_url(
    sim: GridSimulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    await sim.http.subscribe(APP, url, SECRET)
    await sim.send_event({"type": "team_join", "user": {"id": "W0NEW0001"}}, team="T0TEAM001")
    await sim.uninstall(APP, "T0TEAM002")
    await wait_until(lambda: len(rec.events) == 3, 5, "three events")
    types = [s.json["event"]["type"] for s in rec.events]
    assert types == ["team_join", "app_uninstalled", "tokens_revoked"]
    assert [s.json["authorizations"][0]["team_id"] for s in rec.events] == [
        "T0TEAM001",
        "T0TEAM002",
        "T0TEAM002",
    ]


@SCALED
async def test_any_signed_body_can_be_posted_through_the_same_machinery(
    sim: GridSimulator, receiver: tuple[Receiver, str]
) -> None:
    """For interactive payloads: form-encoded ``payload=``, one attempt (Slack does not retry
    them), the answer's body returned."""
    rec, url = receiver
    await sim.http.subscribe(APP, url, SECRET)
    rec.script = lambda _n, _s: web.json_response({"response_action": "clear"}, status=200)
    action = {"type": "block_actions", "team": {"id": "T0TEAM001"}}
    delivery = await sim.http.deliver(
        APP, form_body({"payload": json.dumps(action)}), content_type="application/x-www-form-urlencoded",
        retries=False,
    )  # fmt: skip
    assert delivery.acked and orjson.loads(delivery.answer) == {"response_action": "clear"}
    [seen] = rec.events
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert SignatureVerifier(SECRET).is_valid_request(seen.body, seen.headers)
    fields = urllib.parse.parse_qs(seen.body.decode())
    assert json.loads(fields["payload"][0]) == action
    rec.script = lambda _n, _s: web.Response(status=500)
    failed = await sim.http.deliver(APP, {"type": "view_submission"}, retries=False)
    assert failed.outcome == "gave_up" and failed.retries == 0
