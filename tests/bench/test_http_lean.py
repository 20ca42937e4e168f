"""The http bench's lean server does the contract it stands for: a retry is claimed away, every
request is answered 200 only once its claim is in Redis, each event's handler runs once.

(Its figure is the ceiling the bench compares gridbot with; a lean server that skipped the claim
would make that ceiling a lie.)"""

from __future__ import annotations

import asyncio
import time

import orjson
from slack_sdk.signature import SignatureVerifier

from bench.http_lean import LeanServer
from bench.http_load import envelope

SECRET = "lean-test-secret"


def request(message: int, event_id: str) -> bytes:
    event = {"type": "message", "channel": "C0LEAN001", "user": "W0ALICE01", "text": "hi",
             "ts": f"1700000000.{message:06d}"}  # fmt: skip
    body = orjson.dumps(envelope(event, "T0TEAM001", event_id))
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    head = (f"POST /slack/events HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {signature}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def test_a_retried_event_is_handled_once_and_every_request_is_answered(
    redis_url: str, redis_prefix: str
) -> None:
    handled: list[str] = []
    server = LeanServer(SECRET, redis_url, redis_prefix, handled.append)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # message 1, Slack's retry of it (a new delivery, the same message), message 2
        for message, event_id in ((1, "Ev01"), (1, "Ev02"), (2, "Ev03")):
            writer.write(request(message, event_id))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()
    # each handler call is made in the callback that wrote its 200, so all have run by now
    assert handled == ["C0LEAN001:1700000000.000001", "C0LEAN001:1700000000.000002"]
