"""The operations endpoint: ``/healthz``, ``/readyz``, ``/metrics``, ``/status``.

Off unless ``[http] port`` is set; binds 127.0.0.1 by default. Nothing here changes the daemon:
every route only reads (a :class:`~gridbot.status.view.RuntimeView`). Responses carry ids and
states, never tokens.

* ``/healthz``: 200 whenever the event loop answers (a blocked loop cannot), with the teams.
* ``/readyz``: 200 when every team is connected or in a state waiting will not change (stopped,
  disabled, removed) and the store answers a ping; 503 otherwise, and while starting or shutting
  down. JSON says why.
* ``/metrics``: Prometheus text (:mod:`gridbot.metrics`).
* ``/status``: what ``gridbot status`` shows (used by it when the store is in-memory).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from gridbot.logs import get_logger
from gridbot.metrics import CONTENT_TYPE, Metrics
from gridbot.status.snapshot import election_rows, process_document
from gridbot.status.view import RuntimeView, team_views
from gridbot.store import StoreUnavailable

log = get_logger("gridbot.http")

STORE_PING_TIMEOUT = 2.0
# A team's row in /readyz (/healthz shows only its id, name and state).
TEAM_FIELDS = ("team_id", "name", "enterprise_id", "transport", "state", "error", "last_event_at", "ready")


async def store_check(view: RuntimeView, metrics: Metrics) -> dict[str, Any]:
    """Ping the store with a deadline; also what the dedup stage last saw."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(STORE_PING_TIMEOUT):
            await view.store.ping()
    except (StoreUnavailable, TimeoutError) as exc:
        return {"ok": False, "error": str(exc) or type(exc).__name__}
    seconds = time.perf_counter() - started
    metrics.observe_store(seconds)
    dedup_ok = view.decisions.store_ok
    result: dict[str, Any] = {"ok": dedup_ok, "ping_ms": round(seconds * 1000, 3)}
    if not dedup_ok:
        result["error"] = "the dedup stage cannot reach the store (retrying)"
    return result


async def readiness(view: RuntimeView, metrics: Metrics) -> dict[str, Any]:
    """What ``/readyz`` answers: ready, or the reasons it is not."""
    teams = team_views(view.connections())
    store = await store_check(view, metrics)
    reasons = [f"{t.team_id or t.name or 'a team'}: {t.state}" for t in teams if not t.ready]
    if not store["ok"]:
        reasons.append("store unreachable")
    life = view.lifecycle
    if life.stopping or not life.started:
        reasons.append("stopping" if life.stopping else "starting")
    return {
        "ready": not reasons,
        "reasons": reasons,
        "instance": view.instance_id,
        "store": store,
        "teams": [t.pick(*TEAM_FIELDS) for t in teams],
    }


class OpsServer:
    """The aiohttp server; ``port`` is the bound port once started (0 in config picks a free one)."""

    def __init__(self, view: RuntimeView, metrics: Metrics, host: str, port: int) -> None:
        self._view = view
        self._metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_text)
        app.router.add_get("/status", self._status)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("http.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        view = self._view
        started_at = view.lifecycle.started_at
        body = {
            "alive": True,
            "instance": view.instance_id,
            "uptime_s": round(time.time() - started_at, 3) if started_at else 0.0,
            "teams": [t.pick("team_id", "name", "state") for t in team_views(view.connections())],
        }
        return web.json_response(body)

    async def _readyz(self, _request: web.Request) -> web.Response:
        body = await readiness(self._view, self._metrics)
        return web.json_response(body, status=200 if body["ready"] else 503)

    async def _metrics_text(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _status(self, _request: web.Request) -> web.Response:
        try:
            elections = election_rows(await self._view.store.elections())
        except StoreUnavailable:
            elections = []
        document = process_document(self._view, self.address)
        return web.json_response({"processes": [document], "elections": elections})
