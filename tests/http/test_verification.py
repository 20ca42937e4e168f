"""Requests that are not Slack's, or not well-formed, never reach the intake.

Each refusal is answered (401, 408, 411, 413, 415, 431), counted in ``gridbot_events_answers``,
logged once as ``events.refused`` without the body or the secret, and the daemon serves the next
request. Slack's rules (platform-2026.md, "Events API over HTTP"): HMAC-SHA256 of
``v0:timestamp:body``, the timestamp within 5 minutes, compared in constant time (slack_sdk's
``SignatureVerifier`` does the check).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from gridtest import SHARED, T1, log_lines, wait_until
from httpkit import (
    FAST,
    OTHER_SECRET,
    SECRET,
    delivery_of,
    event_callback,
    http_config,
    http_runtime,
    message,
    signed_post,
    subscribe,
)
from slack_sdk.signature import SignatureVerifier

from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator


@pytest.fixture
async def served() -> AsyncIterator[tuple[GridSimulator, Runtime, str]]:
    async with GridSimulator(time_scale=FAST) as sim:
        config = http_config(sim, events={"read_timeout": 0.5, "max_body_bytes": 64 * 1024})
        async with http_runtime(config) as (rt, url):
            await subscribe(sim, url)
            yield sim, rt, url


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature of any bytes (slack_sdk's generator only takes UTF-8 bodies)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _payload(text: str) -> bytes:
    return orjson.dumps(event_callback(message(SHARED, "W0ALICE01", text, team=T1), team_id=T1))


def _received(rt: Runtime) -> int:
    return sum(rt.metrics.events.values())


async def _still_serving(sim: GridSimulator, url: str, text: str) -> None:
    """A genuine delivery after the refusal is handled: the daemon kept serving. (Returns once
    the bot's reply was delivered back to it too, as Slack delivers an app's own messages.)"""
    ts = await sim.post_message(user="W0ALICE01", channel=SHARED, text=f"echo {text}")
    assert (await delivery_of(sim, ts)).acked
    await wait_until(lambda: any(p.text == text for p in sim.posted), 5, "the marker's reply")
    reply = next(p for p in sim.posted if p.text == text)
    assert (await delivery_of(sim, reply.ts)).acked


def _refusals(stream: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stream.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "events.refused"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered body", "bad_signature"),
        ("wrong secret", "bad_signature"),
        ("replayed old timestamp", "stale_timestamp"),
        ("timestamp from the future", "stale_timestamp"),
        ("no signature", "missing_signature"),
        ("timestamp not a number", "stale_timestamp"),
    ],
)
async def test_unverified_requests_get_401_and_never_reach_the_intake(
    served: tuple[GridSimulator, Runtime, str], case: str, reason: str
) -> None:
    sim, rt, url = served
    body = _payload("echo forged")
    now = int(time.time())
    ts, secret, headers = str(now), SECRET, {}
    if case == "tampered body":
        signature = sign(SECRET, ts, body)
        body = body.replace(b"forged", b"FORGED")
        headers = {"X-Slack-Signature": signature}
    elif case == "wrong secret":
        secret = OTHER_SECRET
    elif case == "replayed old timestamp":
        ts = str(now - 6 * 60)  # signed correctly, 6 minutes ago
    elif case == "timestamp from the future":
        ts = str(now + 6 * 60)
    elif case == "no signature":
        headers = {"X-Slack-Signature": ""}
    elif case == "timestamp not a number":
        ts = "1.5e9"
    before = _received(rt)
    with log_lines("info") as logs:
        status, answer = await signed_post(url, body, timestamp=ts, secret=secret, headers=headers)
    assert (status, answer) == (401, b"")
    refused = _refusals(logs.getvalue())
    assert [(r["reason"], r["status"], r["refused_total"]) for r in refused] == [(reason, 401, 1)]
    assert "forged" not in logs.getvalue().lower() and SECRET not in logs.getvalue()
    assert rt.events is not None and rt.events.counts.answers[(401, reason)] == 1
    await _still_serving(sim, url, "after " + case)
    assert _received(rt) == before + 2  # only the genuine delivery (and the bot's reply) was offered
    assert [p.text for p in sim.posted] == ["after " + case]


async def _raw(url: str, data: bytes, *, read: bool = True) -> bytes:
    host, port = url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5) if read else b""
    finally:
        writer.close()


def _signed_head(body_length: int, content_type: str = "application/json", extra: str = "") -> bytes:
    ts = str(int(time.time()))
    return (
        f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {body_length}\r\nX-Slack-Request-Timestamp: {ts}\r\n"
        f"X-Slack-Signature: {sign(SECRET, ts, b'')}\r\n{extra}\r\n"
    ).encode()


async def test_an_oversized_body_is_refused_before_it_is_read(
    served: tuple[GridSimulator, Runtime, str],
) -> None:
    """413 on the declared length alone: the client has sent only the headers."""
    sim, rt, url = served
    answer = await _raw(url, _signed_head(64 * 1024 + 1))
    assert answer.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in answer
    assert rt.events is not None and rt.events.counts.answers[(413, "too_large")] == 1
    await _still_serving(sim, url, "after oversized")


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", b"415"),
        ("multipart/form-data; boundary=x", b"415"),
        ("application/json; charset=utf-8", b"401"),
    ],
)
async def test_a_wrong_content_type_is_refused(
    served: tuple[GridSimulator, Runtime, str], content_type: str, status: bytes
) -> None:
    """Slack posts JSON (events) or a form (interactivity): anything else is 415. A charset
    parameter is fine (this request is then judged by its signature: 401, as its body is b"x")."""
    sim, _, url = served
    answer = await _raw(url, _signed_head(1, content_type) + b"x")
    assert answer.startswith(b"HTTP/1.1 " + status)
    await _still_serving(sim, url, f"after {content_type}")


async def test_a_slow_loris_client_is_cut_off(served: tuple[GridSimulator, Runtime, str]) -> None:
    """Headers trickling in are cut at read_timeout (0.5 s here) after the first byte: 408."""
    sim, rt, url = served
    host, port = url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    answered = asyncio.create_task(reader.read())
    try:
        for byte in b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"x" * 100:
            if answered.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)  # the client's pace (this is what is under test), not a sync
        answer = await asyncio.wait_for(answered, 5)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 3
    assert rt.events is not None and rt.events.counts.answers[(408, "slow_client")] == 1
    await _still_serving(sim, url, "after slow loris")


async def test_a_slow_body_is_cut_off_too(served: tuple[GridSimulator, Runtime, str]) -> None:
    sim, _, url = served
    answer = await _raw(url, _signed_head(100) + b"{")  # 99 bytes never come
    assert answer.startswith(b"HTTP/1.1 408 ")
    await _still_serving(sim, url, "after slow body")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        # both framings (request smuggling's shape): refused, whichever a proxy in front believed
        (
            b"POST /slack/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            b"411",
        ),
        (b"POST /slack/events HTTP/1.1\r\nHost: x\r\n\r\n", b"411"),
        (b"POST /slack/events HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", b"400"),
        (b"POST /slack/events HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"POST /slack/events HTTP/1.1\r\n folded: header\r\n\r\n", b"400"),
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"POST /slack/events HTTP/1.1\r\nX: " + b"a" * 17_000 + b"\r\n\r\n", b"431"),
        (b"GET /slack/events HTTP/1.1\r\n\r\n", b"405"),
        (b"POST /elsewhere HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"404"),
    ],
)
async def test_malformed_requests_are_refused(
    served: tuple[GridSimulator, Runtime, str], data: bytes, status: bytes
) -> None:
    sim, _, url = served
    answer = await _raw(url, data)
    assert answer.startswith(b"HTTP/1.1 " + status + b" ")
    await _still_serving(sim, url, f"after {status.decode()}")


def test_the_receivers_check_agrees_with_slack_sdks_verifier() -> None:
    """EventsApp.verify computes the digest its own way (one-shot hmac.digest); on every case
    here it must answer exactly what slack_sdk's SignatureVerifier.is_valid answers."""

    from gridbot.secrets import Secret
    from gridbot.transport.http_apps import EventsApp

    app = EventsApp("app", Secret(SECRET), [], {})
    reference = SignatureVerifier(SECRET)
    now = str(int(time.time()))
    body = _payload("verify me")
    good = sign(SECRET, now, body)
    cases: list[tuple[bytes, str | None, str | None]] = [
        (body, now, good),
        (body + b" ", now, good),  # tampered body
        (body, now, sign(OTHER_SECRET, now, body)),  # another app's secret
        (body, str(int(now) - 301), sign(SECRET, str(int(now) - 301), body)),  # stale
        (body, str(int(now) + 301), sign(SECRET, str(int(now) + 301), body)),  # from the future
        (body, str(int(now) - 299), sign(SECRET, str(int(now) - 299), body)),  # inside the window
        (body, now, good.upper()),
        (body, now, good[:-1]),
        (body, now, None),
        (body, None, good),
        (body, "not-a-number", good),
        (b"\xff\xfe" + body, now, sign(SECRET, now, b"\xff\xfe" + body)),  # no UTF-8
        (body, now, "v0=\u00e9" + good[4:]),  # not ASCII
        ("caf\u00e9 ok".encode(), now, sign(SECRET, now, "caf\u00e9 ok".encode())),
    ]
    for n, (data, ts, signature) in enumerate(cases):
        try:
            expected = reference.is_valid(data, ts, signature)
        except (ValueError, TypeError):
            expected = False
        assert app.verify(data, ts, signature) is expected, f"case {n}"
    assert app.verify(body, now, good) is True
