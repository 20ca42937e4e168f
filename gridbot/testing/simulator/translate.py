"""The user ID translation layer: which id one team sees for one user, in fields and in text.

enterprise-grid-developer-guide.txt, "A translation layer for the Enterprise Grid" and "User IDs":
with the layer on for an app, events use a user's legacy (team-specific ``U``) id in the team that
id belongs to and carry ``user_id_mapping_old_to_new``, mentions in the text included (the guide's
example maps both the author and ``<@U2EBP618A|mrtulley>``); "We'll automatically convert
references to a user's Enterprise ID to their legacy team-specific ID", so Web API answers use the
same ids. A legacy id is "unique only to a team": it resolves in its own team and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import Topology, User

#: ``<@W123>`` or ``<@U123|label>`` in message text.
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(\|[^>]*)?>")


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the receiving or calling team, through an app with or without the layer."""

    team: str
    translate: bool = False

    def user_id(self, user: User) -> str:
        if self.translate:
            return user.legacy_ids.get(self.team, user.id)
        return user.id


def resolve_user(topo: Topology, user_id: str, team: str | None) -> User | None:
    """The user behind ``user_id`` as ``team`` names them: a ``W`` id anywhere, a legacy id only
    in its own team (``team`` None: any team, for the simulator's own Python API)."""
    user = topo.user_by_id.get(user_id)
    if user is None or user.id == user_id or team is None:
        return user
    return user if user.legacy_ids.get(team) == user_id else None


def render_text(topo: Topology, text: str, viewer: Viewer, mapping: dict[str, str]) -> str:
    """``text`` as ``viewer`` sees it; every id it translated is added to ``mapping`` (old to new)."""
    if not viewer.translate or "<@" not in text:
        return text

    def swap(m: re.Match[str]) -> str:
        user = topo.user_by_id.get(m.group(1))
        if user is None or user.id != m.group(1):
            return m.group(0)
        shown = viewer.user_id(user)
        if shown != user.id:
            mapping[shown] = user.id
        return f"<@{shown}{m.group(2) or ''}>"

    return MENTION.sub(swap, text)


def canonical_text(topo: Topology, text: str, team: str) -> str:
    """Text written through ``team``'s token, stored with enterprise ids (legacy ids of ``team``
    resolved), so that every other team can be shown its own ids."""
    if "<@" not in text:
        return text

    def swap(m: re.Match[str]) -> str:
        user = resolve_user(topo, m.group(1), team)
        return m.group(0) if user is None else f"<@{user.id}{m.group(2) or ''}>"

    return MENTION.sub(swap, text)
