"""Helpers for the org-wide install tests: the simulator with an org-ready app, its install, the
config, and what the bot answered where."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from gridtest import grid_config

from gridbot.config import Config, EventsConfig, OAuthConfig, replace
from gridbot.installs import Install, InstallStore
from gridbot.runtime import Runtime
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator, RateLimits
from gridbot.testing.simulator import App, Conversation, default_topology
from gridbot.testing.simulator.org_installs import OrgInstall

T1, T2, T3 = "T0TEAM001", "T0TEAM002", "T0TEAM003"
ORG_APP = "A0ORGBOT01"
ORG_APP_TOKEN = "xapp-sim-A0ORGBOT01"
ORG_SECRET = "5e1f0c0ffee4b00c2a9d8e7f6a5b4c3d"  # the app's signing secret (Events API)
OWN = {T1: "C0ONE0001", T2: "C0TWO0001", T3: "C0THREE01"}  # a channel of each workspace alone
SHARED = "C0SHARED1"  # Team One and Team Two (their bots are members)
WRITER = {T1: "W0ALICE01", T2: "W0BOB0001", T3: "W0CAROL01"}


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    topo = default_topology()
    topo = dataclasses.replace(topo, apps=(*topo.apps, App(ORG_APP, "orgbot", app_token=ORG_APP_TOKEN)))
    async with GridSimulator(topology=topo, seed=1919, rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def org_install(sim: GridSimulator, store: InstallStore, grant: tuple[str, ...]) -> OrgInstall:
    """The app installed org-wide and ``grant`` granted; the channels each workspace has alone;
    the installation stored as gridbot's OAuth flow stores it."""
    org = sim.org_installs.install(ORG_APP, grant=grant)
    for team, channel in OWN.items():
        if channel not in sim.topology.conversation_by_id:
            members = (WRITER[team],)
            conv = Conversation(channel, "channel", (team,), team, members, (team,), f"own-{team}")
            await sim.org.create_channel(conv)
    enterprise = sim.topology.enterprise.id
    install = Install(enterprise, None, True, Secret(org.token), org.bot_id, org.bot_user_id, ORG_APP)
    await store.put(install)
    return org


def org_config(
    sim: GridSimulator, redis_url: str, prefix: str, static: dict[str, str], *, http: bool = False
) -> Config:
    """The org app's ``[oauth]``: over Socket Mode, or (``http``) the Events API on a free port."""
    client = sim.oauth.register(ORG_APP)
    base = grid_config(sim, static, redis_url=redis_url, key_prefix=prefix)
    oauth = OAuthConfig(
        client_id=client.client_id,
        client_secret=Secret(client.client_secret),
        scopes=("chat:write", "channels:history"),
        redirect_url="http://127.0.0.1:9/slack/oauth_redirect",
        transport="http" if http else "socket_mode",
        app_token=None if http else Secret(ORG_APP_TOKEN),
        signing_secret=Secret(ORG_SECRET) if http else None,
        watch_interval=0.2,  # the workspaces are listed again every 6 s (30 looks)
    )
    if http:
        return replace(base, oauth=oauth, events=EventsConfig(port=0))
    return replace(base, oauth=oauth)


def answers(sim: GridSimulator, text: str) -> list[str | None]:
    """The workspaces whose bot answered ``echo <text>`` (one entry per answer)."""
    return [p.team_id for p in sim.posted if p.text == text]


async def say(sim: GridSimulator, team: str, channel: str, text: str) -> None:
    await sim.post_message(user=WRITER[team], channel=channel, text=f"echo {text}")


def workspaces(runtimes: list[Runtime]) -> list[str] | None:
    """What ``gridbot status`` lists as the org install's workspaces, when every process agrees."""
    rows = [r for rt in runtimes if rt.installs for r in rt.installs.live.rows() if r["org_wide"]]
    seen = {tuple(r["workspaces"] or ()) for r in rows}
    return list(seen.pop()) if len(seen) == 1 and len(rows) == len(runtimes) else None
