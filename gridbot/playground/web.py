"""The page and its endpoints: plain files, a few JSON routes, and one server-sent-event stream.

    GET  /                 the page (static/index.html; its script and style beside it)
    GET  /api/org          the org: teams, apps' bot users, users, conversations, plugins
    GET  /api/state        teams (state, heartbeat, sockets, faults), elections, counters, store
    GET  /api/messages     every message's story
    POST /api/messages     {"user", "channel", "text"[, "thread_ts"]}: type as a user
    POST /api/faults       {"fault", "team"[, "seconds"]}: cut, reconnect, revoke, lag, unlag,
                           redis_stop, redis_start, heal
    GET  /api/stream       text/event-stream: a ``snapshot``, then ``message``, ``state`` and
                           ``timeline`` updates

Requests that change something must be JSON (a cross-site form cannot send it) and every request
must name a loopback host (a rebound DNS name cannot reach the playground from a web page).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from .faults import FaultError, FaultPanel
from .feed import Feed
from .stories import Stories
from .watch import Watcher


class Playground(Protocol):
    """What the web server needs of the playground (``app.Playground`` is the one there is)."""

    @property
    def faults(self) -> FaultPanel: ...

    @property
    def feed(self) -> Feed: ...

    @property
    def stories(self) -> Stories: ...

    @property
    def watcher(self) -> Watcher: ...

    def org(self) -> dict[str, Any]: ...

    def state(self) -> dict[str, Any]: ...

    def snapshot(self) -> dict[str, Any]: ...

    async def post(
        self, *, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> dict[str, Any]: ...

STATIC = Path(__file__).parent / "static"
KEEPALIVE = 15.0  # seconds between comment lines on an idle stream
MAX_TEXT = 4_000
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
WILDCARD = frozenset({"", "0.0.0.0", "::"})
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"

PLAYGROUND: web.AppKey[Playground] = web.AppKey("playground")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(playground: Playground, host: str) -> web.Application:
    # Bound to every interface, the page is reached by names we cannot know: no Host check then.
    allowed = None if host in WILDCARD else LOOPBACK | {host, f"[{host}]"}
    app = web.Application(middlewares=[_guard(allowed)], client_max_size=64 * 1024)
    app[PLAYGROUND] = playground
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC, append_version=False)
    app.router.add_get("/api/org", _org)
    app.router.add_get("/api/state", _state)
    app.router.add_get("/api/messages", _messages)
    app.router.add_post("/api/messages", _post)
    app.router.add_post("/api/faults", _fault)
    app.router.add_get("/api/stream", _stream)

    async def _end_streams(app: web.Application) -> None:
        app[PLAYGROUND].feed.close()

    app.on_shutdown.append(_end_streams)
    return app


def _guard(allowed: frozenset[str] | None) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        name = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        if allowed is not None and name not in allowed:
            return _error(403, "the playground answers only on its own loopback address")
        if request.method == "POST" and request.content_type != "application/json":
            return _error(415, "send JSON (Content-Type: application/json)")
        response = await handler(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return guard


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def _org(request: web.Request) -> web.Response:
    return web.json_response(request.app[PLAYGROUND].org())


async def _state(request: web.Request) -> web.Response:
    return web.json_response(request.app[PLAYGROUND].state())


async def _messages(request: web.Request) -> web.Response:
    return web.json_response(request.app[PLAYGROUND].stories.all())


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text='{"error": "the body is not JSON"}', content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "send a JSON object"}', content_type="application/json")
    return body


async def _post(request: web.Request) -> web.Response:
    body = await _body(request)
    fields = {k: body.get(k) for k in ("user", "channel", "text")}
    thread_ts = body.get("thread_ts")
    missing = [k for k, v in fields.items() if not isinstance(v, str) or not v.strip()]
    if missing or not (thread_ts is None or isinstance(thread_ts, str)):
        return _error(400, f"user, channel and text are required strings (missing: {', '.join(missing)})")
    if len(fields["text"] or "") > MAX_TEXT:
        return _error(400, f"text is longer than {MAX_TEXT} characters")
    try:
        story = await request.app[PLAYGROUND].post(
            user=fields["user"] or "",
            channel=fields["channel"] or "",
            text=fields["text"] or "",
            thread_ts=thread_ts or None,
        )
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response(story)


async def _fault(request: web.Request) -> web.Response:
    body = await _body(request)
    fault, team, seconds = body.get("fault"), body.get("team"), body.get("seconds")
    if not isinstance(fault, str) or not (team is None or isinstance(team, str)):
        return _error(400, "fault (a string) is required; team, when given, is a team id")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
        return _error(400, "seconds must be a number")
    playground = request.app[PLAYGROUND]
    try:
        await playground.faults.apply(fault, team, seconds)
    except FaultError as exc:
        return _error(409, str(exc))
    await playground.watcher.refresh()
    return web.json_response(playground.state())


def _event(kind: str, seq: int, data: dict[str, Any]) -> bytes:
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(request: web.Request) -> web.StreamResponse:
    playground = request.app[PLAYGROUND]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    try:
        async with playground.feed.listen() as queue:
            snapshot = playground.snapshot()  # taken after listening began: nothing falls between
            await response.write(_event("snapshot", snapshot["seq"], snapshot))
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if item is None:
                    break
                await response.write(_event(item["kind"], item["seq"], item))
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    return response
