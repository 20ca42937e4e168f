"""What an interactive payload says: :class:`Interaction`, read once from either transport.

Slash commands arrive as form fields (``command``, ``text``, ``user_id``, ``team_id`` ...);
everything else as a JSON ``payload`` whose ``type`` is ``block_actions``, ``shortcut``,
``message_action``, ``view_submission``, ``view_closed`` or ``block_suggestion``
(platform-2026.md, "Interactivity"). Both shapes become one :class:`Interaction`.

**Which installation serves it** (:func:`serving_team`) is the decision Bolt users trip over on
Grid (bolt-python #767, #1229): in a shared channel the clicking user may belong to a team where
the app is not installed, and the payload's ``team`` is theirs. The installation is resolved from,
in order: ``authorizations[0]`` (Slack's own word, when present), ``view.app_installed_team_id``,
the payload's team and the user's ``team_id`` (when we serve them), the team of the bot message
that carried the button, and last the enterprise (an org-wide install, or a user of a team we do
not serve in an org we do): so the answer goes through a token that can give it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from gridbot.events import FrameError, id_of

#: The type of the frame an interaction is handed to the intake as (``Event.type``).
FRAME_TYPE = "interaction"
#: The two shapes a payload comes in, named as Socket Mode names its envelopes.
SLASH_COMMANDS, INTERACTIVE = "slash_commands", "interactive"
SLASH = "slash_command"
#: Every kind of interaction, as the plugin decorators name them.
KINDS = (
    SLASH,
    "block_actions",
    "shortcut",
    "message_action",
    "view_submission",
    "view_closed",
    "block_suggestion",
)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def simple_value(element: Mapping[str, Any]) -> Any:
    """The value a user chose or typed in one element of a view's state or one action:
    ``value``, a selected option's value (or a list of them), a date, a user, a conversation."""
    if "value" in element:
        return element["value"]
    option = element.get("selected_option")
    if isinstance(option, Mapping):
        return option.get("value")
    options = element.get("selected_options")
    if isinstance(options, list):
        return [o.get("value") for o in options if isinstance(o, Mapping)]
    for key, found in element.items():
        if key.startswith("selected_"):
            return found
    return None


@dataclass(frozen=True, slots=True)
class Interaction:
    """One slash command, click, shortcut, view submission or options request.

    ``user_id`` and ``user_team_id`` are the acting user and their team (which may be a team
    where the app is not installed); the installation that answers is the context's ``team_id``.
    """

    kind: str
    # The raw payload and its response_url (which lets anyone answer in the channel for 30
    # minutes) are kept out of the repr, as tokens are.
    payload: Mapping[str, Any] = field(repr=False)
    user_id: str | None
    user_team_id: str | None
    enterprise_id: str | None
    channel_id: str | None
    trigger_id: str | None
    response_url: str | None = field(repr=False)
    command: str | None = None  # a slash command's name, "/deploy"
    text: str = ""  # a slash command's text
    action: Mapping[str, Any] | None = None  # the (first) action of block_actions
    action_id: str | None = None
    block_id: str | None = None
    callback_id: str | None = None
    value: Any = None  # the action's value, or what was typed (block_suggestion)
    view: Mapping[str, Any] | None = None
    message: Mapping[str, Any] | None = None  # the message with the button, or the shortcut's

    @property
    def view_id(self) -> str | None:
        return _str(self.view.get("id")) if self.view else None

    @property
    def private_metadata(self) -> str:
        """The view's ``private_metadata`` as it was set when the view was opened."""
        return str(self.view.get("private_metadata") or "") if self.view else ""

    @property
    def values(self) -> dict[str, dict[str, Any]]:
        """A submitted view's state: ``{block_id: {action_id: value}}`` (see :func:`simple_value`)."""
        state = _map(_map(self.view).get("state")).get("values")
        return {
            block: {action: simple_value(_map(el)) for action, el in _map(elements).items()}
            for block, elements in _map(state).items()
        }

    @property
    def message_ts(self) -> str | None:
        """The ts of the message that carried the button (or the shortcut's message)."""
        container = _map(self.payload.get("container"))
        return _str(container.get("message_ts")) or (_str(self.message.get("ts")) if self.message else None)


def read_interaction(envelope_type: str, payload: Mapping[str, Any]) -> Interaction:
    """Read a ``slash_commands`` or ``interactive`` payload; :class:`FrameError` if unusable."""
    if envelope_type == SLASH_COMMANDS:
        command = _str(payload.get("command"))
        if command is None:
            raise FrameError("slash_command_without_command")
        text = payload.get("text")
        return Interaction(
            SLASH,
            payload,
            user_id=_str(payload.get("user_id")) or id_of(payload.get("user")),
            user_team_id=_str(payload.get("team_id")) or id_of(payload.get("team")),
            enterprise_id=_str(payload.get("enterprise_id")) or id_of(payload.get("enterprise")),
            channel_id=_str(payload.get("channel_id")) or id_of(payload.get("channel")),
            trigger_id=_str(payload.get("trigger_id")),
            response_url=_str(payload.get("response_url")),
            command=command.lower(),
            text=text if isinstance(text, str) else "",
        )
    kind = payload.get("type")
    if kind not in KINDS or kind == SLASH:
        raise FrameError("unknown_interaction")
    user = _map(payload.get("user"))
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], Mapping) else None
    view = payload.get("view") if isinstance(payload.get("view"), Mapping) else None
    message = payload.get("message") if isinstance(payload.get("message"), Mapping) else None
    source: Mapping[str, Any] = action or (payload if kind == "block_suggestion" else {})
    callback = _str(payload.get("callback_id")) or (_str(view.get("callback_id")) if view else None)
    return Interaction(
        kind,
        payload,
        user_id=id_of(payload.get("user")),
        user_team_id=_str(user.get("team_id")) or id_of(payload.get("team")),
        enterprise_id=id_of(payload.get("enterprise")) or _str(payload.get("enterprise_id")),
        channel_id=id_of(payload.get("channel")) or _str(_map(payload.get("container")).get("channel_id")),
        trigger_id=_str(payload.get("trigger_id")),
        response_url=_str(payload.get("response_url")) or _first_response_url(payload),
        action=action,
        action_id=_str(source.get("action_id")),
        block_id=_str(source.get("block_id")),
        callback_id=callback,
        value=simple_value(action) if action is not None else payload.get("value"),
        view=view,
        message=message,
    )


def _first_response_url(payload: Mapping[str, Any]) -> str | None:
    """A view submission's ``response_urls`` (from a conversations select with that option)."""
    urls = payload.get("response_urls")
    if isinstance(urls, list) and urls and isinstance(urls[0], Mapping):
        return _str(urls[0].get("response_url"))
    return None


class Installed(Protocol):
    """An installation we serve: a team id and its enterprise (``gridbot.team.Team``)."""

    @property
    def team_id(self) -> str: ...
    @property
    def enterprise_id(self) -> str | None: ...


T = TypeVar("T", bound=Installed)


def serving_team(
    interaction: Interaction, by_id: Mapping[str, T], teams: Iterable[T]
) -> tuple[T, str | None]:
    """The installation that answers ``interaction``, and its enterprise (the order: module doc).

    Raises :class:`FrameError` ``unknown_installation`` when none of ours can.
    """
    payload = interaction.payload
    auths = payload.get("authorizations")
    auth = _map(auths[0]) if isinstance(auths, list) and auths else {}
    view = _map(interaction.view)
    for candidate in (
        auth.get("team_id"),
        view.get("app_installed_team_id"),
        _str(payload.get("team_id")) or id_of(payload.get("team")),
        interaction.user_team_id,
        _map(interaction.message).get("team"),
    ):
        team = by_id.get(candidate) if isinstance(candidate, str) else None
        if team is not None:
            return team, _str(auth.get("enterprise_id")) or team.enterprise_id or interaction.enterprise_id
    enterprise = _str(auth.get("enterprise_id")) or interaction.enterprise_id
    if enterprise is not None:  # an org-wide install, or a user of a team we do not serve
        for team in teams:
            if team.team_id in by_id and team.enterprise_id == enterprise:
                return team, enterprise
    raise FrameError("unknown_installation")


def interaction_key(interaction: Interaction, envelope_id: str | None) -> str:
    """What makes two deliveries the same interaction: its ``trigger_id`` (one per user action),
    else the Socket Mode envelope's id; a payload with neither (an HTTP ``view_closed`` or
    options request, which Slack never sends twice) gets a key of its own."""
    if interaction.trigger_id is not None:
        return f"interaction:t:{interaction.trigger_id}"
    if envelope_id:
        return f"interaction:e:{envelope_id}"
    return f"interaction:l:{uuid.uuid4().hex}"


def frame_of(interaction: Interaction) -> dict[str, Any]:
    """The frame the intake gets: no channel and no ts, so the event is claimed on its key
    alone and never waits for a shared-channel election (it is addressed to one installation)."""
    return {
        "type": FRAME_TYPE,
        "user": interaction.user_id,
        "text": interaction.text,
        "payload": interaction.payload,
    }
