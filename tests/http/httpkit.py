"""Helpers for the Events API tests: configs, a round-robin proxy, a runtime on a fresh listener.

Slack's side is the simulator (``sim.http``: signed deliveries, Slack's retries, counts), its
clock 100x faster (:data:`FAST`). :func:`signed_post` is the hand-made request of a test that
plays someone else (a forger, a replayed retry), and :func:`event_callback` builds a payload for
a test that must choose its authorization (``sim.http.deliver(APP, payload)``).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from gridtest import T1, T2, GridbotProcess, wait_until
from slack_sdk.signature import SignatureVerifier

from gridbot.config import Config, EventsConfig, TeamConfig, replace
from gridbot.runtime import Runtime
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for
from gridbot.testing.simulator import HttpDelivery

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # a signing secret of Slack's shape (32 hex-ish chars)
OTHER_SECRET = "0123456789abcdef0123456789abcdef"
PATH = "/slack/events"
APP = "A0GRIDBOT1"  # the default org's app, installed on Team One and Team Two
# Slack's clocks a hundred times faster: retries about at once, after 0.6 s and after 3 s.
FAST = 100.0
_ids = itertools.count(1)


def http_config(
    sim: GridSimulator,
    teams: tuple[str, ...] = (T1, T2),
    *,
    secret: str = SECRET,
    events: Mapping[str, Any] | None = None,
    plugins: tuple[str, ...] = ("echo",),
    **kwargs: Any,
) -> Config:
    """Every team in ``teams`` over the Events API, one app (one signing secret), port 0."""
    base = config_for(sim, {}, plugins=plugins, **kwargs)
    configured = tuple(
        TeamConfig(
            transport="http",
            bot_token=Secret(inst.bot_token),
            signing_secret=Secret(secret),
            name=inst.team,
        )
        for app in sim.topology.apps
        for inst in app.installations
        if inst.team in teams
    )
    return replace(base, teams=configured, events=EventsConfig(port=0, **(events or {})))


@contextlib.asynccontextmanager
async def http_runtime(config: Config, **kwargs: Any) -> AsyncIterator[tuple[Runtime, str]]:
    """The runtime in-process, its listener up and every team connected; yields it and its URL."""
    async with Runtime(config, **kwargs) as rt:
        assert rt.events is not None and rt.supervisor is not None
        sup = rt.supervisor
        count = len(config.teams)
        await wait_until(lambda: len(sup.connected()) == count, 10, "http teams connected")
        yield rt, f"http://127.0.0.1:{rt.events.port}{PATH}"


async def subscribe(sim: GridSimulator, url: str, *, app: str = APP, secret: str = SECRET) -> None:
    """Give the app its request URL (the simulator verifies it with ``url_verification``)."""
    await sim.http.subscribe(app, url, secret)


def delivered(sim: GridSimulator, ts: str | None = None) -> list[HttpDelivery]:
    """The simulator's event deliveries (not the URL's verification), or those of one message."""
    return [d for d in sim.http.deliveries if d.kind == "event_callback" and (ts is None or d.ts == ts)]


async def delivery_of(sim: GridSimulator, ts: str, timeout: float = 10.0) -> HttpDelivery:
    """The finished delivery of the message ``ts`` (acked, or out of retries)."""
    await wait_until(lambda: any(d.outcome for d in delivered(sim, ts)), timeout, f"the delivery of {ts}")
    [delivery] = delivered(sim, ts)
    return delivery


async def signed_post(
    url: str,
    body: bytes,
    *,
    secret: str = SECRET,
    timestamp: str | None = None,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> tuple[int, bytes]:
    """One hand-made request, signed with ``secret`` (slack_sdk's signer) at ``timestamp``."""
    ts = timestamp or str(int(time.time()))
    sent = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body) or "",
        **(headers or {}),
    }
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=sent) as answer:
        return answer.status, await answer.read()


def event_callback(
    event: Mapping[str, Any],
    *,
    team_id: str,
    app_id: str = APP,
    enterprise_id: str | None = None,
    event_id: str | None = None,
    source_team: str | None = None,
) -> dict[str, Any]:
    """An ``event_callback`` as Slack posts it: the top-level ``team_id`` is the source team,
    ``authorizations`` holds one installation (``team_id``) (slack-protocol-notes.md, D)."""
    return {
        "token": "legacy-verification-token",
        "team_id": source_team or team_id,
        "enterprise_id": enterprise_id,
        "api_app_id": app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"EvTEST{next(_ids):08d}",
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
        "context_team_id": source_team or team_id,
        "event_context": f"4-{event.get('type')}-{team_id}-{event.get('channel')}",
    }


def message(channel: str, user: str, text: str, *, team: str, ts: str | None = None) -> dict[str, Any]:
    """A plain ``message`` event."""
    return {"type": "message", "channel": channel, "user": user, "text": text,
            "ts": ts or f"{time.time():.6f}", "team": team, "channel_type": "channel"}  # fmt: skip


def listening_port(proc: GridbotProcess) -> int | None:
    """The events port a `gridbot run` process bound (from its events.listening log line)."""
    for line in proc.events():
        if line.get("event") == "events.listening":
            return int(line["port"])
    return None


@dataclass
class Proxy:
    """A round-robin load balancer in front of the replicas, as a few lines of aiohttp.

    Each request goes to the next backend that is up. A backend that refuses the connection is
    taken out and the request tried on the next (nothing was sent yet); one that fails with the
    request on it is taken out and the client gets 502 (as nginx does for a POST). ``lose`` lists
    event texts whose first answer is replaced by a 502 after the backend answered: the ack is
    lost on the way, and Slack retries. With ``retry_elsewhere`` a retry (``X-Slack-Retry-Num``)
    skips the backend that took the event's previous attempt, when another is up: the case the
    claim in Redis exists for (any balancer may do it; this one always does). With ``seed`` the
    backend is a seeded random pick instead of the next in turn.
    """

    backends: list[str]
    lose: set[str] = field(default_factory=set)
    retry_elsewhere: bool = False
    seed: int | None = None
    # (request number, backend, status, event_id): what each backend answered
    served: list[tuple[int, str, int, str | None]] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    inflight: dict[str, int] = field(default_factory=dict)  # requests a backend has not answered yet
    holding: dict[str, list[str]] = field(default_factory=dict)  # their event texts, by backend
    _count: itertools.count[int] = field(default_factory=itertools.count)
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _took: dict[str, str] = field(default_factory=dict)
    _rng: random.Random | None = None  # event_id -> the backend of its last attempt

    async def handle(self, request: web.Request) -> web.Response:
        number = next(self._count)
        body = await request.read()
        payload = orjson.loads(body) if body.startswith(b"{") else {}
        event_id = payload.get("event_id")
        text = (payload.get("event") or {}).get("text")
        lost = text in self.lose
        self.lose.discard(text)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        while True:
            up = [b for b in self.backends if b not in self.down]
            if not up:
                return web.Response(status=502)
            previous = (
                self._took.get(str(event_id))
                if self.retry_elsewhere and "X-Slack-Retry-Num" in headers
                else None
            )
            backend = self._pick(up)
            if backend == previous and len(up) > 1:
                backend = next(b for b in up if b != previous)
            if isinstance(event_id, str):
                self._took[event_id] = backend
            self.inflight[backend] = self.inflight.get(backend, 0) + 1
            held = self.holding.setdefault(backend, [])
            held.append(str(text))
            try:
                async with self.session.post(backend + request.path, data=body, headers=headers) as response:
                    status, answer = response.status, await response.read()
            except aiohttp.ClientConnectorError:
                self.down.add(backend)  # nothing sent: the next backend may take it
                continue
            except aiohttp.ClientError:
                self.down.add(backend)
                return web.Response(status=502)
            finally:
                self.inflight[backend] -= 1
                held.remove(str(text))
            self.served.append((number, backend, status, event_id))
            return web.Response(status=502 if lost else status, body=answer)

    def _pick(self, up: list[str]) -> str:
        if self.seed is None:
            return up[next(self._turn) % len(up)]
        if self._rng is None:
            self._rng = random.Random(self.seed)
        return self._rng.choice(up)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        from gridtest import serving

        app = web.Application()
        app.router.add_post(PATH, self.handle)
        async with aiohttp.ClientSession() as self.session, serving(app) as url:
            yield url + PATH
