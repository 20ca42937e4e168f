"""What a verified Events API request means, and which of our teams it is for.

One :class:`EventsApp` per app (per signing secret): every team installed through that app shares
it, as every team of a Socket Mode app shares its sockets. It is the HTTP transport's "link" in
the supervisor's eyes (a state, counts), and it holds the app's :class:`SignatureVerifier`.

:func:`read_payload` turns a body already verified into one :class:`Payload`. The team is
resolved by :func:`gridbot.transport.routing.serving`, as the Socket Mode transport resolves it.
Interactive payloads and slash commands are read as they come (``envelope`` names which, as the
Socket Mode envelope type does) and handed to :class:`gridbot.interactive.intake.Interactions`,
which owns everything about them: their model, the team that serves them, their frame.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from slack_sdk.signature import SignatureVerifier

from gridbot.dedup.facts import timed
from gridbot.events import FrameError
from gridbot.interactive.payload import INTERACTIVE, SLASH_COMMANDS
from gridbot.secrets import Secret
from gridbot.team import Team, TeamState
from gridbot.transport.routing import serving

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass(slots=True)
class Payload:
    """A verified request, read: ``kind`` is ``event``, ``interaction``, ``challenge``,
    ``rate_limited`` or ``ssl_check``; ``body`` the JSON object (or form fields)."""

    kind: str
    body: dict[str, Any]
    frame: dict[str, Any] | None = None  # what the intake gets (an event)
    event_id: str | None = None
    envelope: str = ""  # an interaction's kind, as Socket Mode names it: slash_commands | interactive


def read_payload(content_type: str, body: bytes) -> Payload:
    """Read a verified body; raises :class:`FrameError` (with a stable reason) if it is unusable."""
    if content_type == JSON:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FrameError("not_json") from None
        if not isinstance(data, dict):
            raise FrameError("not_an_object")
        kind = data.get("type")
        if kind == "event_callback":
            event, event_id = data.get("event"), data.get("event_id")
            if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
                raise FrameError("event_callback_without_event")
            return Payload("event", data, timed(event, data), event_id)
        if kind == "url_verification":
            if not isinstance(data.get("challenge"), str):
                raise FrameError("bad_challenge")
            return Payload("challenge", data)
        if kind == "app_rate_limited":
            return Payload("rate_limited", data)
        raise FrameError("unknown_payload_type")
    try:
        fields = dict(
            urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        )
    except (UnicodeDecodeError, ValueError):
        raise FrameError("bad_form") from None
    if fields.get("ssl_check") == "1":
        return Payload("ssl_check", fields)
    if "payload" in fields:  # block_actions, shortcuts, view_submission ...
        try:
            data = orjson.loads(fields["payload"])
        except orjson.JSONDecodeError:
            raise FrameError("not_json") from None
        if not isinstance(data, dict):
            raise FrameError("not_an_object")
        return Payload("interaction", data, envelope=INTERACTIVE)
    if "command" in fields:
        return Payload("interaction", fields, envelope=SLASH_COMMANDS)
    raise FrameError("unknown_form")


class Pending(Exception):
    """The request names a team of this app whose ``auth.test`` has not answered yet."""


class EventsApp:
    """One app's teams on the HTTP transport: the supervisor's link for an ``http:`` connection."""

    kind = "http"

    def __init__(
        self,
        name: str,
        signing_secret: Secret,
        teams: Sequence[Team],
        by_id: Mapping[str, Team],
        *,
        on_state: Callable[[EventsApp], None] | None = None,
    ) -> None:
        self.name = name
        self.verifier = SignatureVerifier(signing_secret.get())
        self._hmac = hmac.new(signing_secret.get().encode(), digestmod=hashlib.sha256)  # keyed once
        self.teams = teams  # every configured team of the app (the connection's, kept current)
        self.by_id = by_id  # those authenticated, by team id
        self.state = TeamState.STARTING
        self.error: str | None = None
        self.reconnects = 0  # (nothing reconnects: the status views read it from every link)
        self.frames_dropped = 0
        self._on_state = on_state
        self._covers: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never the verifier's secret
        return f"EventsApp({self.name}, state={self.state})"

    def set_state(self, state: TeamState, error: str | None = None) -> None:
        if (state, error) != (self.state, self.error):
            self.state, self.error = state, error
            if self._on_state is not None:
                self._on_state(self)

    def verify(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        """slack_sdk's check, step for step (``SignatureVerifier.is_valid``): the timestamp within
        5 minutes of the verifier's clock, v0 HMAC-SHA256 of ``v0:timestamp:body`` compared in
        constant time. Only the digest is computed differently: from a copy of an HMAC
        keyed once per app, instead of an ``hmac.HMAC`` keyed per request over a body decoded
        and encoded again (2.8 -> 2.0 us a request on the development VM, measured alone; more
        on the bench, where it runs with cold caches). tests/http/test_verification.py checks
        that both agree."""
        if timestamp is None or signature is None:
            return False
        try:
            if abs(self.verifier.clock.now() - int(timestamp)) > 300:
                return False
            body.decode("utf-8")  # slack_sdk refuses a body that is no UTF-8; so does this
            mac = self._hmac.copy()
            mac.update(b"v0:" + timestamp.encode() + b":" + body)
            return hmac.compare_digest("v0=" + mac.hexdigest(), signature)
        except (ValueError, TypeError):  # a timestamp that is no integer, a signature not ASCII
            return False

    @property
    def covers(self) -> tuple[str, ...]:
        """Every authenticated team of the app: Slack sends one copy per app, not per team."""
        if len(self._covers) != len(self.by_id):
            self._covers = tuple(self.by_id)
        return self._covers

    def route(self, body: Mapping[str, Any]) -> tuple[Team, str | None]:
        """The installation a payload is for, and its enterprise id (:func:`routing.serving`).

        Raises :class:`Pending` while a team of the app is still authenticating (it may be that
        one), :class:`FrameError` ``unknown_installation`` when none of ours matches.
        """
        found = serving(body, self.by_id, self.teams)
        if found is not None:
            return found
        if any(t.team_id not in self.by_id and not t.state.final for t in self.teams):
            raise Pending
        raise FrameError("unknown_installation")
