"""The http bench's harness runs end to end on gridbot's side and on the floor's (tiny input;
figures not checked). Its slack_bolt side needs the bench extra (`pip install -e '.[bench]'`)."""

from __future__ import annotations

import pytest

from bench import harness
from bench.http_bench import one_run
from bench.http_floor import ANSWER, FloorProtocol, FloorServer


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
