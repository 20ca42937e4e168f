"""How a user action reaches the app: over Socket Mode, or POSTed to the app's request URL.

platform-2026.md, "Interactivity": "Payload kinds: slash commands (form fields: ``command``,
``text``, ``response_url``, ``trigger_id``, ``user_id``, ``team_id`` ...); interactive ``payload=``
JSON with ``type`` in ``block_actions``, ``shortcut`` ...". Over HTTP Slack POSTs them
form-encoded (``application/x-www-form-urlencoded``): a slash command as its fields, to the
command's request URL; anything else as one field ``payload`` holding the JSON, to the app's
interactivity request URL. Signed like every request of the Events API (platform-2026.md,
"Events API over HTTP": ``X-Slack-Signature``), one attempt only ("They are not retried: an
un-acked one fails for the user"), and "Ack within 3 s": the ack is the HTTP response, a 2xx
within the deadline, its body the answer (``response_action``, options, a slash command's
immediate message; empty: nothing to show). A late 2xx is no ack.

Either carrier returns a :class:`Carried`; what the user then sees of the ack is decided in one
place, :meth:`gridbot.testing.simulator.interactivity.Interactivity._apply`, whichever carried it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from .http_delivery import HttpHub
from .http_policy import FORM, form_body
from .socket_mode import SocketModeHub

SOCKET_MODE = "socket_mode"
HTTP = "http"
#: Where a request URL is set for all interactions (as opposed to one slash command's).
INTERACTIVITY = "interactivity"


@dataclass(frozen=True)
class Carried:
    """What came back: ``acked`` within 3 s, and the ack's body (None: empty, or no ack)."""

    carrier: str
    reached: bool  # False: the app could not be reached at all (no socket, no connection)
    acked: bool
    body: dict[str, Any] | None
    envelope_id: str | None = None  # Socket Mode's envelope id


class Copies:
    """Acks of the duplicate copies a test asked for (at-least-once delivery)."""

    def __init__(self) -> None:
        self.acked = 0

    def count(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled():
            self.acked += 1


class SocketCarrier:
    """One ``slash_commands`` / ``interactive`` envelope on one of the app's sockets."""

    def __init__(self, sm: SocketModeHub, copies: Copies) -> None:
        self._sm = sm
        self._copies = copies

    async def send(self, app_id: str, envelope: str, payload: dict[str, Any], *, duplicate: bool) -> Carried:
        issued = await self._sm.deliver_interactive(app_id, envelope, payload)
        if issued is None:  # no socket: Slack cannot reach the app
            return Carried(SOCKET_MODE, False, False, None)
        envelope_id, future, sock = issued
        if duplicate:  # on another socket if the app has one
            copy = await self._sm.deliver_interactive(app_id, envelope, payload, avoid=sock)
            if copy is not None:
                copy[1].add_done_callback(self._copies.count)
        try:
            ack = await asyncio.wait_for(asyncio.shield(future), self._sm.ack_timeout)
        except TimeoutError:
            self._sm.forget(envelope_id)
            return Carried(SOCKET_MODE, True, False, None, envelope_id)
        return Carried(SOCKET_MODE, True, True, ack if isinstance(ack, dict) else None, envelope_id)


class HttpCarrier:
    """One signed POST to the app's request URL (the Events API's, unless set apart here)."""

    def __init__(self, hub: HttpHub, copies: Copies) -> None:
        self._hub = hub
        self._copies = copies
        self._urls: dict[tuple[str, str], str] = {}

    def serves(self, app_id: str) -> bool:
        """Does the app take its interactions over HTTP (it has a request URL)?"""
        return self._hub.subscribed(app_id)

    def set_url(self, app_id: str, url: str, *, command: str | None = None) -> None:
        """The app's interactivity request URL, or (``command``) one slash command's request URL;
        unset, both are the Events API request URL (gridbot serves all on its ``[events] path``)."""
        self._urls[(app_id, command or INTERACTIVITY)] = url

    def url(self, app_id: str, envelope: str, payload: dict[str, Any]) -> str | None:
        if envelope == "slash_commands":
            return self._urls.get((app_id, str(payload["command"])))
        return self._urls.get((app_id, INTERACTIVITY))

    async def send(self, app_id: str, envelope: str, payload: dict[str, Any], *, duplicate: bool) -> Carried:
        if envelope == "slash_commands":
            body = form_body({k: str(v) for k, v in payload.items()})
        else:
            body = form_body({"payload": orjson.dumps(payload).decode()})
        url = self.url(app_id, envelope, payload)
        post = self._hub.deliver(app_id, body, content_type=FORM, retries=False, url=url)
        if duplicate:  # the same POST twice at once (a balancer's retry, a duplicate): both awaited
            copy = self._hub.deliver(app_id, body, content_type=FORM, retries=False, url=url)
            delivery, copied = await asyncio.gather(post, copy)
            self._copies.acked += copied.acked
        else:
            delivery = await post
        [attempt] = delivery.attempts
        if not delivery.acked:  # no 2xx within 3 s (a late one included), or no connection
            return Carried(HTTP, attempt.result != "connection_failed", False, None)
        return Carried(HTTP, True, True, _answer(delivery.answer))


def _answer(body: bytes) -> dict[str, Any] | None:
    """The ack's body: a JSON object, or nothing to show (an empty 200). A body that is not a JSON
    object shows nothing here [infer: gridbot always answers JSON or empty; Slack's handling of a
    plain-text answer is not in the reference]."""
    if not body.strip():
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
