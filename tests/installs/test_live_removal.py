"""A dead installation whose removal the store refuses (Redis away) is removed on a later look,
and the refusal never reaches the caller (the elector, which called it for a lifecycle event)."""

from __future__ import annotations

from installs.livekit import OFFLINE_OAUTH

from gridbot.config import TeamConfig
from gridbot.installs import Install, MemoryInstallStore
from gridbot.installs.live import LiveInstalls
from gridbot.secrets import Secret
from gridbot.team import Team, TeamState

OAUTH = OFFLINE_OAUTH


class OneTeam:
    """The supervisor's side: serves what it is given as one team, which a test can stop."""

    def __init__(self) -> None:
        self.teams: dict[int, Team] = {}

    def configure(self, config: TeamConfig, index: int) -> None:
        self.teams[id(config)] = Team(index=index, config=config, team_id="T0TEAM003")

    def retoken(self, old: TeamConfig, new: TeamConfig) -> None: ...

    async def unconfigure(self, config: TeamConfig) -> None:
        self.teams.pop(id(config), None)

    def teams_of(self, config: TeamConfig) -> list[Team]:
        team = self.teams.get(id(config))
        return [team] if team is not None else []


class FlakyStore(MemoryInstallStore):
    def __init__(self) -> None:
        super().__init__()
        self.refusals = 1

    async def remove_if(self, install: str, token: Secret) -> bool:
        if self.refusals:
            self.refusals -= 1
            raise ConnectionError("redis away")
        return await super().remove_if(install, token)


async def test_a_refused_removal_is_retried_by_the_watcher() -> None:
    store, served = FlakyStore(), OneTeam()
    await store.put(Install(None, "T0TEAM003", False, Secret("xoxb-installed-token")))
    live = LiveInstalls(store, OAUTH, served)
    await live.tick()
    [team] = list(served.teams.values())
    team.state, team.error = TeamState.STOPPED, "app_uninstalled"  # Supervisor.retire did this

    await live.dead("T0TEAM003", "app_uninstalled")  # the store refuses: no exception here
    assert await store.ids() == ["team:T0TEAM003"]
    await live.tick()  # the next look removes it, and drops the team
    assert await store.ids() == []
    assert served.teams == {}


async def test_a_refused_refresh_stops_serving_the_installation_and_status_still_lists_it() -> None:
    store, served = MemoryInstallStore(), OneTeam()
    refresh = Secret("xoxe-1-refresh-token-0")
    await store.put(
        Install(None, "T0TEAM003", False, Secret("xoxe.xoxb-1-token-0"), refresh_token=refresh, expires_at=1)
    )
    live = LiveInstalls(store, OAUTH, served)
    await live.tick()
    assert len(served.teams) == 1
    assert await store.fail_refresh("team:T0TEAM003", refresh, "invalid_refresh_token")  # another process
    await live.tick()
    assert served.teams == {}
    [row] = live.rows()
    assert (row["id"], row["failed"], row["served"]) == ("team:T0TEAM003", "invalid_refresh_token", False)
