"""Facts: the events that change who can answer in a conversation, recognised in one place.

Each enters like any event (``Intake.offer`` -> the decider), is never merged on arrival, and is
turned into a :class:`Fact` here, by :func:`fact_of`; the decider applies the facts of a batch
(:meth:`gridbot.election.Elector.apply`) before it decides the batch's other events, and then
decides these events too, so handlers still see them.

Where each comes from (``/work/shared/reference/slack-protocol-notes.md`` section A):

* ``channel_joined`` / ``group_joined`` (RTM, to the bot that joined) and ``member_joined_channel``
  whose ``user`` is one of our bots: a team joined; an election is ensured.
* ``channel_left`` / ``group_left`` (RTM, to the bot that left or was removed): that team left.
* ``member_left_channel`` whose ``user`` is one of our bots (every member team sees it): the
  team(s) of that bot left.
* ``channel_unshared``: ``previously_connected_team_id`` (a team, or an ``E`` org id) left.
* ``app_uninstalled``, and ``tokens_revoked`` listing one of our bot users: the team is gone
  everywhere (protocol notes H: "stop the team").
* ``team_access_revoked`` (``{"team_ids": [...]}``, protocol notes D): an org admin took the
  org-wide install's access to those workspaces away: they are gone, their teams stopped.
* ``team_access_granted`` (the same shape): an org admin granted those workspaces; they answer
  once the installation serves them (the installs list the org install's workspaces at once).
* :data:`TOKEN_DEAD`: gridbot's own, offered by the supervisor when a Web API call of a team was
  answered ``token_revoked`` / ``invalid_auth`` / ``account_inactive``: as ``app_uninstalled``.
* :data:`TEAM_STOPPED`: gridbot's own, offered by the supervisor when a team stops for good (a
  dead token, Socket Mode disabled, removed from the config): gone everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gridbot.bots import Bots
from gridbot.events import Event

# The type of the event the supervisor offers when one of its teams stops for good.
TEAM_STOPPED = "gridbot.team_stopped"
# ... and when a Web API call of a team was answered that its token is dead (``reason``: the error).
TOKEN_DEAD = "gridbot.token_dead"
# Slack's own: their ``event_time`` (copied in by the transport) is when the token died. One older
# than the team's current authentication speaks of an installation that is no longer there.
LIFECYCLE_TYPES = frozenset({"app_uninstalled", "tokens_revoked"})

JOIN_TYPES = frozenset({"channel_joined", "group_joined", "member_joined_channel"})
LEAVE_TYPES = frozenset({"channel_left", "group_left", "member_left_channel", "channel_unshared"})
GONE_TYPES = LIFECYCLE_TYPES | {"team_access_revoked", TEAM_STOPPED, TOKEN_DEAD}
GRANTED = "team_access_granted"
# Looked at alone, before their batch is decided: never merged on arrival.
FACT_TYPES = JOIN_TYPES | LEAVE_TYPES | GONE_TYPES | {GRANTED}
# Sent only to the bot they are about: no other team gets a copy, so one is claimed for the team
# that received it, never held as a standby copy for another team's copy that never comes. Notes A:
# ``channel_joined``/``group_joined`` are "sent to *your own* socket when you join"; the leaving
# bot's ``channel_left``/``group_left`` likewise (docs.slack.dev/reference/events/channel_left,
# "You left a channel"), the other members seeing ``member_left_channel`` (the simulator's org.py).
SOLO_TYPES = frozenset({"channel_joined", "group_joined", "channel_left", "group_left"})
# Facts that name a bot user: one we cannot place may be served by another process (the roster).
NAMES_A_BOT = frozenset({"member_left_channel"})


def timed(event: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` as the fact will see it: a lifecycle event carries its envelope's ``event_time``
    (Socket Mode and the Events API alike; other events are returned as they are)."""
    kind = event.get("type")  # (a hostile frame's may be a list: unhashable, not a lifecycle type)
    if type(kind) is str and kind in LIFECYCLE_TYPES and "event_time" in payload:
        return {**event, "event_time": payload["event_time"]}
    return event


class Kind(StrEnum):
    JOIN = "join"  # ``teams`` joined ``channel``: elect there if nobody is
    LEAVE = "leave"  # ``teams`` (ids of teams or of orgs) can no longer answer in ``channel``
    GONE = "gone"  # ``teams`` can no longer answer anywhere
    GRANT = "grant"  # ``teams`` were granted to the org install of ``org``: serve them


@dataclass(frozen=True, slots=True)
class Fact:
    kind: Kind
    teams: frozenset[str]
    channel: str | None  # None for GONE
    reason: str  # the event type (``team_stopped`` for TEAM_STOPPED): the election's reason
    via: str  # the team that received the event
    stop: bool = False  # Slack says the team's tokens are dead: the supervisor must stop it
    at: float | None = None  # a lifecycle event's ``event_time``: when Slack says it happened
    org: str | None = None  # a grant's enterprise id (its org install's)


def fact_of(event: Event, bots: Bots) -> Fact | None:
    """What ``event`` (one of :data:`FACT_TYPES`) says about who can answer where, if anything.

    A fact naming a bot user that no team of the roster has returns None (the caller refreshes
    the roster and asks again for :data:`NAMES_A_BOT`): a bot that is not ours.
    """
    kind, via, channel, raw = event.type, event.team_id, event.channel, event.raw
    if kind in ("channel_joined", "group_joined"):
        return Fact(Kind.JOIN, frozenset({via}), channel, kind, via) if channel else None
    if kind == "member_joined_channel":
        if not channel or event.user not in bots.user_ids:
            return None
        return Fact(Kind.JOIN, frozenset(bots.teams_of(event.user) | {via}), channel, kind, via)
    if kind in ("channel_left", "group_left"):
        return Fact(Kind.LEAVE, frozenset({via}), channel, kind, via) if channel else None
    if kind == "member_left_channel":
        teams = bots.teams_of(event.user)
        return Fact(Kind.LEAVE, frozenset(teams), channel, kind, via) if channel and teams else None
    if kind == "channel_unshared":
        gone = raw.get("previously_connected_team_id")
        if not channel or not isinstance(gone, str) or not gone:
            return None
        return Fact(Kind.LEAVE, frozenset({gone}), channel, kind, via)
    at = raw.get("event_time")
    at = float(at) if isinstance(at, int | float) and kind in LIFECYCLE_TYPES else None
    if kind == "app_uninstalled":
        return Fact(Kind.GONE, frozenset({via}), None, kind, via, stop=True, at=at)
    if kind == "tokens_revoked":
        tokens = raw.get("tokens")
        revoked = tokens.get("bot") if isinstance(tokens, dict) else None
        if not isinstance(revoked, list) or not revoked:
            return None  # user tokens only: the bot still answers
        bots_of: set[str] = set()
        for user in revoked:
            bots_of |= bots.teams_of(user)
        # The event is delivered for the installation whose tokens were revoked.
        return Fact(Kind.GONE, frozenset(bots_of or {via}), None, kind, via, stop=True, at=at)
    if kind == "team_access_revoked":  # an org install's workspaces, no longer granted
        revoked = _team_ids(raw.get("team_ids"))
        return Fact(Kind.GONE, revoked, None, kind, via, stop=True) if revoked else None
    if kind == GRANTED:
        granted = _team_ids(raw.get("team_ids"))
        return Fact(Kind.GRANT, granted, None, kind, via, org=event.enterprise_id) if granted else None
    if kind == TEAM_STOPPED:
        return Fact(Kind.GONE, frozenset({via}), None, "team_stopped", via)
    if kind == TOKEN_DEAD:  # a Web API answer said so: stopped like app_uninstalled
        return Fact(Kind.GONE, frozenset({via}), None, str(raw.get("reason") or kind), via, stop=True)
    return None


def _team_ids(value: object) -> frozenset[str]:
    """The team ids of a ``team_ids`` list (strings, as Slack sends them); anything else in it is
    left out: ``str()`` of a hostile value, say a 1,000-deep array, raises."""
    return frozenset(t for t in value if type(t) is str and t) if isinstance(value, list) else frozenset()
