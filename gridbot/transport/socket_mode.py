"""Socket Mode: 1-10 sockets per app token, shared by every team the app is installed on.

Each ``events_api`` envelope is acked at once, by the transport, before anything else happens
(Slack redelivers after 3 s). The team an event belongs to is :func:`~gridbot.transport.routing.serving`'s
answer (``authorizations[0]``'s installation, or for an org-wide install its workspace); the other
teams on the same app token are also "covered" by the delivery, since Slack sends one event per
app, not per team.

A ``slash_commands`` or ``interactive`` envelope (``accepts_response_payload``) is acked once,
on the socket that carried it, with the answer as its ``payload``: when the handler acks, or
empty at the deadline (:mod:`gridbot.interactive.ack`). It is handed to
:class:`~gridbot.interactive.intake.Interactions`, which decides everything else about it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.config import RuntimeConfig
from gridbot.dedup.facts import timed
from gridbot.events import FrameError
from gridbot.interactive.intake import Interactions
from gridbot.interactive.payload import INTERACTIVE, SLASH_COMMANDS
from gridbot.secrets import Secret
from gridbot.slack import classify_error
from gridbot.team import Team
from gridbot.transport.link import FrameIntake, Link, LinkStopped, Socket
from gridbot.transport.routing import serving

ANSWERED = (SLASH_COMMANDS, INTERACTIVE)  # envelopes whose ack carries the answer


class SocketModeLink(Link):
    kind = "socket_mode"

    def __init__(
        self,
        name: str,
        teams: Mapping[str, Team],
        *,
        app_token: Secret,
        connector: AsyncWebClient,
        intake: FrameIntake,
        session: aiohttp.ClientSession,
        runtime: RuntimeConfig,
        on_state: Callable[[Link], None] | None = None,
    ) -> None:
        super().__init__(name, intake=intake, session=session, runtime=runtime, on_state=on_state)
        # The runtime's intake is an Interactions; with a bare intake (tests), interactive
        # envelopes are acked empty and dropped.
        self._interactions = intake if isinstance(intake, Interactions) else None
        self.ws_ping = runtime.ping_interval
        self.teams = teams  # team_id -> Team, every authenticated team on this app token
        self._app_token = app_token
        self._connector = connector

    async def open_url(self) -> str:
        response = await self._connector.apps_connections_open(app_token=self._app_token.get())
        return str(response["url"])

    async def on_frame(self, sock: Socket, frame: dict[str, Any]) -> None:
        envelope_id = frame.get("envelope_id")
        if envelope_id is not None and frame.get("type") in ANSWERED:
            await self._interaction(sock, frame, envelope_id)
            return
        if envelope_id is not None:
            # A text frame: Slack reads acks as JSON text and redelivers what it did not read.
            await sock.ws.send_str(orjson.dumps({"envelope_id": envelope_id}).decode())
            self._envelope(frame)
            return
        if frame.get("type") == "disconnect":
            reason = str(frame.get("reason"))
            self._log.info("link.disconnect", reason=reason)
            terminal = classify_error(reason).terminal
            if terminal is not None:  # link_disabled: Socket Mode was switched off for the app
                raise LinkStopped(terminal, reason)
            if reason in ("refresh_requested", "warning"):  # notes C: closes soon; replace it first
                self.replace(sock)
            elif reason == "too_many_websockets":
                # Over the app's cap: do not stampede; this slot waits a long backoff.
                self._backoff.attempt = max(self._backoff.attempt, 5)
                await sock.ws.close()

    async def _interaction(self, sock: Socket, frame: dict[str, Any], envelope_id: Any) -> None:
        """Offer a slash command or interactive payload; its ack leaves when it is answered."""
        send = functools.partial(self._ack, sock, envelope_id, frame.get("accepts_response_payload") is True)
        payload = frame.get("payload")
        try:
            if self._interactions is None:
                raise FrameError("interactivity_off")
            if not isinstance(payload, dict):
                raise FrameError("envelope_without_payload")
            team, _ = self._interactions.offer_interaction(
                str(frame["type"]), payload, self.teams, self.teams.values(), send, str(envelope_id)
            )
        except FrameError:
            await send(None)  # unusable however often it is sent: acked, then logged by the reader
            raise
        team.last_event_at = time.time()

    async def _ack(self, sock: Socket, envelope_id: Any, accepts: bool, body: dict[str, Any] | None) -> None:
        """One ack, on the socket that carried the envelope (an ack on another one does not count)."""
        ack: dict[str, Any] = {"envelope_id": envelope_id}
        if body is not None and accepts:
            ack["payload"] = body
        try:
            await sock.ws.send_str(orjson.dumps(ack).decode())
        except (ConnectionError, RuntimeError) as exc:  # closed meanwhile: the user sees Slack's error
            self._log.warning("interactive.ack_failed", error=type(exc).__name__)

    def _envelope(self, envelope: dict[str, Any]) -> None:
        payload = envelope.get("payload")
        if not isinstance(payload, dict):
            raise FrameError("envelope_without_payload")
        if envelope.get("type") != "events_api":
            raise FrameError("unknown_envelope_type")
        event = payload.get("event")
        auths = payload.get("authorizations")
        if not isinstance(event, dict) or not isinstance(auths, list) or not auths:
            raise FrameError("events_api_without_event")
        found = serving(payload, self.teams, self.teams.values())
        if found is None:
            raise FrameError("unknown_installation")
        team, enterprise = found
        event_id = payload.get("event_id")
        team.last_event_at = time.time()
        self.intake.offer(
            timed(event, payload),
            team.team_id,
            enterprise,
            tuple(self.teams),
            event_id if isinstance(event_id, str) else None,
        )
