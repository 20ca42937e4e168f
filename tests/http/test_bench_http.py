"""The http bench's harness runs end to end on gridbot's side and on the floor's (tiny input;
figures not checked), and the lean server does the contract it stands for. Its slack_bolt side needs the bench extra (`pip install -e '.[bench]'`)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from slack_sdk.signature import SignatureVerifier

from bench import harness
from bench.http_bench import one_run
from bench.http_floor import ANSWER, FloorProtocol, FloorServer
from bench.http_lean import LeanServer
from bench.http_load import envelope

SECRET = "lean-test-secret"


async def test_the_http_bench_measures_gridbot(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.http_bench.REDIS_URL", redis_url)
    async with harness.FrameServer(1, {}) as server:
        result = await one_run(server, "gridbot", 300, 300)
    assert result["ok"] == 300 and result["cpu_us"] > 0 and result["p99_ms"] < 1000


async def test_the_http_bench_measures_the_floor(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.http_bench.REDIS_URL", redis_url)
    async with harness.FrameServer(1, {}) as server:
        result = await one_run(server, "floor", 300, 300)
    assert result["ok"] == 300 and result["cpu_us"] > 0 and result["p99_ms"] < 1000


class _Wire:
    def __init__(self) -> None:
        self.out = b""

    def write(self, data: bytes) -> None:
        self.out += data


def test_the_floor_answers_a_request_only_once_its_body_is_in() -> None:
    """The floor must read what a real server reads, or it would be cheaper than any of them:
    a body split across reads is waited for, pipelined requests get one answer each."""
    body = b'{"type":"event_callback"}'
    request = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    server, wire = FloorServer(), _Wire()
    proto = FloorProtocol(server)
    proto.connection_made(wire)  # type: ignore[arg-type]
    proto.data_received(request[:-5])
    assert wire.out == b"" and server.count == 0
    proto.data_received(request[-5:] + request + request[:10])
    assert wire.out == ANSWER * 2 and server.count == 2
    proto.data_received(request[10:])
    assert wire.out == ANSWER * 3 and server.count == 3


def lean_request(message: int, event_id: str) -> bytes:
    event = {"type": "message", "channel": "C0LEAN001", "user": "W0ALICE01", "text": "hi",
             "ts": f"1700000000.{message:06d}"}  # fmt: skip
    body = orjson.dumps(envelope(event, "T0TEAM001", event_id))
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    head = (f"POST /slack/events HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {signature}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def test_the_lean_server_handles_a_retried_event_once_and_answers_every_request(
    redis_url: str, redis_prefix: str
) -> None:
    handled: list[str] = []
    server = LeanServer(SECRET, redis_url, redis_prefix, handled.append)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # message 1, Slack's retry of it (a new delivery, the same message), message 2
        for message, event_id in ((1, "Ev01"), (1, "Ev02"), (2, "Ev03")):
            writer.write(lean_request(message, event_id))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()
    # each handler call is made in the callback that wrote its 200, so all have run by now
    assert handled == ["C0LEAN001:1700000000.000001", "C0LEAN001:1700000000.000002"]
