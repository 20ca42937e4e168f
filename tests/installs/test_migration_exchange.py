"""Grid migration: legacy user ids a plugin stored before its workspace joined the org, translated
with ``migration.exchange`` (platform-2026.md: "at most 400 ids per call, ``to_old`` for the
reverse"), cached on the directory the context already has (``ctx.users``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.directory import Directory
from gridbot.testing import GridSimulator, RateLimits

T2 = "T0TEAM002"
BOB_LEGACY, BOB = "U0BOB0001", "W0BOB0001"  # Bob's id on Team 2 before it joined, and in the org


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


def client(sim: GridSimulator) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-sim-T0TEAM002", base_url=sim.api_url)


async def test_legacy_ids_are_translated_both_ways_and_asked_once(sim: GridSimulator) -> None:
    users = Directory()
    web = client(sim)
    assert await users.exchange(web, [BOB_LEGACY, "U0NOBODY1"], team_id=T2) == {BOB_LEGACY: BOB}
    assert await users.exchange(web, [BOB], team_id=T2, to_old=True) == {BOB: BOB_LEGACY}
    assert await users.exchange(web, [BOB_LEGACY, "U0NOBODY1"], team_id=T2) == {BOB_LEGACY: BOB}
    assert len(sim.calls_to("migration.exchange")) == 2  # the third was answered from the cache


async def test_more_than_400_ids_go_in_calls_of_400(sim: GridSimulator) -> None:
    ids = [BOB_LEGACY, *(f"U0X{n:06d}" for n in range(900))]
    found = await Directory().exchange(client(sim), ids, team_id=T2)
    assert found == {BOB_LEGACY: BOB}
    sizes = [len(c.args["users"].split(",")) for c in sim.calls_to("migration.exchange")]
    assert sizes == [400, 400, 101]


async def test_the_simulator_refuses_401_ids_and_another_workspaces_ids(sim: GridSimulator) -> None:
    web = client(sim)
    with pytest.raises(SlackApiError) as many:
        await web.api_call("migration.exchange", params={"users": ",".join(f"U{n}" for n in range(401))})
    assert many.value.response["error"] == "too_many_users"
    with pytest.raises(SlackApiError) as other:
        await web.api_call("migration.exchange", params={"users": BOB_LEGACY, "team_id": "T0TEAM001"})
    assert other.value.response["error"] == "team_access_not_granted"
