"""What gridbot knows about one installation (team), as its links and health checks see it."""

from __future__ import annotations

from dataclasses import dataclass

from gridbot.config import TeamConfig


@dataclass
class Team:
    """One configured installation. Filled in by ``auth.test``; mutated only by its supervisor."""

    index: int  # position in the config's [[teams]]
    config: TeamConfig
    team_id: str = ""
    team_name: str = ""
    enterprise_id: str | None = None
    bot_user_id: str = ""
    bot_id: str = ""
    state: str = "starting"
    error: str | None = None
    last_event_at: float | None = None

    @property
    def label(self) -> str:
        return self.team_id or f"teams[{self.index}]"

    def __repr__(self) -> str:  # never the config's tokens, even though Secret would mask them
        return f"Team({self.label}, state={self.state})"
