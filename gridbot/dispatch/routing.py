"""Which handlers an event runs: message patterns, commands and event types, decided once per event.

Two rules keep one message from being answered twice:

- Within one plugin, a message that invokes one of the plugin's commands runs that command's
  handler only, never the plugin's message patterns too (``whois`` has both a ``whois @user``
  pattern and a ``whois`` command: a DM "whois @x" is both). Other plugins' patterns still match,
  and ``@event`` handlers are never affected.
- A command name belongs to the first plugin in ``plugins.enabled`` that declares it. A later
  plugin's handler for the same name is not routed (nor listed by ``help``), and start-up logs one
  ``dispatch.command_conflict`` warning naming both.

An interaction (a slash command, a click, a shortcut, a modal submission, an options request)
runs exactly one handler, chosen by :class:`gridbot.interactive.routing.InteractiveRoutes`; a
conflict between plugins follows the rule of commands (``dispatch.interaction_conflict``).

Message patterns are searched under each route's time budget (``match_timeout``): matching runs
on the event loop, and a pattern that backtracks catastrophically must cost its budget and one
``handler.match_timeout`` log event, not stall the daemon.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Sequence
from typing import Any

from gridbot.events import MENTION, Event
from gridbot.interactive.intake import Interactions
from gridbot.interactive.payload import FRAME_TYPE
from gridbot.interactive.routing import InteractiveRoutes
from gridbot.logs import get_logger
from gridbot.plugins import Plugin, Route

log = get_logger("gridbot.dispatch")

Match = tuple[Route, dict[str, Any]]  # a route and the keyword arguments its handler gets
_USER_SUBTYPES = (None, "thread_broadcast", "file_share")  # messages a person wrote


class Router:
    """The routes of the loaded plugins, and :meth:`match`, which picks those an event runs.

    ``bot_user_ids`` is a live view of our bots' user ids (``@bot name`` is a command only when
    the mention is one of them); it may grow after the router is made. ``interactions`` holds the
    pending acks of interactive payloads (without it, they are not routed).
    """

    def __init__(
        self,
        plugins: Sequence[Plugin],
        *,
        command_prefix: str,
        bot_user_ids: Collection[str],
        interactions: Interactions | None = None,
    ) -> None:
        self.command_prefix = command_prefix
        self._bot_user_ids = bot_user_ids
        self._match_timeouts = 0
        self._commands: dict[str, Route] = {}  # command name -> the route that owns it
        routes: list[Route] = []
        for route in (r for p in plugins for r in p.routes):
            if route.kind == "command" and route.command is not None:
                owner = self._commands.setdefault(route.command, route)
                if owner is not route:
                    log.warning(
                        "dispatch.command_conflict",
                        command=route.command,
                        plugins=[owner.plugin, route.plugin],
                        handlers=[owner.name, route.name],  # the owner's first
                    )
                    continue
            routes.append(route)
        self.interactive = InteractiveRoutes((r for r in routes if r.kind == "interactive"), interactions)
        interactive = set(map(id, self.interactive.routes))
        routes = [r for r in routes if r.kind != "interactive" or id(r) in interactive]
        self.routes: tuple[Route, ...] = tuple(routes)  # every routed one (what ``help`` lists)
        self._events = tuple(r for r in self.routes if r.kind != "interactive")

    @property
    def match_timeouts(self) -> int:
        """Pattern searches that ran out of their budget (message and interactive routes)."""
        return self._match_timeouts + self.interactive.match_timeouts

    def match(self, event: Event) -> list[Match]:
        """The routes ``event`` runs, in the plugins' order, with their handlers' arguments."""
        if event.type == FRAME_TYPE:
            return self.interactive.match(event)
        found: list[Match] = []
        is_user_message = event.type == "message" and event.subtype in _USER_SUBTYPES
        command: Match | None = None
        commanded = None  # the plugin whose command this message invokes: its patterns stay quiet
        if self._commands and is_user_message and event.bot_id is None:
            command = self._command(event)
            if command is not None:
                commanded = command[0].plugin
        for route in self._events:
            kind = route.kind
            if kind == "event":
                if route.event_type == event.type:
                    found.append((route, {}))
            elif kind == "message":
                if (
                    is_user_message
                    and route.plugin != commanded
                    and (event.bot_id is None or route.include_bots)
                ):
                    groups = self._search(route, event)
                    if groups is not None:
                        found.append((route, _arguments(route, groups)))
            elif command is not None and route is command[0]:
                found.append(command)
        return found

    def _search(self, route: Route, event: Event) -> dict[str, Any] | None:
        """The pattern's named groups if it matches, within the route's time budget."""
        try:
            m = route.pattern.search(event.text, timeout=route.match_timeout)
        except TimeoutError:
            self._match_timeouts += 1
            log.error(
                "handler.match_timeout",
                plugin=route.plugin,
                handler=route.name,
                team_id=event.team_id,
                channel=event.channel,
                ts=event.ts,
                timeout_s=route.match_timeout,
            )
            return None
        return None if m is None else dict(m.groupdict())

    def _command(self, event: Event) -> Match | None:
        """The routed command ``@bot name ...``, ``<prefix>name ...`` or (in a DM) ``name ...``
        invokes, with ``args`` (the words, quotes respected) and ``text`` (the rest as typed)."""
        text = event.text.strip()
        mention = MENTION.match(text)
        if mention and mention.group(1) in self._bot_user_ids:
            text = text[mention.end() :].lstrip(" ,:")
        elif self.command_prefix and text.startswith(self.command_prefix):
            text = text[len(self.command_prefix) :]
        elif not _is_direct(event):
            return None
        parts = text.split(maxsplit=1)
        route = self._commands.get(parts[0].lower()) if parts else None
        if route is None:
            return None
        rest = parts[1].strip() if len(parts) > 1 else ""
        try:
            words = shlex.split(rest)
        except ValueError:  # an unbalanced quote: fall back to plain words
            words = rest.split()
        return route, _arguments(route, {"args": words, "text": rest})


def _is_direct(event: Event) -> bool:
    """A one-to-one conversation with the bot: no mention or prefix needed there."""
    return event.raw.get("channel_type") == "im" or (event.channel or "").startswith("D")


def _arguments(route: Route, offered: dict[str, Any]) -> dict[str, Any]:
    """What the handler declared (checked at load): a group that did not take part is left out,
    unless the handler has no default for it."""
    wanted = offered.keys() if route.params is None else route.params
    return {k: v for k, v in offered.items() if k in wanted and (v is not None or k in route.required)}
