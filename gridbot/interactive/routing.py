"""Which handler answers an interactive payload: one, since a payload has one ack.

Routes are tried in the plugins' order (``plugins.enabled``), and within a plugin in the order
they were declared; the first whose :class:`~gridbot.plugins.Selector` matches answers. Two
plugins declaring the same exact selector (``/deploy``, ``action("approve")``) follow the rule
of commands: the first plugin owns it, the later handler is not routed, and start-up logs one
``dispatch.interaction_conflict`` warning naming both. Patterns are searched under the route's
time budget, as message patterns are.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from gridbot.events import Event
from gridbot.interactive.intake import Interactions
from gridbot.interactive.payload import SLASH, Interaction
from gridbot.logs import get_logger
from gridbot.plugins import Route, Selector

log = get_logger("gridbot.dispatch")

Match = tuple[Route, dict[str, Any]]


class InteractiveRoutes:
    """The interactive routes of the loaded plugins, by kind."""

    def __init__(self, routes: Iterable[Route], interactions: Interactions | None) -> None:
        self._interactions = interactions
        self.match_timeouts = 0
        self.routes: list[Route] = []
        self._by_kind: dict[str, list[Route]] = {}
        owners: dict[Selector, Route] = {}
        for route in routes:
            selector = route.selector
            if selector is None:
                continue
            if selector.exact:
                owner = owners.setdefault(selector, route)
                if owner is not route:
                    log.warning(
                        "dispatch.interaction_conflict",
                        selector=selector.label(),
                        plugins=[owner.plugin, route.plugin],
                        handlers=[owner.name, route.name],  # the owner's first
                    )
                    continue
            self.routes.append(route)
            self._by_kind.setdefault(selector.interaction, []).append(route)

    def match(self, event: Event) -> list[Match]:
        """The one route the payload behind ``event`` runs (none: it is acked empty now)."""
        if self._interactions is None:
            return []
        pending = self._interactions.get(event.event_id)
        if pending is None:  # its ack was settled already (a duplicate decided meanwhile)
            return []
        interaction = pending.interaction
        for route in self._by_kind.get(interaction.kind, ()):
            assert route.selector is not None
            if self._matches(route, route.selector, interaction):
                pending.route = route
                return [(route, _arguments(route, interaction))]
        self._interactions.unrouted(pending)
        return []

    def _matches(self, route: Route, selector: Selector, interaction: Interaction) -> bool:
        name = interaction.command if interaction.kind == SLASH else interaction.action_id
        if interaction.kind in ("shortcut", "message_action", "view_submission", "view_closed"):
            name = interaction.callback_id
        return self._id(route, selector.name, name) and self._id(
            route, selector.block_id, interaction.block_id
        )

    def _id(self, route: Route, wanted: Any, got: str | None) -> bool:
        if wanted is None:
            return True
        if got is None:
            return False
        if isinstance(wanted, str):
            return wanted == got
        try:
            return wanted.fullmatch(got, timeout=route.match_timeout) is not None
        except TimeoutError:
            self.match_timeouts += 1
            log.error(
                "handler.match_timeout",
                plugin=route.plugin,
                handler=route.name,
                timeout_s=route.match_timeout,
            )
            return False


def _arguments(route: Route, interaction: Interaction) -> dict[str, Any]:
    """The keyword arguments the handler declared (checked at load against what its kind offers)."""
    wanted = route.params
    offered: dict[str, Any] = {}
    if wanted is None or wanted:
        if interaction.kind == SLASH:
            try:
                words = shlex.split(interaction.text)
            except ValueError:
                words = interaction.text.split()
            offered = {"text": interaction.text, "args": words}
        elif interaction.kind == "block_actions":
            offered = {"value": interaction.value, "action": dict(interaction.action or {})}
        elif interaction.kind == "block_suggestion":
            offered = {"value": interaction.value if isinstance(interaction.value, str) else ""}
        elif interaction.kind == "message_action":
            offered = {"message": dict(interaction.message or {})}
        elif interaction.kind in ("view_submission", "view_closed"):
            offered = {"values": interaction.values, "metadata": interaction.private_metadata}
    return {k: v for k, v in offered.items() if wanted is None or k in wanted}
