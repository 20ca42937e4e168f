"""Slack's side of the ``http`` bench: ``python -m bench.http_load '<json spec>'``.

Sends one signed ``event_callback`` per message to the request URL at a steady rate over a pool
of keep-alive connections (one request at a time on each, as Slack and load balancers do) and
times every answer. Its own process, on raw asyncio protocols with the requests signed before
the clock starts, so it costs the measured process nothing and adds little to the latencies.
Prints one JSON line: requests, 2xx answers, latency percentiles (ms).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from typing import Any, cast

import orjson
from slack_sdk.signature import SignatureVerifier


def requests(spec: dict[str, Any]) -> list[bytes]:
    """Every request, signed now (well inside the 5-minute window of a run)."""
    host, path, team = spec["host"], spec["path"], spec["team"]
    signer = SignatureVerifier(spec["secret"])
    out = []
    for n in range(spec["messages"]):
        event = {
            "type": "message",
            "channel": spec["channel"],
            "user": f"W{n % 50:08d}",
            "text": f"bench {spec['run']} {n}",
            "ts": f"{1_700_000_000 + spec.get('offset', 0) + n // 1000}.{n % 1000:06d}",
            "team": team,
        }
        body = orjson.dumps(envelope(event, team, f"Ev{spec['run']}{n:09d}"))
        ts = str(int(time.time()))
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Slack-Request-Timestamp: {ts}\r\n"
            f"X-Slack-Signature: {signer.generate_signature(timestamp=ts, body=body)}\r\n"
            "User-Agent: Slackbot 1.0\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


def envelope(event: dict[str, Any], team: str, event_id: str) -> dict[str, Any]:
    """The ``event_callback`` Slack posts for one installation (slack-protocol-notes.md, D)."""
    authorization = {"enterprise_id": None, "team_id": team, "user_id": "U0BOT", "is_bot": True,
                     "is_enterprise_install": False}  # fmt: skip
    return {"token": "legacy-verification-token", "team_id": team, "enterprise_id": None,
            "api_app_id": "A0BENCH01", "event": event, "type": "event_callback", "event_id": event_id,
            "event_time": int(time.time()), "authorizations": [authorization],
            "is_ext_shared_channel": False}  # fmt: skip


class Client(asyncio.Protocol):
    """One keep-alive connection; records the status and time of each answer."""

    def __init__(self, done: list[tuple[int, float]], free: deque[Client]) -> None:
        self.done = done
        self.free = free
        self.buf = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        self.free.append(self)

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n"):
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if len(self.buf) < end + 4 + length:
            return
        self.buf = self.buf[end + 4 + length :]
        self.done.append((int(head[9:12]), time.perf_counter() - self.sent_at))
        self.free.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.free:
            self.free.remove(self)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    batch = requests(spec)
    done: list[tuple[int, float]] = []
    free: deque[Client] = deque()
    for _ in range(spec["connections"]):
        await loop.create_connection(lambda: Client(done, free), "127.0.0.1", spec["port"])
    rate = spec["rate"]
    started = time.perf_counter()
    waited = 0  # requests that found no free connection on time (the server fell behind)
    for n, request in enumerate(batch):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        while not free:
            waited += 1
            await asyncio.sleep(0.0005)
        free.popleft().send(request)
    deadline = time.perf_counter() + 30
    while len(done) < len(batch) and time.perf_counter() < deadline:  # noqa: ASYNC110 (after the stream)
        await asyncio.sleep(0.01)
    ended = time.perf_counter()
    latencies = sorted(seconds * 1000 for _, seconds in done)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {
        "requests": len(batch),
        "answered": len(done),
        "ok": sum(1 for status, _ in done if 200 <= status < 300),
        "statuses": sorted({status for status, _ in done}),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] if latencies else float("nan"),
        "seconds": ended - started,
        "waited": waited,
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))) + "\n")
