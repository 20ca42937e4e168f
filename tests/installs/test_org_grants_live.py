"""``team_access_granted`` in the installs: one listing for a burst of grants, the other processes
told through the store's version, and a grant for an org install we do not hold dropped with one
line (``install.grant_dropped``) and no call to Slack."""

from __future__ import annotations

from installs.livekit import OFFLINE_OAUTH
from structlog.testing import capture_logs

from gridbot.config import TeamConfig
from gridbot.installs import Install, MemoryInstallStore
from gridbot.installs.live import LiveInstalls
from gridbot.secrets import Secret
from gridbot.team import Team, TeamState

E = "E0GRID001"
T1, T2, T3 = "T0TEAM001", "T0TEAM002", "T0TEAM003"
OAUTH = OFFLINE_OAUTH


class Served:
    """The supervisor's side: a team per configured workspace."""

    def __init__(self) -> None:
        self.teams: list[Team] = []

    def configure(self, config: TeamConfig, index: int) -> None:
        self.teams.append(Team(index, config, enterprise_id=E, state=TeamState.CONNECTED))

    def retoken(self, old: TeamConfig, new: TeamConfig) -> None: ...

    async def unconfigure(self, config: TeamConfig) -> None:
        self.teams = [t for t in self.teams if t.config is not config]

    def teams_of(self, config: TeamConfig) -> list[Team]:
        return [t for t in self.teams if t.config is config]


class Granted:
    """``auth.teams.list``: what the org admin granted so far, and how often it was asked."""

    def __init__(self, *teams: str) -> None:
        self.teams = list(teams)
        self.calls = 0
        self.refuse = False  # answer ``ratelimited``

    async def __call__(self, token: Secret) -> list[str]:
        self.calls += 1
        if self.refuse:
            raise RuntimeError("ratelimited")
        return list(self.teams)


async def _live(listing: Granted) -> tuple[LiveInstalls, MemoryInstallStore, Served]:
    store, served = MemoryInstallStore(), Served()
    await store.put(Install(E, None, True, Secret("xoxb-org-token")))
    live = LiveInstalls(store, OAUTH, served, listing=listing, relist_interval=3600.0)
    await live.tick()  # first seen: listed
    return live, store, served


async def test_a_burst_of_grants_is_one_listing_and_one_announcement() -> None:
    listing = Granted(T1)
    live, store, served = await _live(listing)
    assert [t.team_id for t in served.teams] == [T1]
    version, calls = await store.version(), listing.calls
    listing.teams += [T2, T3]
    with capture_logs() as logs:
        live.granted(E, [T2])
        live.granted(E, [T3])
        await live.tick()
    assert [t.team_id for t in served.teams] == [T1, T2, T3]
    assert listing.calls == calls + 1
    assert await store.version() == version + 1  # the other processes list theirs now
    lines = [(e["team_id"], e["via"], e["enterprise_id"]) for e in logs if e["event"] == "install.workspace_served"]
    assert lines == [(T2, "team_access_granted", E), (T3, "team_access_granted", E)]
    await live.tick()  # its own announcement is not news to it: no second listing
    assert listing.calls == calls + 1


async def test_a_grant_for_an_org_install_we_do_not_hold_is_dropped_with_one_line() -> None:
    listing = Granted(T1)
    live, store, served = await _live(listing)
    version, calls = await store.version(), listing.calls
    with capture_logs() as logs:
        live.granted("E0OTHER01", [T2])
        await live.tick()
    assert [(e["event"], e["reason"], e["enterprise_id"]) for e in logs if e["log_level"] == "warning"] == [
        ("install.grant_dropped", "unknown_installation", "E0OTHER01")
    ]
    assert (listing.calls, await store.version()) == (calls, version)
    assert [t.team_id for t in served.teams] == [T1]


async def test_a_grant_whose_listing_fails_waits_for_the_next_look_and_tells_nobody_meanwhile() -> None:
    """``auth.teams.list`` answered ``ratelimited`` (a burst of grants): nothing was learnt, so the
    grant stays due (the next look lists again at once, not at the hour's relist) and the other
    processes are not sent to list for nothing."""
    listing = Granted(T1)
    live, store, served = await _live(listing)
    version = await store.version()
    listing.teams.append(T2)
    listing.refuse = True
    live.granted(E, [T2])
    await live.tick()
    assert [t.team_id for t in served.teams] == [T1]
    assert await store.version() == version
    listing.refuse = False
    with capture_logs() as logs:
        await live.tick()
    assert [t.team_id for t in served.teams] == [T1, T2]
    assert [e["via"] for e in logs if e["event"] == "install.workspace_served"] == ["team_access_granted"]
    assert await store.version() == version + 1
