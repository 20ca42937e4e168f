"""Interactivity: what a user does (a slash command, a click, a shortcut, a modal submitted or
closed, an options request), sent over Socket Mode or to the app's request URL over HTTP
(:mod:`.carriers`: an app with a request URL, ``sim.http.subscribe``, gets them over HTTP), and
what the user sees of the app's answer, the same whichever carried it (:meth:`Interactivity._apply`).

platform-2026.md, "Interactivity": the payload kinds and fields; over Socket Mode "envelopes of
type ``slash_commands`` and ``interactive`` with ``accepts_response_payload: true``; the ack
frame may carry ``payload`` (the response). They are not retried: an un-acked one fails for the
user." "Ack within 3 s. ``view_submission`` acks may carry ``response_action``: ``errors``,
``update``, ``push``, ``clear``. ``block_suggestion`` acks carry ``options``." A payload names the
acting user's team, which in a shared channel may be a team without the app (bolt-python #767):
the simulator does the same, and names the installation only where Slack does
(``view.app_installed_team_id``, the bot message's ``team``).

``response_url`` (:mod:`.responses`) and modals (:mod:`.views`) are served alongside.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import render
from .carriers import Carried, Copies, HttpCarrier, SocketCarrier
from .http_delivery import HttpHub
from .model import App, BotRef, Conversation, User
from .records import PostedMessage, Recent
from .responses import Responses, Seen
from .socket_mode import SocketModeHub
from .state import OrgState
from .translate import Viewer
from .views import Views

# What Slack shows the user when nothing acked within 3 s, over either carrier [field: Slack's
# client wording].
TIMEOUT_SHOWN = {
    "slash_commands": 'failed with the error "operation_timeout"',
    "interactive": "This app is not responding. Please try again later.",
}


@dataclass(frozen=True)
class Sent:
    """One user action as Slack sent it, and its ack (``ack`` None: empty or none)."""

    kind: str  # slash_command | block_actions | shortcut | message_action | view_submission | ...
    payload: dict[str, Any]
    envelope_id: str | None  # Socket Mode's; None over HTTP
    acked: bool
    ack: dict[str, Any] | None
    seconds: float
    error: str | None = None  # what the user saw instead of an answer (no ack in 3 s, no socket)
    carrier: str = "socket_mode"  # or "http"


class Interactivity:
    def __init__(
        self,
        state: OrgState,
        sm: SocketModeHub,
        views: Views,
        responses: Responses,
        posted: Recent[PostedMessage],
        http: HttpHub,
    ) -> None:
        self._state = state
        self.views = views
        self.responses = responses
        self.seen = responses.seen
        self._posted = posted
        self.sent: Recent[Sent] = Recent()
        self._copies = Copies()
        self._socket = SocketCarrier(sm, self._copies)
        self.http = HttpCarrier(http, self._copies)
        # A fault for tests: the next payload is delivered twice: on two sockets if the app has
        # them, or POSTed twice to its request URL (at-least-once delivery: handled once).
        self.duplicate_next = False

    @property
    def copies_acked(self) -> int:
        """Duplicate copies (``duplicate_next``) acked so far."""
        return self._copies.acked

    # -- who and where --------------------------------------------------------------------------

    def _user(self, user_id: str) -> User:
        user = self._state.topology.user_by_id.get(user_id)
        if user is None:
            raise ValueError(f"unknown user {user_id!r}")
        return user

    def _conv(self, channel: str) -> Conversation:
        conv = self._state.conversation(channel)
        if conv is None:
            raise ValueError(f"unknown conversation {channel!r}")
        return conv

    def _app(self, app_id: str | None) -> App:
        apps = [a for a in self._state.topology.apps if a.app_token is not None or self.http.serves(a.id)]
        app = next((a for a in apps if a.id == app_id), None) if app_id else (apps[0] if apps else None)
        if app is None:
            who = f" {app_id!r}" if app_id else ""
            raise ValueError(f"no app{who} with Socket Mode or a request URL in the topology")
        return app

    def _common(self, app: App, user: User, team_id: str) -> dict[str, Any]:
        topo = self._state.topology
        team = topo.team_by_id[team_id]
        ent = topo.enterprise
        return {
            "token": "",
            "api_app_id": app.id,
            "team": {
                "id": team.id,
                "domain": team.domain,
                "enterprise_id": ent.id,
                "enterprise_name": ent.name,
            },
            "enterprise": {"id": ent.id, "name": ent.name},
            "is_enterprise_install": False,
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": team_id},
        }

    # -- actions ----------------------------------------------------------------------------------

    async def slash(
        self, user_id: str, channel: str, command: str, text: str = "", *, app: str | None = None
    ) -> Sent:
        """``user`` types ``command text`` in ``channel`` (form fields, as over HTTP)."""
        user, conv, target = self._user(user_id), self._conv(channel), self._app(app)
        if user.id not in conv.members:
            raise ValueError(f"user {user.id} is not a member of {conv.id}")
        team = self._state.source_team(user, conv)
        ent = self._state.topology.enterprise
        payload = {
            "token": "",
            "team_id": team,
            "team_domain": self._state.topology.team_by_id[team].domain,
            "enterprise_id": ent.id,
            "enterprise_name": ent.name,
            "channel_id": conv.id,
            "channel_name": conv.name,
            "user_id": user.id,
            "user_name": user.name,
            "command": command,
            "text": text,
            "api_app_id": target.id,
            "is_enterprise_install": "false",
            "response_url": self.responses.url(target, user.id, conv.id, None),
            "trigger_id": self.views.issue(target.id, user.id, team),
        }
        return await self._send(target, "slash_commands", "slash_command", payload, user.id)

    async def click(
        self, user_id: str, channel: str, ts: str, action_id: str, *, value: str | None = None
    ) -> Sent:
        """``user`` clicks the element ``action_id`` of the bot message ``ts`` (it must be there)."""
        user, conv = self._user(user_id), self._conv(channel)
        msg = self._state.messages.get(conv.id, ts)
        if msg is None or msg.bot is None:
            raise ValueError(f"no bot message {ts} in {conv.id}")
        block_id, element = _element(msg.blocks or [], action_id)
        team = self._state.source_team(user, conv)
        action = {
            "action_id": action_id,
            "block_id": block_id,
            "type": element.get("type", "button"),
            "action_ts": self._state.clock.next(),
        }
        if "text" in element:
            action["text"] = element["text"]
        if value is not None or "value" in element:
            action["value"] = value if value is not None else element["value"]
        bot = msg.bot
        payload = {
            "type": "block_actions",
            **self._common(bot.app, user, team),
            "container": {"type": "message", "message_ts": ts, "channel_id": conv.id, "is_ephemeral": False},
            "trigger_id": self.views.issue(bot.app.id, user.id, team),
            "channel": {"id": conv.id, "name": conv.name},
            "message": render.message_body(
                self._state.topology, msg, Viewer(bot.team, bot.app.translation_layer)
            ),
            "state": {"values": {}},
            "response_url": self.responses.url(bot.app, user.id, conv.id, ts),
            "actions": [action],
        }
        return await self._send(bot.app, "interactive", "block_actions", payload, user.id)

    async def shortcut(self, user_id: str, callback_id: str, *, app: str | None = None) -> Sent:
        """A global shortcut, from the user's home team (no channel, no response_url)."""
        user, target = self._user(user_id), self._app(app)
        payload = {
            "type": "shortcut",
            **self._common(target, user, user.home_team),
            "callback_id": callback_id,
            "trigger_id": self.views.issue(target.id, user.id, user.home_team),
            "action_ts": self._state.clock.next(),
        }
        return await self._send(target, "interactive", "shortcut", payload, user.id)

    async def message_shortcut(
        self, user_id: str, channel: str, ts: str, callback_id: str, *, app: str | None = None
    ) -> Sent:
        """A message shortcut on the message ``ts`` (any author's)."""
        user, conv, target = self._user(user_id), self._conv(channel), self._app(app)
        msg = self._state.messages.get(conv.id, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {conv.id}")
        team = self._state.source_team(user, conv)
        viewer = Viewer(team, target.translation_layer)
        payload = {
            "type": "message_action",
            **self._common(target, user, team),
            "callback_id": callback_id,
            "trigger_id": self.views.issue(target.id, user.id, team),
            "action_ts": self._state.clock.next(),
            "message_ts": ts,
            "channel": {"id": conv.id, "name": conv.name},
            "message": render.message_body(self._state.topology, msg, viewer),
            "response_url": self.responses.url(target, user.id, conv.id, None),
        }
        return await self._send(target, "interactive", "message_action", payload, user.id)

    async def submit(self, user_id: str, values: dict[str, dict[str, Any]] | None = None) -> Sent:
        """The user submits the modal they have open, its inputs set to ``values``
        (``{block_id: {action_id: value}}``; a list for a multi-select)."""
        user = self._user(user_id)
        view = self.views.top(user.id)
        if view is None:
            raise ValueError(f"{user.id} has no modal open")
        view = {**view, "state": {"values": _state(values or {})}}
        app = self._state.topology.app_by_id[view["app_id"]]
        payload = {
            "type": "view_submission",
            **self._common(app, user, view["team_id"]),
            "view": view,
            "trigger_id": self.views.issue(app.id, user.id, view["team_id"]),
            "response_urls": [],
        }
        return await self._send(app, "interactive", "view_submission", payload, user.id)

    async def close(self, user_id: str) -> Sent | None:
        """The user closes their modal; ``view_closed`` is sent only if it asked (``notify_on_close``)."""
        user = self._user(user_id)
        view = self.views.top(user.id)
        if view is None:
            raise ValueError(f"{user.id} has no modal open")
        self.views.clear(user.id)
        if not view["notify_on_close"]:
            return None
        app = self._state.topology.app_by_id[view["app_id"]]
        payload = {
            "type": "view_closed",
            **self._common(app, user, view["team_id"]),
            "view": view,
            "is_cleared": True,
        }
        return await self._send(app, "interactive", "view_closed", payload, user.id)

    async def suggest(self, user_id: str, action_id: str, typed: str, *, block_id: str = "") -> Sent:
        """The user types ``typed`` in an external select of their open modal."""
        user = self._user(user_id)
        view = self.views.top(user.id)
        if view is None:
            raise ValueError(f"{user.id} has no modal open")
        app = self._state.topology.app_by_id[view["app_id"]]
        payload = {
            "type": "block_suggestion",
            **self._common(app, user, view["team_id"]),
            "container": {"type": "view", "view_id": view["id"]},
            "action_id": action_id,
            "block_id": block_id,
            "value": typed,
            "view": view,
        }
        return await self._send(app, "interactive", "block_suggestion", payload, user.id)

    # -- sending, and what the ack does -------------------------------------------------------

    async def _send(self, app: App, envelope: str, kind: str, payload: dict[str, Any], user: str) -> Sent:
        started = time.monotonic()
        duplicate, self.duplicate_next = self.duplicate_next, False
        carrier = self.http if self.http.serves(app.id) else self._socket
        carried = await carrier.send(app.id, envelope, payload, duplicate=duplicate)
        if not carried.acked:  # no ack within 3 s, or the app unreachable: the user sees an error
            return self._failed(kind, payload, carried, started, user, envelope)
        sent = Sent(
            kind,
            payload,
            carried.envelope_id,
            True,
            carried.body,
            time.monotonic() - started,
            carrier=carried.carrier,
        )
        self.sent.append(sent)
        await self._apply(sent, user)
        return sent

    def _failed(
        self,
        kind: str,
        payload: dict[str, Any],
        carried: Carried,
        started: float,
        user: str,
        envelope: str,
    ) -> Sent:
        shown = TIMEOUT_SHOWN[envelope]
        if kind == "slash_command":
            shown = f"{payload['command']} {shown}"
        self.seen.append(Seen(user, "error", shown, None, {"kind": kind}, time.time()))
        seconds = time.monotonic() - started
        sent = Sent(kind, payload, carried.envelope_id, False, None, seconds, shown, carried.carrier)
        self.sent.append(sent)
        return sent

    async def _apply(self, sent: Sent, user: str) -> None:
        """What the user sees of the ack's payload (the Socket Mode ack frame's ``payload``, or the
        HTTP response's body: the one place either is honoured)."""
        body, payload = sent.ack or {}, sent.payload
        if sent.kind == "slash_command" and (body.get("text") or body.get("blocks")):
            conv = self._conv(payload["channel_id"])
            bot = self._bot_in(conv, payload["api_app_id"])
            in_channel = body.get("response_type") == "in_channel"
            await self.responses.show(user, conv, bot, body, in_channel=in_channel, how="ack")
        elif sent.kind == "view_submission":
            action = body.get("response_action")
            team = payload["view"]["team_id"]
            if action == "errors":
                self.seen.append(
                    Seen(user, "view_errors", "", None, dict(body.get("errors") or {}), time.time())
                )
            elif action == "update" and isinstance(body.get("view"), dict):
                self.views.replace_top(user, body["view"], team)
            elif action == "push" and isinstance(body.get("view"), dict):
                self.views.push_view(user, body["view"], team)
            elif action == "clear":
                self.views.clear(user)
            else:  # an empty ack closes the submitted view
                self.views.pop(user)
        elif sent.kind == "block_suggestion":
            options = body.get("options") or body.get("option_groups") or []
            self.seen.append(Seen(user, "options", "", None, {"options": options}, time.time()))

    def _bot_in(self, conv: Conversation, app_id: str) -> BotRef:
        bots = [b for b in self._state.bots_in(conv) if b.app.id == app_id]
        if not bots:
            bots = [b for b in self._state.topology.bots if b.app.id == app_id]
        return bots[0]


def _element(blocks: list[Any], action_id: str) -> tuple[str, dict[str, Any]]:
    """The block id and the element with ``action_id`` (in an actions block or an accessory)."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates = [*list(block.get("elements") or []), block.get("accessory")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id") or ""), element
    raise ValueError(f"the message has no element with action_id {action_id!r}")


def _state(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{block_id: {action_id: value}}`` in the shape Slack submits a view's state."""
    state: dict[str, Any] = {}
    for block, actions in values.items():
        state[block] = {}
        for action, value in actions.items():
            if isinstance(value, list):
                element = {"type": "multi_static_select", "selected_options": [{"value": v} for v in value]}
            else:
                element = {"type": "plain_text_input", "value": value}
            state[block][action] = element
    return state
