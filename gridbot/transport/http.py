"""The Events API over HTTP: one listener (``[events]``) for every team with ``transport = "http"``.

Each request is checked before anything else: its size (413 before a byte of the body is read),
its content type (415), then its signature with slack_sdk's ``SignatureVerifier`` against each
app's signing secret (401: one ``events.refused`` line with no body and no secret, and the
request goes no further). A request must arrive whole within ``read_timeout`` of its first byte
(408, then closed: a slow-loris client holds a connection for no longer); an idle keep-alive
connection is closed after ``idle_timeout``.

**When the 200 is sent.** A delivery is answered once the store has decided its event: the
receiver registers for the ``event_id`` (:class:`gridbot.dedup.outcomes.Outcomes`), offers the
delivery to the intake, and the decider's answer writes the response before the handler is
dispatched. ``200`` when the event was claimed (here or by another replica: a duplicate) or is
our own bot's message; ``503`` when it could not be decided: the store unreachable (the delivery
stays buffered here and is handled once the store answers; Slack's retry is then a duplicate),
dropped from a full buffer, not decided within ``ack_timeout``, the intake above its high-water
mark (not offered), or the team still authenticating. So a 200 means the claim is in the store:
no event acknowledged here is lost with this process, and a retry that reaches another replica,
seconds or minutes later, meets the claim (kept ``runtime.claim_ttl``, >= 15 minutes, beyond
Slack's retry horizon). ``X-Slack-No-Retry`` is never sent. An interactive payload or a slash
command is answered with its ack: the body its handler acked with (an immediate message, a
``response_action``, options), or empty at the deadline (:mod:`gridbot.interactive.ack`).

The parsing is a small HTTP/1.1 server on :class:`asyncio.Protocol` (Content-Length bodies,
keep-alive, one request at a time per connection), not aiohttp's web server: it costs about a
third of it per request, and the request path holds no task of its own (the decision's callback
writes the answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import orjson

from gridbot.config import EventsConfig
from gridbot.dedup.outcomes import ACCEPTED
from gridbot.events import FrameError
from gridbot.interactive.intake import DeliveryIntake, Interactions
from gridbot.logs import get_logger
from gridbot.secrets import Secret
from gridbot.team import Team, TeamState
from gridbot.transport.http_apps import FORM, JSON, EventsApp, Pending, read_payload
from gridbot.transport.http_metrics import Counts
from gridbot.transport.http_wire import Conn, Head

log = get_logger("gridbot.events")

TICK = 0.05  # seconds between deadline checks (acks every tick, connections every 10th)


class Waiter:
    """One delivery waiting for its decision; its :meth:`ack` is what the decider calls."""

    __slots__ = ("arrived", "conn", "deadline", "done", "event_id", "receiver")

    def __init__(self, receiver: EventsReceiver, conn: Conn, event_id: str, arrived: float) -> None:
        self.receiver = receiver
        self.conn = conn
        self.event_id = event_id
        self.arrived = arrived
        self.deadline = arrived + receiver.config.ack_timeout
        self.done = False

    def abandon(self) -> None:
        """The client left before its answer: stop waiting (the delivery stays queued)."""
        if not self.done:
            self.done = True
            self.receiver.outcomes.cancel(self.event_id, self.ack)

    def ack(self, outcome: str) -> None:
        if self.done:
            return
        self.done = True
        receiver = self.receiver
        receiver.counts.acked(receiver.clock() - self.arrived)
        if outcome in ACCEPTED:
            self.conn.answer(200, outcome)
        else:
            receiver.retry_later(self.conn, outcome, self.event_id)


class EventsReceiver:
    """The listener: ``start()`` binds it, ``stop()`` drains it (stop accepting, answer what is in
    flight). Apps are opened on it by the supervisor, one per ``http:`` connection."""

    def __init__(self, config: EventsConfig, intake: DeliveryIntake, *, clock: Any = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.counts = Counts()
        self.port = config.port or 0
        self.listening = asyncio.Event()
        self.draining = False
        self.conns: set[Conn] = set()
        self.all_closed = asyncio.Event()  # set whenever the last connection closes
        self._intake = intake
        self.outcomes = intake.outcomes
        self._apps: list[EventsApp] = []
        self._server: asyncio.Server | None = None
        self._waiting: deque[Waiter] = deque()  # by deadline (every one is arrival + ack_timeout)
        self._ticker: asyncio.TimerHandle | None = None
        self._ticks = 0
        self._batch: list[tuple[Conn, EventsApp, Team, str | None, dict[str, Any], str, Waiter]] = []

    # -- apps (the supervisor's side) ---------------------------------------------------------

    def open_app(
        self, name: str, signing_secret: Secret, teams: list[Team], by_id: dict[str, Team], **kw: Any
    ) -> EventsApp:
        """Start verifying requests signed with ``signing_secret`` (before its teams authenticate:
        their requests are answered 503 meanwhile, not 401)."""
        app = EventsApp(name, signing_secret, teams, by_id, **kw)
        self._apps.append(app)
        return app

    def close_app(self, app: EventsApp) -> None:
        if app in self._apps:
            self._apps.remove(app)

    async def serve_app(self, app: EventsApp) -> None:
        """The app's link task: connected while the listener accepts requests; closed when cancelled."""
        try:
            await self.listening.wait()
            app.set_state(TeamState.CONNECTED)
            await asyncio.Event().wait()
        finally:
            self.close_app(app)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Conn(self), self.config.host, self.port, reuse_address=True, backlog=1024
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ticker = loop.call_later(TICK, self._tick)
        self.listening.set()
        log.info("events.listening", host=self.config.host, port=self.port, path=self.config.path)

    async def stop(self) -> None:
        """Stop accepting; answer every request in flight (with ``Connection: close``) within
        ``ack_timeout`` plus ``read_timeout``; close what is left."""
        if self._server is None:
            return
        self.draining = True
        self.listening.clear()
        self._server.close()
        log.info("events.draining", connections=len(self.conns), waiting=len(self._waiting))
        for conn in list(self.conns):
            conn.drain()
        if self.conns:
            self.all_closed.clear()
            bound = self.config.ack_timeout + self.config.read_timeout
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_closed.wait(), bound)
        for conn in list(self.conns):
            conn.abort()
        if self._ticker is not None:
            self._ticker.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        self._server = None
        log.info("events.stopped")

    # -- deadlines ------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.clock()
        waiting = self._waiting
        while waiting and (waiting[0].done or waiting[0].deadline <= now):
            waiter = waiting.popleft()
            if not waiter.done:
                self.outcomes.cancel(waiter.event_id, waiter.ack)
                waiter.ack("ack_timeout")
        self._ticks += 1
        if self._ticks % 10 == 0:
            for conn in list(self.conns):
                conn.check(now)
        self._ticker = asyncio.get_running_loop().call_later(TICK, self._tick)

    # -- requests -------------------------------------------------------------------------------

    def handle(self, conn: Conn, head: Head, body: bytes) -> None:
        """One whole request (its size already checked): answer it now, or leave a :class:`Waiter`."""
        config = self.config
        if head.path == "/healthz":
            if head.method != "GET":
                conn.refuse(405, "method_not_allowed")
                return
            ok = not self.draining
            doc = {"ok": ok, "apps": len(self._apps), "store_ok": self.outcomes.store_ok}
            conn.answer(200 if ok else 503, "healthz", orjson.dumps(doc), JSON, count=False)
            return
        if head.path != config.path:
            conn.refuse(404, "not_found")
            return
        if head.method != "POST":
            conn.refuse(405, "method_not_allowed")
            return
        content_type = head.content_type
        if content_type not in (JSON, FORM):
            conn.refuse(415, "bad_content_type")
            return
        timestamp, signature = (
            head.headers.get("x-slack-request-timestamp"),
            head.headers.get("x-slack-signature"),
        )
        app = next((a for a in self._apps if a.verify(body, timestamp, signature)), None)
        if app is None:
            conn.refuse(401, _why_unverified(timestamp, signature, time.time()), size=len(body))
            return
        # -- verified from here on --
        if "x-slack-retry-num" in head.headers:
            self.counts.retried(head.headers.get("x-slack-retry-reason"))
        try:
            payload = read_payload(content_type, body)
            kind = payload.kind
            if kind == "challenge":
                conn.answer(200, "challenge", orjson.dumps({"challenge": payload.body["challenge"]}), JSON)
                return
            if kind == "ssl_check":
                conn.answer(200, "ssl_check")
                return
            if kind == "interaction":
                self._interact(conn, app, payload.envelope, payload.body)
                return
            team, enterprise = app.route(payload.body)
        except Pending:
            self.retry_later(conn, "starting", None)
            return
        except FrameError as exc:
            app.frames_dropped += 1
            log.warning("frame.dropped", link=app.name, transport="http", reason=exc.reason, size=len(body))
            conn.answer(200, "frame_dropped")  # unusable however often Slack sends it
            return
        if kind == "rate_limited":
            self._rate_limited(team, payload.body)
            conn.answer(200, "app_rate_limited")
            return
        assert payload.frame is not None
        assert payload.event_id is not None
        if not self._intake.open.is_set():  # above the high-water mark: not taken in
            self.retry_later(conn, "busy", payload.event_id)
            return
        waiter = Waiter(self, conn, payload.event_id, self.clock())
        if not self.outcomes.store_ok:  # buffered, to be handled once the store answers
            if self._offer(conn, app, team, enterprise, payload.frame, payload.event_id, None):
                self.retry_later(conn, "unavailable", payload.event_id)  # Slack retries meanwhile
            return
        self.outcomes.expect(payload.event_id, waiter.ack)
        conn.waiter = waiter
        self._waiting.append(waiter)
        if self.config.batch_window:  # offered with the others of the window: one store round trip
            self._batch.append((conn, app, team, enterprise, payload.frame, payload.event_id, waiter))
            if len(self._batch) == 1:
                asyncio.get_running_loop().call_later(self.config.batch_window, self._flush)
        else:
            self._offer(conn, app, team, enterprise, payload.frame, payload.event_id, waiter)

    def _interact(self, conn: Conn, app: EventsApp, envelope: str, body: dict[str, Any]) -> None:
        """Hand an interaction over; the request is answered when it is acked."""
        if not isinstance(self._intake, Interactions):
            raise FrameError("interactivity_off")
        waiter = conn.waiter = Waiter(self, conn, "", self.clock())  # holds the connection's next request

        async def send(ack: dict[str, Any] | None) -> None:
            waiter.done = True
            body = b"" if ack is None else orjson.dumps(ack)
            conn.answer(200, "interaction", body, JSON if body else None)

        try:
            team, _ = self._intake.offer_interaction(envelope, body, app.by_id, app.teams, send)
        except FrameError:
            conn.waiter = None
            raise
        team.last_event_at = time.time()

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        for conn, app, team, enterprise, frame, event_id, waiter in batch:
            self._offer(conn, app, team, enterprise, frame, event_id, waiter)
        self._intake.handed_over()  # the whole window is in: the decider need not wait a turn

    def _offer(
        self,
        conn: Conn,
        app: EventsApp,
        team: Team,
        enterprise: str | None,
        frame: dict[str, Any],
        event_id: str | None,
        waiter: Waiter | None,
    ) -> bool:
        """Offer one delivery; an interaction (no waiter) is answered at once. False: unusable."""
        team.last_event_at = time.time()
        try:
            self._intake.offer(frame, team.team_id, enterprise, app.covers, event_id)
        except FrameError as exc:
            app.frames_dropped += 1
            log.warning(
                "frame.dropped", link=app.name, transport="http", reason=exc.reason, team_id=team.team_id
            )
            if waiter is None or not waiter.done:  # (not answered meanwhile: its deadline, say)
                if waiter is not None:
                    waiter.abandon()
                conn.answer(200, "frame_dropped")  # unusable however often Slack sends it
            return False
        return True

    def _rate_limited(self, team: Team, body: dict[str, Any]) -> None:
        rate = self.counts.rate_limited
        rate[team.team_id] = rate.get(team.team_id, 0) + 1
        log.warning(
            "events.app_rate_limited",
            team_id=team.team_id,
            minute_rate_limited=body.get("minute_rate_limited"),
            api_app_id=body.get("api_app_id"),
            notices=rate[team.team_id],
        )

    def retry_later(self, conn: Conn, reason: str, event_id: str | None) -> None:
        """Answer 503: not acknowledged, so Slack delivers it again (to whichever replica)."""
        total = conn.answer(503, reason)
        log.warning("events.retry_requested", reason=reason, event_id=event_id, total=total)


def _why_unverified(timestamp: str | None, signature: str | None, now: float) -> str:
    """The reason a request failed verification, for the log and metric only (the verifier decided)."""
    if not timestamp or not signature:
        return "missing_signature"
    try:
        if abs(now - int(timestamp)) > 300:
            return "stale_timestamp"
    except ValueError:
        return "stale_timestamp"
    return "bad_signature"
