"""The simulator's org-wide installs, as an app sees them (platform-2026.md, "Org-ready apps";
slack-protocol-notes.md C and D): the org token acts in granted workspaces only, and names one;
``auth.teams.list`` pages through them; grants and revocations reach the app as events whose
authorization is the org install's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gridtest import T1, T2
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.installs.org import lister
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator, RateLimits

T3 = "T0TEAM003"
APP = "A0GRIDBOT1"


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(seed=7, rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def _error(call: object) -> str:
    try:
        await call  # type: ignore[misc]
    except SlackApiError as exc:
        return str(exc.response["error"])
    raise AssertionError("the call was not refused")


async def test_the_org_token_acts_only_in_a_granted_workspace_it_names(sim: GridSimulator) -> None:
    org = sim.org_installs.install(APP, grant=(T1,))
    client = AsyncWebClient(token=org.token, base_url=sim.api_url)
    who = await client.auth_test()
    assert (who["team_id"], who["is_enterprise_install"]) == (sim.topology.enterprise.id, True)
    assert (await client.auth_test(team_id=T1))["team_id"] == T1
    assert await _error(client.chat_postMessage(channel="C0ONE0001", text="hi")) == "missing_argument"
    assert await _error(client.auth_test(team_id=T2)) == "team_access_not_granted"
    await client.chat_postMessage(channel="C0ONE0001", text="hi", team_id=T1)
    assert [(p.team_id, p.text) for p in sim.posted] == [(T1, "hi")]
    await sim.org_installs.revoke(APP, T1)
    assert await _error(client.auth_test(team_id=T1)) == "team_access_not_granted"


async def test_auth_teams_list_pages_through_the_granted_workspaces(sim: GridSimulator) -> None:
    org = sim.org_installs.install(APP, grant=(T1, T2, T3))
    listing = lister(AsyncWebClient(base_url=sim.api_url), limit=1)
    assert await listing(Secret(org.token)) == [T1, T2, T3]
    listed = [c for c in sim.calls if c.method == "auth.teams.list"]
    assert len(listed) == 3  # one page each: the cursor is followed
    await sim.org_installs.revoke(APP, T2)
    assert await listing(Secret(org.token)) == [T1, T3]


async def test_grants_and_revocations_reach_the_app_with_the_org_installs_authorization(
    sim: GridSimulator,
) -> None:
    org = sim.org_installs.install(APP)
    await sim.org_installs.grant(APP, T2)
    await sim.org_installs.revoke(APP, T2)
    events = [p["event"] for p in org.sent]
    assert [(e["type"], e["team_ids"]) for e in events] == [
        ("team_access_granted", [T2]),
        ("team_access_revoked", [T2]),
    ]
    auth = org.sent[0]["authorizations"][0]
    assert (auth["team_id"], auth["is_enterprise_install"]) == (None, True)
