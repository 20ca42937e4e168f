"""One websocket connection kept alive: the loop both transports share.

A link connects (a fresh URL from a Tier-1 connect method each time), waits for ``hello`` with a
deadline, then runs two named tasks per socket, the reader and the keep-alive, until the first one
ends. When the server announces a close (RTM ``goodbye``, Socket Mode ``refresh_requested``) the
replacement socket is opened *before* the old one is closed; the dedup stage absorbs the overlap.
Slack errors are classified once (:func:`gridbot.slack.classify`); :attr:`gridbot.slack.Verdict.terminal`
decides which of them end the link for good, the supervisor's ``auth.test`` following the same rule.
Others pause the link (a Grid migration) or retry with jittered backoff.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from gridbot.config import RuntimeConfig
from gridbot.events import FrameError, parse_frame
from gridbot.logs import get_logger
from gridbot.slack import Action, Backoff, classify
from gridbot.team import TeamState

log = get_logger("gridbot.link")


class FrameIntake(Protocol):
    """Where a link hands each delivery: the dedup stage's :class:`gridbot.dedup.Intake`."""

    @property
    def open(self) -> asyncio.Event:
        """Cleared while the intake is backed up: the links stop reading, so TCP pushes back."""

    def offer(
        self,
        frame: dict[str, Any],
        team_id: str,
        enterprise_id: str | None,
        covers: tuple[str, ...],
        event_id: str | None = None,
    ) -> None:
        """Take one delivery (raises FrameError for a frame that is not an event)."""


WS_MAX_MSG = 16 << 20  # read oversized frames and drop them ourselves: aiohttp would kill the socket


class LinkStopped(Exception):
    """Raised inside a link to end it for good (``state`` says how: stopped or disabled)."""

    def __init__(self, state: TeamState, error: str) -> None:
        super().__init__(error)
        self.state = state
        self.error = error


@dataclass
class Socket:
    """One open websocket and its keep-alive bookkeeping."""

    ws: aiohttp.ClientWebSocketResponse
    ping_id: int = 0
    pong_id: int = 0
    pong: asyncio.Event = field(default_factory=asyncio.Event)


class Link(abc.ABC):
    """Keeps one connection alive. Subclasses say how to connect and what frames mean."""

    kind: str = "link"

    def __init__(
        self,
        name: str,
        *,
        intake: FrameIntake,
        session: aiohttp.ClientSession,
        runtime: RuntimeConfig,
        on_state: Callable[[Link], None] | None = None,
    ) -> None:
        self.name = name
        self.session = session
        self.runtime = runtime
        self.state = TeamState.STARTING
        self.error: str | None = None
        self.reconnects = 0
        self.frames_dropped = 0
        self._on_state = on_state
        self._backoff = Backoff()
        self._replacement: asyncio.Task[Socket | None] | None = None
        self.intake = intake
        self._log = log.bind(link=name, transport=self.kind)

    # -- what subclasses provide -------------------------------------------------------------

    @abc.abstractmethod
    async def open_url(self) -> str:
        """Call the Tier-1 connect method; raises SlackApiError on failure."""

    @abc.abstractmethod
    async def on_frame(self, sock: Socket, frame: dict[str, Any]) -> None:
        """Handle one decoded frame (after hello)."""

    async def keepalive(self, sock: Socket) -> None:
        """Return when the socket is judged dead. Default: aiohttp's heartbeat does the work."""
        await asyncio.Event().wait()

    ws_ping: float | None = None  # websocket-level ping interval, if the protocol uses it

    # -- the loop ------------------------------------------------------------------------------

    def _set_state(self, state: TeamState, error: str | None = None) -> None:
        if state != self.state or error != self.error:
            self.state, self.error = state, error
            if self._on_state is not None:
                self._on_state(self)

    async def run(self) -> None:
        """Serve until cancelled or stopped for good. Never raises for Slack or network trouble."""
        sock: Socket | None = None
        try:
            sock = await self._open_with_retry()
            while sock is not None:
                sock = await self._serve(sock)
                if sock is None:
                    self.reconnects += 1
                    self._set_state(TeamState.RECONNECTING)
                    sock = await self._open_with_retry()
        except LinkStopped as stop:
            self._log.error("link.stopped", state=stop.state.value, error=stop.error)
            self._set_state(stop.state, stop.error)
        finally:
            if self._replacement is not None:
                self._replacement.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    replacement = await self._replacement
                    if replacement is not None:
                        await replacement.ws.close()
            if sock is not None:
                await sock.ws.close()
            if not self.state.final:
                self._set_state(TeamState.RECONNECTING if self.state == TeamState.CONNECTED else self.state)

    async def _open_with_retry(self) -> Socket | None:
        while True:
            try:
                url = await self.open_url()
            except Exception as exc:  # classified below; nothing a server says may end the daemon
                verdict = classify(exc)
                if verdict.terminal is not None:
                    raise LinkStopped(verdict.terminal, verdict.error) from None
                if verdict.action is Action.PAUSE:
                    self._set_state(TeamState.PAUSED, verdict.error)
                    self._log.warning("link.paused", error=verdict.error)
                    await asyncio.sleep(self.runtime.paused_probe_interval)
                    continue
                delay = self._backoff.next(verdict.retry_after)
                self._log.warning("link.connect_failed", error=verdict.error, retry_in=round(delay, 2))
                self._set_state(TeamState.RECONNECTING, verdict.error)
                await asyncio.sleep(delay)
                continue
            sock = await self._connect(url)
            if sock is not None:
                self._backoff.reset()
                self._set_state(TeamState.CONNECTED)
                self._log.info("link.connected", reconnects=self.reconnects)
                return sock
            await asyncio.sleep(self._backoff.next())

    async def _connect(self, url: str) -> Socket | None:
        try:
            ws = await self.session.ws_connect(url, max_msg_size=WS_MAX_MSG, heartbeat=self.ws_ping)
        except (aiohttp.ClientError, OSError) as exc:
            self._log.warning("link.ws_failed", error=type(exc).__name__)
            return None
        try:
            msg = await ws.receive(timeout=self.runtime.hello_timeout)
            frame = parse_frame(msg.data) if msg.type == aiohttp.WSMsgType.TEXT else {}
        except (TimeoutError, FrameError):
            frame = {}
        if frame.get("type") != "hello":
            self._log.warning("link.no_hello", got=str(frame.get("type")))
            await ws.close()
            return None
        return Socket(ws)

    async def _serve(self, sock: Socket) -> Socket | None:
        """Read until the socket ends; return its replacement if one was opened, else None."""
        reader = asyncio.create_task(self._read(sock), name=f"{self.name}:reader")
        keeper = asyncio.create_task(self.keepalive(sock), name=f"{self.name}:keepalive")
        try:
            await asyncio.wait({reader, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, keeper):
                task.cancel()
            results = await asyncio.gather(reader, keeper, return_exceptions=True)
            await sock.ws.close()
        for result in results:
            if isinstance(result, LinkStopped):
                raise result
        if keeper.done() and not keeper.cancelled() and keeper.exception() is None:
            self._log.warning("link.stale", after_s=self.runtime.pong_timeout)
        replacement, self._replacement = self._replacement, None
        if replacement is not None:
            return await replacement
        return None

    def replace(self, sock: Socket) -> None:
        """Open a new socket now and close ``sock`` once the new one said hello."""
        if self._replacement is None:
            self._replacement = asyncio.create_task(self._replace(sock), name=f"{self.name}:replace")

    async def _replace(self, old: Socket) -> Socket | None:
        new = await self._open_with_retry()
        await old.ws.close()
        return new

    async def _read(self, sock: Socket) -> None:
        is_open = self.intake.open
        async for msg in sock.ws:
            if not is_open.is_set():  # backed up: a flood waits in the kernel's socket buffers
                await is_open.wait()
            if msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    frame = parse_frame(msg.data)
                except FrameError as exc:
                    self._drop(exc.reason, len(msg.data))
                    continue
                try:
                    await self.on_frame(sock, frame)
                except FrameError as exc:
                    self._drop(exc.reason, len(msg.data))
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self._drop("binary", len(msg.data))
            elif msg.type == aiohttp.WSMsgType.ERROR:
                self._log.warning("link.ws_error", error=type(msg.data).__name__)
                return

    def _drop(self, reason: str, size: int) -> None:
        self.frames_dropped += 1
        self._log.warning("frame.dropped", reason=reason, size=size)
