"""The simulator's interactivity is not kinder than Slack (platform-2026.md, "Interactivity"):
a trigger_id lives 3 s and is spent once, a modal holds 3 views, a response_url takes 5 posts,
and an envelope not acked in time fails for the user; an ack after that counts for nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing.simulator import GridSimulator

VIEW = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(ack_timeout=0.3) as simulator:
        yield simulator


async def raw_socket(sim: GridSimulator, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    """An app's Socket Mode socket, read by hand (no runtime: nothing acks unless the test does)."""
    client = AsyncWebClient(base_url=sim.api_url)
    opened = await client.apps_connections_open(app_token="xapp-sim-A0GRIDBOT1")
    ws = await session.ws_connect(str(opened["url"]))
    assert orjson.loads((await ws.receive()).data)["type"] == "hello"
    return ws


def bot(sim: GridSimulator, team: str = "T0TEAM001") -> AsyncWebClient:
    return AsyncWebClient(token=f"xoxb-sim-{team}", base_url=sim.api_url)


async def test_a_trigger_id_expires_after_3_s_and_is_spent_once(sim: GridSimulator) -> None:
    views = sim.interactivity.views
    late = views.issue("A0GRIDBOT1", "W0ALICE01", "T0TEAM001")
    views.triggers[late].issued -= 3.01  # issued 3.01 s ago
    with pytest.raises(SlackApiError) as expired:
        await bot(sim).views_open(trigger_id=late, view=VIEW)
    assert expired.value.response["error"] == "expired_trigger_id"
    fresh = views.issue("A0GRIDBOT1", "W0ALICE01", "T0TEAM001")
    opened = await bot(sim).views_open(trigger_id=fresh, view=VIEW)
    assert opened["view"]["app_installed_team_id"] == "T0TEAM001"
    with pytest.raises(SlackApiError) as spent:
        await bot(sim).views_open(trigger_id=fresh, view=VIEW)
    assert spent.value.response["error"] == "exchanged_trigger_id"


async def test_a_modal_holds_three_views(sim: GridSimulator) -> None:
    views, client = sim.interactivity.views, bot(sim)
    await client.views_open(trigger_id=views.issue("A0GRIDBOT1", "W0ALICE01", "T0TEAM001"), view=VIEW)
    for _ in range(2):
        await client.views_push(trigger_id=views.issue("A0GRIDBOT1", "W0ALICE01", "T0TEAM001"), view=VIEW)
    with pytest.raises(SlackApiError) as full:
        await client.views_push(trigger_id=views.issue("A0GRIDBOT1", "W0ALICE01", "T0TEAM001"), view=VIEW)
    assert full.value.response["error"] == "push_limit_reached"
    top = views.top("W0ALICE01")
    assert top is not None
    with pytest.raises(SlackApiError) as stale:
        await client.views_update(view_id=top["id"], view=VIEW, hash="stale")
    assert stale.value.response["error"] == "hash_conflict"


async def test_a_response_url_takes_five_posts(sim: GridSimulator) -> None:
    app = sim.topology.app_by_id["A0GRIDBOT1"]
    url = sim.interactivity.responses.url(app, "W0ALICE01", "C0SHARED1", None)
    async with aiohttp.ClientSession() as session:
        for n in range(5):
            async with session.post(url, json={"text": f"answer {n}"}) as response:
                assert response.status == 200
        async with session.post(url, json={"text": "one too many"}) as response:
            assert (response.status, (await response.json())["error"]) == (404, "used_url")
    assert [m.text for m in sim.ephemeral] == [f"answer {n}" for n in range(5)]
    assert {m.user for m in sim.ephemeral} == {"W0ALICE01"}


async def test_no_ack_in_time_fails_for_the_user_and_a_late_ack_counts_for_nothing(
    sim: GridSimulator,
) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await raw_socket(sim, session)
        sent = await sim.interactivity.slash("W0ALICE01", "C0SHARED1", "/ticket", "x")
        envelope = orjson.loads((await ws.receive()).data)
        assert (envelope["type"], envelope["accepts_response_payload"]) == ("slash_commands", True)
        assert envelope["payload"]["command"] == "/ticket" and "trigger_id" in envelope["payload"]
        assert not sent.acked and sent.error == '/ticket failed with the error "operation_timeout"'
        await ws.send_str(
            orjson.dumps({"envelope_id": envelope["envelope_id"], "payload": {"text": "late"}}).decode()
        )
        await sim.wait_for(lambda: len(sim.acks) == 1)
        assert not sim.acks[0].counted
        assert [s.kind for s in sim.interactivity.seen] == ["error"]  # not the late answer
        await ws.close()
