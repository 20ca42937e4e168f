"""The operations endpoint: ``/healthz``, ``/readyz``, ``/metrics``, ``/status``.

Off unless ``[http] port`` is set; binds 127.0.0.1 by default. Nothing here changes the daemon:
every route only reads. Responses carry ids and states, never tokens.

* ``/healthz``: 200 whenever the event loop answers (a blocked loop cannot), with the teams.
* ``/readyz``: 200 when every team is connected or in a known terminal state (stopped, disabled)
  and the store answers a ping; 503 otherwise, and while shutting down. JSON says why.
* ``/metrics``: Prometheus text (:mod:`gridbot.metrics`).
* ``/status``: what ``gridbot status`` shows (used by it when the store is in-memory).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gridbot.logs import get_logger
from gridbot.metrics import CONTENT_TYPE
from gridbot.status.snapshot import election_rows, process_document
from gridbot.store import StoreUnavailable

if TYPE_CHECKING:
    from gridbot.runtime import Runtime

log = get_logger("gridbot.http")

READY_STATES = frozenset({"connected"})
TERMINAL_STATES = frozenset({"stopped", "disabled"})  # need an operator; waiting will not help
STORE_PING_TIMEOUT = 2.0


def _teams(rt: Runtime) -> list[dict[str, Any]]:
    if rt.supervisor is None:
        return []
    return [
        {
            "team_id": t.team_id or None,
            "name": t.config.name,
            "enterprise_id": t.enterprise_id,
            "transport": t.config.transport,
            "state": t.state,
            "error": t.error,
            "last_event_at": t.last_event_at,
            "ready": t.state in READY_STATES or t.state in TERMINAL_STATES,
        }
        for t in list(rt.supervisor.teams)
    ]


async def store_check(rt: Runtime) -> dict[str, Any]:
    """Ping the store with a deadline; also what the dedup stage last saw."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(STORE_PING_TIMEOUT):
            await rt.store.ping()
    except (StoreUnavailable, TimeoutError) as exc:
        return {"ok": False, "error": str(exc) or type(exc).__name__}
    seconds = time.perf_counter() - started
    rt.metrics.observe_store(seconds)
    dedup_ok = rt.dedup.store_ok if rt.dedup is not None else True
    result: dict[str, Any] = {"ok": dedup_ok, "ping_ms": round(seconds * 1000, 3)}
    if not dedup_ok:
        result["error"] = "the dedup stage cannot reach the store (retrying)"
    return result


async def readiness(rt: Runtime) -> dict[str, Any]:
    teams = _teams(rt)
    store = await store_check(rt)
    reasons = [f"{t['team_id'] or t['name'] or 'a team'}: {t['state']}" for t in teams if not t["ready"]]
    if not store["ok"]:
        reasons.append("store unreachable")
    if rt.stopping or not rt.started:
        reasons.append("stopping" if rt.stopping else "starting")
    return {
        "ready": not reasons,
        "reasons": reasons,
        "instance": rt.instance_id,
        "store": store,
        "teams": teams,
    }


class OpsServer:
    """The aiohttp server; ``port`` is the bound port once started (0 in config picks a free one)."""

    def __init__(self, rt: Runtime, host: str, port: int) -> None:
        self._rt = rt
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
        app.router.add_get("/metrics", self._metrics)
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
        rt = self._rt
        body = {
            "alive": True,
            "instance": rt.instance_id,
            "uptime_s": round(time.time() - rt.started_at, 3) if rt.started_at else 0.0,
            "teams": [{k: t[k] for k in ("team_id", "name", "state")} for t in _teams(rt)],
        }
        return web.json_response(body)

    async def _readyz(self, _request: web.Request) -> web.Response:
        body = await readiness(self._rt)
        return web.json_response(body, status=200 if body["ready"] else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._rt.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _status(self, _request: web.Request) -> web.Response:
        rt = self._rt
        try:
            elections = election_rows(await rt.store.elections())
        except StoreUnavailable:
            elections = []
        return web.json_response({"processes": [process_document(rt)], "elections": elections})
