"""What operations code reads of a running runtime, and the one per-team view built from it.

The runtime builds a :class:`RuntimeView` once its parts exist and hands it to the metrics, the
ops endpoint and the status publisher. They read counters and states through the protocols below
and never import :mod:`gridbot.runtime`, which imports them. Every protocol member is read-only:
nothing in operations code changes the daemon.

:func:`team_views` is the only place a team's row is built: the status document, ``/healthz``,
``/readyz`` and the metrics all show the same fields, computed the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gridbot.store import Store
from gridbot.team import Team, TeamState


class LinkCounts(Protocol):
    """One socket of a connection (a transport link)."""

    @property
    def reconnects(self) -> int: ...
    @property
    def frames_dropped(self) -> int: ...


class Connection(Protocol):
    """One connection: an RTM team, or a Socket Mode app token with every team installed through it."""

    @property
    def key(self) -> str: ...
    @property
    def teams(self) -> Sequence[Team]: ...
    @property
    def links(self) -> Sequence[LinkCounts]: ...


class DecisionCounts(Protocol):
    """What the dedup stage counted, by decision."""

    @property
    def handled(self) -> int: ...
    @property
    def duplicate(self) -> int: ...
    @property
    def standby(self) -> int: ...
    @property
    def rescued(self) -> int: ...
    @property
    def own_message(self) -> int: ...
    @property
    def dropped_overflow(self) -> int: ...
    @property
    def store_errors(self) -> int: ...
    @property
    def backpressure(self) -> int: ...


class Decisions(Protocol):
    """The dedup stage: its counts, whether it reaches the store, what it has not decided yet."""

    @property
    def counters(self) -> DecisionCounts: ...
    @property
    def store_ok(self) -> bool: ...
    @property
    def backlog(self) -> int: ...


class ElectionCounts(Protocol):
    """The elector: elections this process made, those it moved off a lapsed heartbeat, and
    every move it made by reason."""

    @property
    def elected(self) -> int: ...
    @property
    def takeovers(self) -> int: ...
    @property
    def moves(self) -> Mapping[str, int]: ...


class HandlerCounts(Protocol):
    @property
    def started(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def timed_out(self) -> int: ...
    @property
    def match_timeouts(self) -> int: ...


class Handlers(Protocol):
    """The dispatcher: handler runs counted, and how many run now."""

    @property
    def counters(self) -> HandlerCounts: ...
    @property
    def running(self) -> int: ...


class Lifecycle(Protocol):
    """Where the runtime is: started (when), or stopping."""

    @property
    def started_at(self) -> float | None: ...
    @property
    def started(self) -> bool: ...
    @property
    def stopping(self) -> bool: ...


class Installations(Protocol):
    """Where each team came from (``[[teams]]`` or the installation store) and the stored
    installations (``[oauth]``): ids, sources and expiry, never a token."""

    def source(self, team: Team) -> tuple[str, int | None]:
        """(``"config"`` or ``"oauth"``, when its token expires (Unix seconds) or None)."""

    def rows(self) -> list[dict[str, Any]]:
        """Every stored installation this process knows of."""

    def rotation(self) -> dict[str, int] | None:
        """This process's token refreshes (spent, failed, deferred, retried); None: rotation off."""


@dataclass(frozen=True)
class RuntimeView:
    """A running runtime as operations code sees it (read-only; built once the parts exist)."""

    instance_id: str
    store: Store
    lifecycle: Lifecycle
    connections: Callable[[], Iterable[Connection]]  # the connections this process serves now
    decisions: Decisions
    elector: ElectionCounts
    handlers: Handlers
    installs: Installations | None = None  # [oauth]: the installation store, served


@dataclass(frozen=True, slots=True)
class TeamView:
    """One served team as every operations surface shows it: ids, states, counts; never a token."""

    team_id: str | None  # None until auth.test answered
    label: str  # the team id, or teams[i] (its place in the config) before that
    name: str
    config_index: int
    connection: str  # the connection key
    enterprise_id: str | None
    transport: str
    state: str
    error: str | None
    last_event_at: float | None
    reconnects: int  # of the connection's sockets: shared by the teams of one app token
    frames_dropped: int
    source: str = "config"  # where the installation came from: "config" ([[teams]]) or "oauth"
    expires_at: int | None = None  # when its bot token expires (rotation on), Unix seconds

    @property
    def ready(self) -> bool:
        """Not holding readiness back: connected, or in a state waiting will not change."""
        return self.state == TeamState.CONNECTED or TeamState(self.state).final

    def pick(self, *fields: str) -> dict[str, Any]:
        """The named fields (``ready`` included) as a JSON-able dict."""
        return {f: getattr(self, f) for f in fields}


def team_views(connections: Iterable[Connection], installs: Installations | None = None) -> list[TeamView]:
    """Every team of ``connections``, in the order the supervisor holds them."""
    views = []
    for conn in list(connections):
        links = list(conn.links)
        reconnects = sum(lk.reconnects for lk in links)
        dropped = sum(lk.frames_dropped for lk in links)
        for team in list(conn.teams):
            source, expires_at = installs.source(team) if installs is not None else ("config", None)
            views.append(
                TeamView(
                    team_id=team.team_id or None,
                    label=team.label,
                    name=team.config.name,
                    config_index=team.index,
                    connection=conn.key,
                    enterprise_id=team.enterprise_id,
                    transport=team.config.transport,
                    state=team.state,
                    error=team.error,
                    last_event_at=team.last_event_at,
                    reconnects=reconnects,
                    frames_dropped=dropped,
                    source=source,
                    expires_at=expires_at,
                )
            )
    return views
