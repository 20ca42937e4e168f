"""Org-wide installs end to end: two Runtimes on one real Redis, the simulator as Slack.

One org token answers in every workspace an org admin granted (platform-2026.md, "Org-ready apps");
a revoked workspace stops being served at once and its elections move; granted again, it is
served again; next to a workspace install of another app, each message is answered once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
from gridtest import T1, T2, grid_config, wait_until
from installs.livekit import serving

from gridbot.config import OAuthConfig, replace
from gridbot.installs import Install, RedisInstallStore
from gridbot.runtime import Runtime
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator, RateLimits
from gridbot.testing.simulator import App, Conversation, default_topology
from gridbot.testing.simulator.org_installs import OrgInstall

T3 = "T0TEAM003"
ORG_APP = "A0ORGBOT01"
ORG_APP_TOKEN = "xapp-sim-A0ORGBOT01"
OWN = {T1: "C0ONE0001", T2: "C0TWO0001", T3: "C0THREE01"}  # a channel of each workspace alone
SHARED = "C0SHARED1"  # Team One and Team Two (their bots are members)
WRITER = {T1: "W0ALICE01", T2: "W0BOB0001", T3: "W0CAROL01"}


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    topo = default_topology()
    topo = dataclasses.replace(topo, apps=(*topo.apps, App(ORG_APP, "orgbot", app_token=ORG_APP_TOKEN)))
    async with GridSimulator(topology=topo, seed=1919, rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def _org_install(sim: GridSimulator, store: RedisInstallStore, grant: tuple[str, ...]) -> OrgInstall:
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


def _config(sim: GridSimulator, redis_url: str, prefix: str, static: dict[str, str]) -> object:
    client = sim.oauth.register(ORG_APP)
    base = grid_config(sim, static, redis_url=redis_url, key_prefix=prefix)
    oauth = OAuthConfig(
        client_id=client.client_id,
        client_secret=Secret(client.client_secret),
        scopes=("chat:write", "channels:history"),
        redirect_url="http://127.0.0.1:9/slack/oauth_redirect",
        transport="socket_mode",
        app_token=Secret(ORG_APP_TOKEN),
        watch_interval=0.2,  # the workspaces are listed again every 6 s (30 looks)
    )
    return replace(base, oauth=oauth)


def _answers(sim: GridSimulator, text: str) -> list[str | None]:
    """The workspaces whose bot answered ``echo <text>`` (one entry per answer)."""
    return [p.team_id for p in sim.posted if p.text == text]


async def _say(sim: GridSimulator, team: str, channel: str, text: str) -> None:
    await sim.post_message(user=WRITER[team], channel=channel, text=f"echo {text}")


def _workspaces(runtimes: list[Runtime]) -> list[str] | None:
    """What ``gridbot status`` lists as the org install's workspaces, when every process agrees."""
    rows = [r for rt in runtimes if rt.installs for r in rt.installs.live.rows() if r["org_wide"]]
    seen = {tuple(r["workspaces"] or ()) for r in rows}
    return list(seen.pop()) if len(seen) == 1 and len(rows) == len(runtimes) else None


async def test_an_org_install_answers_in_three_workspaces_and_a_revoked_one_stops_at_once(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    config = _config(sim, redis_url, redis_prefix, {})
    await _org_install(sim, store, grant=(T1, T2, T3))
    async with contextlib.AsyncExitStack() as stack:
        runtimes = [
            await stack.enter_async_context(Runtime(config, instance_id="proc-a")),  # type: ignore[arg-type]
            await stack.enter_async_context(Runtime(config, instance_id="proc-b")),  # type: ignore[arg-type]
        ]
        for team in (T1, T2, T3):  # one org token, a team per workspace, one process serving each
            await wait_until(lambda t=team: len(serving(runtimes, t)) == 1, 15, f"{team} served")
        await wait_until(lambda: _workspaces(runtimes) == [T1, T2, T3], 10, "status lists three")
        for team in (T1, T2, T3):
            await _say(sim, team, OWN[team], f"hello {team}")
        for team in (T1, T2, T3):  # each answered once, in its own workspace (team_id= on the call)
            await wait_until(lambda t=team: _answers(sim, f"hello {t}") == [t], 10, f"{team} answers")

        # The shared channel: one answer; the workspace that gave it is then revoked.
        await _say(sim, T1, SHARED, "shared before")
        await wait_until(lambda: len(_answers(sim, "shared before")) == 1, 10, "the shared channel answers")
        [elected] = _answers(sim, "shared before")
        assert elected in (T1, T2)
        other = T2 if elected == T1 else T1

        revoked_at = time.monotonic()
        await sim.org_installs.revoke(ORG_APP, elected)
        # team_access_revoked: no longer served, on no process, well before the next listing (6 s).
        await wait_until(lambda: not serving(runtimes, elected), 2, "the revoked workspace no longer served")
        stop_s = time.monotonic() - revoked_at
        await _say(sim, T1, SHARED, "shared after")
        # The election moved with the fact: the other workspace answers, at once.
        await wait_until(lambda: _answers(sim, "shared after") == [other], 3, "the election moved")
        answered_s = time.monotonic() - revoked_at
        await _say(sim, T3, OWN[T3], "three still")
        await _say(sim, elected, OWN[elected], "revoked own")
        await _say(sim, other, OWN[other], "marker")  # written after: answered after
        await wait_until(lambda: _answers(sim, "marker") == [other], 10, "the marker answered")
        await wait_until(lambda: _answers(sim, "three still") == [T3], 10, "Team Three keeps answering")
        assert _answers(sim, "revoked own") == []
        # The process that did not hear it lists the workspaces again at once (not in 6 s).
        rest = sorted({T1, T2, T3} - {elected})
        await wait_until(lambda: _workspaces(runtimes) == rest, 2, "every process lists two")
        print(f"\norg-wide revoke: not served after {stop_s:.2f} s, shared channel answered after {answered_s:.2f} s")

        await sim.org_installs.grant(ORG_APP, elected)  # granted again: found at the next listing
        await wait_until(lambda: len(serving(runtimes, elected)) == 1, 15, "served again")
        await _say(sim, elected, OWN[elected], "back again")
        await wait_until(lambda: _answers(sim, "back again") == [elected], 10, "answers again")
        await wait_until(lambda: _workspaces(runtimes) == [T1, T2, T3], 10, "status lists three again")
    await store.close()


def _apart(runtimes: list[Runtime]) -> bool:
    """Every process serving Team One's own installation lists only Team Two for the org install."""
    own = [rt for rt in runtimes if any(t.team_id == T1 and not t.org_wide for t in rt.supervisor.teams)]  # type: ignore[union-attr]
    return bool(own) and all([r["workspaces"] for r in rt.installs.live.rows()] == [[T2]] for rt in own)  # type: ignore[union-attr]


async def test_an_org_install_next_to_a_workspace_install_answers_each_message_once(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    """Team One has the app installed on its own (static, Socket Mode) and the org install of
    another app is granted Team One and Team Two: both apps get the shared channel's and Team
    One's messages, and Slack writes every envelope twice; each message is answered once."""
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    config = _config(sim, redis_url, redis_prefix, {T1: "socket_mode"})  # (before the org install's rows)
    await _org_install(sim, store, grant=(T1, T2))
    sim.duplicate(1.0, after=0.05)  # every envelope again, authorized for another install when there is one
    async with contextlib.AsyncExitStack() as stack:
        runtimes = [
            await stack.enter_async_context(Runtime(config, instance_id="proc-a")),  # type: ignore[arg-type]
            await stack.enter_async_context(Runtime(config, instance_id="proc-b")),  # type: ignore[arg-type]
        ]
        await wait_until(lambda: serving(runtimes, T1) and len(serving(runtimes, T2)) == 1, 15, "served")
        # The process serving Team One's own installation does not serve it again for the org
        # install (one team per workspace in a process): the org install serves Team Two there.
        await wait_until(lambda: _apart(runtimes), 10, "the org install's workspaces, beside Team One's own")
        for n in range(5):
            await _say(sim, T1, SHARED, f"shared {n}")
            await _say(sim, T1, OWN[T1], f"one {n}")
            await _say(sim, T2, OWN[T2], f"two {n}")
        await _say(sim, T2, OWN[T2], "marker")
        await wait_until(lambda: len(_answers(sim, "marker")) == 1, 10, "the marker answered")
        for what in ("shared", "one", "two"):
            await wait_until(lambda w=what: all(_answers(sim, f"{w} {n}") for n in range(5)), 10, f"{what} answered")
        for n in range(5):
            assert len(_answers(sim, f"shared {n}")) == 1
            assert _answers(sim, f"one {n}") == [T1]
            assert _answers(sim, f"two {n}") == [T2]
    await store.close()
