"""The Web API through the real slack_sdk AsyncWebClient."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from simulator.sim_helpers import ALICE, APP_TOKEN, BOB, BOT1, BOT2, CAROL, SHARED, T1, T2, T3, WsClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator, default_topology
from gridbot.testing.simulator import Conversation

Web = Callable[[str], AsyncWebClient]
Connect = Callable[[str], Awaitable[WsClient]]


async def test_auth_test_reports_the_enterprise(web: Web) -> None:
    resp = await web(BOT1).auth_test()
    assert resp["team_id"] == T1
    assert resp["user_id"] == "U0BOT0001"
    assert resp["bot_id"] == "B0BOT0001"
    assert resp["enterprise_id"] == "E0GRID001"
    assert resp["is_enterprise_install"] is False
    assert resp["url"] == "https://acme-one.slack.com/"


async def test_auth_test_with_a_user_token_names_the_user(web: Web) -> None:
    resp = await web("xoxp-sim-dave").auth_test()
    assert (resp["user_id"], resp["team_id"], resp["user"]) == ("W0DAVE001", T1, "dave")


async def test_auth_test_refuses_an_app_token(web: Web) -> None:
    with pytest.raises(SlackApiError) as e:
        await web(APP_TOKEN).auth_test()
    assert e.value.response["error"] == "not_allowed_token_type"


async def test_team_info_carries_the_enterprise(web: Web) -> None:
    team = (await web(BOT2).team_info())["team"]
    assert (team["id"], team["domain"]) == (T2, "acme-two")
    assert (team["enterprise_id"], team["enterprise_name"]) == ("E0GRID001", "Acme Corp")


async def test_conversations_info_describes_a_shared_channel_per_team(web: Web) -> None:
    seen_by_two = (await web(BOT2).conversations_info(channel=SHARED))["channel"]
    assert seen_by_two["is_shared"] is True
    assert seen_by_two["is_org_shared"] is True
    assert seen_by_two["is_ext_shared"] is False
    assert seen_by_two["shared_team_ids"] == [T1, T2, T3]
    assert seen_by_two["internal_team_ids"] == [T1, T2, T3]
    assert seen_by_two["conversation_host_id"] == T1
    assert seen_by_two["context_team_id"] == T2
    assert seen_by_two["enterprise_id"] == "E0GRID001"
    assert seen_by_two["is_member"] is True
    assert seen_by_two["num_members"] == 6  # four people and two bots
    private = (await web(BOT2).conversations_info(channel="G0TWOPRIV"))["channel"]
    assert (private["is_group"], private["is_private"], private["is_shared"]) == (True, True, False)
    dm = (await web(BOT1).conversations_info(channel="D0CAROLDM"))["channel"]
    assert (dm["is_im"], dm["user"]) == (True, CAROL)


async def test_conversations_info_hides_channels_of_other_teams(web: Web) -> None:
    with pytest.raises(SlackApiError) as e:
        await web(BOT2).conversations_info(channel="C0ONE0001")
    assert e.value.response["error"] == "channel_not_found"


async def test_users_info_for_a_foreign_user_includes_enterprise_user(web: Web) -> None:
    user = (await web(BOT1).users_info(user=CAROL))["user"]
    assert (user["id"], user["team_id"], user["is_bot"]) == (CAROL, T3, False)
    assert user["profile"]["team"] == T3
    assert user["enterprise_user"] == {
        "id": CAROL,
        "enterprise_id": "E0GRID001",
        "enterprise_name": "Acme Corp",
        "is_admin": False,
        "is_owner": False,
        "teams": [T3],
    }


async def test_users_info_resolves_legacy_ids_and_bots(web: Web) -> None:
    assert (await web(BOT2).users_info(user="U0BOB0001"))["user"]["enterprise_user"]["id"] == BOB
    bot = (await web(BOT1).users_info(user="U0BOT0002"))["user"]
    assert (bot["is_bot"], bot["team_id"]) == (True, T2)
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).users_info(user="W0NOBODY0")
    assert e.value.response["error"] == "user_not_found"


async def test_post_message_is_recorded_and_echoed_to_every_socket(
    sim: GridSimulator, web: Web, rtm: Connect
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    parent = await sim.post_message(user=CAROL, channel=SHARED, text="question")
    resp = await web(BOT2).chat_postMessage(channel=SHARED, text="answer", thread_ts=parent)

    assert resp["channel"] == SHARED
    ts = resp["ts"]
    assert resp["message"]["bot_id"] == "B0BOT0002"
    for client in (one, two):
        echo = await client.expect(lambda f: f.get("ts") == ts)
        assert echo["subtype"] == "bot_message"
        assert echo["text"] == "answer"
        assert echo["thread_ts"] == parent
        assert (echo["bot_id"], echo["user"], echo["app_id"]) == ("B0BOT0002", "U0BOT0002", "A0GRIDBOT1")
        assert echo["team"] == echo["source_team"] == echo["user_team"] == T2
    [posted] = sim.posted
    assert (posted.team_id, posted.channel, posted.text, posted.thread_ts, posted.ts) == (
        T2,
        SHARED,
        "answer",
        parent,
        ts,
    )
    assert posted.bot_user_id == "U0BOT0002"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_message_with_blocks_only(sim: GridSimulator, web: Web) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    await web(BOT1).chat_postMessage(channel=SHARED, blocks=blocks)
    assert sim.posted[0].blocks == blocks


async def test_post_message_errors(sim: GridSimulator, web: Web) -> None:
    cases = [
        (BOT1, "G0TWOPRIV", "channel_not_found"),  # Team 2's private channel
        (BOT2, "D0CAROLDM", "channel_not_found"),  # the DM is not connected to Team 2
        (BOT2, "C0NOSUCH1", "channel_not_found"),
    ]
    for token, channel, error in cases:
        with pytest.raises(SlackApiError) as e:
            await web(token).chat_postMessage(channel=channel, text="x")
        assert e.value.response["error"] == error, channel
    assert sim.posted == []


QUIET = Conversation(id="C0QUIET01", name="quiet", kind="channel", teams=(T1, T2), host_team=T1)
WITH_QUIET = dataclasses.replace(default_topology(), conversations=(*default_topology().conversations, QUIET))


@pytest.mark.parametrize("sim", [WITH_QUIET], indirect=True)
async def test_not_in_channel_when_the_bot_or_user_is_not_a_member(sim: GridSimulator, web: Web) -> None:
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).chat_postMessage(channel="C0QUIET01", text="hello?")
    assert e.value.response["error"] == "not_in_channel"
    assert (await web(BOT1).conversations_info(channel="C0QUIET01"))["channel"]["is_member"] is False
    with pytest.raises(SlackApiError) as e:
        await web("xoxp-sim-erin").chat_postMessage(channel=SHARED, text="guest")
    assert e.value.response["error"] == "not_in_channel"
    await sim.add_bot_to_channel(T1, "C0QUIET01")
    assert (await web(BOT1).chat_postMessage(channel="C0QUIET01", text="now I can"))["ok"]


async def test_token_errors(sim: GridSimulator, web: Web, session: aiohttp.ClientSession) -> None:
    with pytest.raises(SlackApiError) as e:
        await web("xoxb-sim-nobody").auth_test()
    assert e.value.response["error"] == "invalid_auth"

    async with session.post(sim.api_url + "auth.test") as resp:
        assert (resp.status, await resp.json()) == (200, {"ok": False, "error": "not_authed"})

    with pytest.raises(SlackApiError) as e:
        await web(BOT1).api_call("no.such.method")
    assert e.value.response["error"] == "unknown_method"

    await sim.revoke_token(BOT2)
    with pytest.raises(SlackApiError) as e:
        await web(BOT2).auth_test()
    assert e.value.response["error"] == "token_revoked"


async def test_token_in_a_form_body_or_query_string(
    sim: GridSimulator, session: aiohttp.ClientSession
) -> None:
    async with session.post(sim.api_url + "auth.test", data={"token": BOT1}) as resp:
        assert (await resp.json())["team_id"] == T1
    async with session.get(sim.api_url + "users.info", params={"token": BOT2, "user": ALICE}) as resp:
        assert (await resp.json())["user"]["name"] == "alice"
    async with session.post(
        sim.api_url + "conversations.info",
        json={"channel": SHARED},
        headers={"Authorization": f"Bearer {BOT1}"},
    ) as resp:
        assert (await resp.json())["channel"]["context_team_id"] == T1


async def test_calls_are_recorded_without_the_token(sim: GridSimulator, web: Web) -> None:
    await web(BOT1).conversations_info(channel=SHARED)
    with pytest.raises(SlackApiError):
        await web(BOT1).conversations_info(channel="G0TWOPRIV")
    ok, failed = sim.calls_to("conversations.info")
    assert (ok.team_id, ok.user_id, ok.args, ok.error, ok.status) == (
        T1,
        "U0BOT0001",
        {"channel": SHARED},
        None,
        200,
    )
    assert failed.error == "channel_not_found"
    assert all("token" not in c.args for c in sim.calls)


async def test_ephemeral_and_reactions_are_recorded(sim: GridSimulator, web: Web) -> None:
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="react to me")
    await web(BOT1).chat_postEphemeral(channel=SHARED, user=ALICE, text="only you")
    await web(BOT1).reactions_add(channel=SHARED, timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).reactions_add(channel=SHARED, timestamp=ts, name="eyes")
    assert e.value.response["error"] == "already_reacted"
    assert [(p.user, p.text) for p in sim.ephemeral] == [(ALICE, "only you")]
    assert [(r.channel, r.timestamp, r.name, r.team_id) for r in sim.reactions] == [(SHARED, ts, "eyes", T1)]
    assert sim.posted == []
