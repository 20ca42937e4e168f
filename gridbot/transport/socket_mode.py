"""Socket Mode: 1-10 sockets per app token, shared by every team the app is installed on.

Each envelope is acked at once, by the transport, before anything else happens (Slack redelivers
after 3 s). The team an event belongs to is ``authorizations[0]``'s; the other teams on the
same app token are also "covered" by the delivery, since Slack sends one event per app, not per team.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.config import RuntimeConfig
from gridbot.events import FrameError, id_of
from gridbot.secrets import Secret
from gridbot.slack import classify_error
from gridbot.team import Team
from gridbot.transport.link import FrameIntake, Link, LinkStopped, Socket


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
        self.ws_ping = runtime.ping_interval
        self.teams = teams  # team_id -> Team, every authenticated team on this app token
        self._app_token = app_token
        self._connector = connector

    async def open_url(self) -> str:
        response = await self._connector.apps_connections_open(app_token=self._app_token.get())
        return str(response["url"])

    async def on_frame(self, sock: Socket, frame: dict[str, Any]) -> None:
        envelope_id = frame.get("envelope_id")
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

    def _envelope(self, envelope: dict[str, Any]) -> None:
        payload = envelope.get("payload")
        if not isinstance(payload, dict):
            raise FrameError("envelope_without_payload")
        kind = envelope.get("type")
        frame: dict[str, Any]
        if kind == "events_api":
            event = payload.get("event")
            auths = payload.get("authorizations")
            if not isinstance(event, dict) or not isinstance(auths, list) or not auths:
                raise FrameError("events_api_without_event")
            auth = auths[0] if isinstance(auths[0], dict) else {}
            team_id = auth.get("team_id") or payload.get("team_id")
            team = self.teams.get(team_id) if isinstance(team_id, str) else None
            if team is None:
                raise FrameError("unknown_installation")
            event_id = payload.get("event_id")
            frame = event
            enterprise_id = auth.get("enterprise_id") or team.enterprise_id
            known_id = event_id if isinstance(event_id, str) else None
        elif kind in ("slash_commands", "interactive"):
            team_id = payload.get("team_id") or id_of(payload.get("team"))
            team = self.teams.get(team_id) if isinstance(team_id, str) else None
            if team is None:
                raise FrameError("unknown_installation")
            channel = payload.get("channel_id") or id_of(payload.get("channel"))
            frame = {
                "type": "slash_command" if kind == "slash_commands" else "interactive",
                "channel": channel,
                "user": payload.get("user_id") or id_of(payload.get("user")),
                "text": payload.get("text", ""),
                "payload": payload,
            }
            enterprise_id, known_id = team.enterprise_id, None
        else:
            raise FrameError("unknown_envelope_type")
        team.last_event_at = time.time()
        self.intake.offer(frame, team.team_id, enterprise_id, tuple(self.teams), known_id)
