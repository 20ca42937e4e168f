"""What gridbot knows about one team, as its links and health checks see it, and the states it can be in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from gridbot.config import TeamConfig


class TeamState(StrEnum):
    """Every state a team, or a link serving it, can be in. A team's state is its best link's."""

    STARTING = "starting"  # configured; auth.test not answered yet
    CONNECTING = "connecting"  # authenticated; its socket is not up yet
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    PAUSED = "paused"  # a Grid migration: re-probed every runtime.paused_probe_interval
    STOPPED = "stopped"  # a dead token: needs an operator
    DISABLED = "disabled"  # Socket Mode switched off for the app: needs an operator
    REMOVED = "removed"  # no longer served by this process (config reload, ownership moved)

    @property
    def final(self) -> bool:
        """Waiting will not change it: an operator must act, or the team is no longer served here."""
        return self in _FINAL


_FINAL: Final = frozenset({TeamState.STOPPED, TeamState.DISABLED, TeamState.REMOVED})

# A team's state is its best link's (any connected socket serves it): the order of preference.
_BEST: Final = (
    TeamState.CONNECTED,
    TeamState.RECONNECTING,
    TeamState.STARTING,
    TeamState.PAUSED,
    TeamState.DISABLED,
    TeamState.STOPPED,
)


def best_state(link_states: Iterable[TeamState]) -> TeamState:
    """The state of a team served by links in ``link_states`` (none yet: starting)."""
    return min(link_states, key=_BEST.index, default=TeamState.STARTING)


# Every state, in lifecycle order: the metrics export one sample per team and state.
TEAM_STATES: Final[tuple[TeamState, ...]] = tuple(TeamState)


@dataclass
class Team:
    """One configured team. Filled in by ``auth.test`` (a workspace of an org-wide install has
    its team id preset: :attr:`TeamConfig.workspace`); mutated only by its supervisor."""

    index: int  # position in the config's [[teams]]
    config: TeamConfig
    team_id: str = ""
    enterprise_id: str | None = None
    bot_user_id: str = ""
    bot_id: str = ""
    state: TeamState = TeamState.STARTING
    error: str | None = None
    last_event_at: float | None = None

    def __post_init__(self) -> None:
        if self.config.workspace is not None:
            self.team_id = self.config.workspace

    @property
    def org_wide(self) -> bool:
        """Served by an org-wide installation's token, in a workspace the org admin granted."""
        return self.config.workspace is not None

    @property
    def installation(self) -> str:
        """Which installation serves the team (the store's name for it, gridbot.installs.model):
        ``org:<enterprise>`` for a workspace of an org-wide install, else ``team:<team>``."""
        if self.org_wide and self.enterprise_id:
            return f"org:{self.enterprise_id}"
        return f"team:{self.team_id}"

    @property
    def label(self) -> str:
        return self.team_id or f"teams[{self.index}]"

    def __repr__(self) -> str:  # never the config's tokens, even though Secret would mask them
        return f"Team({self.label}, state={self.state})"
