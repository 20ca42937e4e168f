"""More Web API methods real plugins call, with cursor pagination, through the real AsyncWebClient.

Pagination: docs.slack.dev/apis/web-api/pagination (``limit``, ``cursor``,
``response_metadata.next_cursor``, "" on the last page); slack_sdk's AsyncSlackResponse follows it
with ``async for page in response``. Private channels do not exist for non-members
(``channel_not_found``); a bot reads the history only of conversations it is in (``not_in_channel``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from simulator.sim_helpers import (
    ALICE,
    APP_TOKEN,
    BOB,
    BOT1,
    BOT2,
    CAROL,
    DAVE,
    ERIN,
    SHARED,
    T1,
    T2,
    WsClient,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator, default_topology
from gridbot.testing.simulator import Conversation

Web = Callable[[str], AsyncWebClient]
Connect = Callable[[str], Awaitable[WsClient]]

HIDDEN = Conversation(
    id="G0HIDDEN1", name="hidden", kind="private", teams=(T2,), host_team=T2, members=(ERIN,)
)
QUIET = Conversation(
    id="C0QUIET01", name="quiet", kind="channel", teams=(T1, T2), host_team=T1, members=(ALICE,)
)
MORE = dataclasses.replace(
    default_topology(), conversations=(*default_topology().conversations, HIDDEN, QUIET)
)


async def every_page(response: Any, key: str) -> tuple[list[Any], int]:
    items, pages = [], 0
    async for page in await response:
        items += page[key]
        pages += 1
    return items, pages


async def test_users_list_holds_the_callers_team_only_and_pages(web: Web) -> None:
    ids, pages = await every_page(web(BOT1).users_list(limit=1), "members")
    assert [u["id"] for u in ids] == ["U0BOT0001", ALICE, DAVE] and pages == 3
    on_two = [u["id"] for u in (await web(BOT2).users_list())["members"]]
    assert sorted(on_two) == sorted(["U0BOT0002", ALICE, "U0BOB0001", DAVE, ERIN])
    assert CAROL not in on_two  # users.list has no users of other teams (the guide)


@pytest.mark.parametrize("sim", [MORE], indirect=True)
async def test_conversations_list_shows_private_conversations_to_members_only(web: Web) -> None:
    public, _ = await every_page(web(BOT2).conversations_list(limit=1), "channels")
    assert [c["id"] for c in public] == ["C0QUIET01", SHARED]
    assert [c["is_member"] for c in public] == [False, True]
    private = (await web(BOT2).conversations_list(types="private_channel,mpim,im"))["channels"]
    assert [c["id"] for c in private] == ["G0MPIM001", "G0TWOPRIV"]  # not G0HIDDEN1
    as_erin = (await web("xoxp-sim-erin").conversations_list(types="private_channel"))["channels"]
    assert [c["id"] for c in as_erin] == ["G0HIDDEN1", "G0TWOPRIV"]
    with pytest.raises(SlackApiError) as e:
        await web(BOT2).conversations_list(types="nonsense")
    assert e.value.response["error"] == "invalid_types"


@pytest.mark.parametrize("sim", [MORE], indirect=True)
async def test_a_private_channel_does_not_exist_for_a_non_member(web: Web) -> None:
    for call in (
        web(BOT2).conversations_info(channel="G0HIDDEN1"),
        web(BOT2).conversations_history(channel="G0HIDDEN1"),
        web(BOT2).conversations_members(channel="G0HIDDEN1"),
        web(BOT2).chat_postMessage(channel="G0HIDDEN1", text="x"),
    ):
        with pytest.raises(SlackApiError) as e:
            await call
        assert e.value.response["error"] == "channel_not_found"
    assert (await web("xoxp-sim-erin").conversations_info(channel="G0HIDDEN1"))["channel"]["is_private"]


@pytest.mark.parametrize("sim", [MORE], indirect=True)
async def test_a_bot_reads_a_public_channel_it_is_not_in_only_by_its_members(web: Web) -> None:
    assert (await web(BOT1).conversations_members(channel="C0QUIET01"))["members"] == [ALICE]
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).conversations_history(channel="C0QUIET01")
    assert e.value.response["error"] == "not_in_channel"


async def test_conversations_members_pages(web: Web) -> None:
    members, pages = await every_page(web(BOT1).conversations_members(channel=SHARED, limit=4), "members")
    assert members == sorted([ALICE, BOB, CAROL, DAVE, "U0BOT0001", "U0BOT0002"]) and pages == 2


async def test_history_is_newest_first_with_threads_folded_and_pages(sim: GridSimulator, web: Web) -> None:
    stamps = [await sim.post_message(user=ALICE, channel=SHARED, text=f"h{n}") for n in range(5)]
    reply = await sim.post_message(user=BOB, channel=SHARED, text="in thread", thread_ts=stamps[1])
    messages, pages = await every_page(web(BOT1).conversations_history(channel=SHARED, limit=2), "messages")
    assert [m["ts"] for m in messages] == stamps[::-1] and pages == 3
    parent = next(m for m in messages if m["ts"] == stamps[1])
    assert (parent["reply_count"], parent["latest_reply"], parent["thread_ts"]) == (1, reply, stamps[1])
    first = await web(BOT1).conversations_history(channel=SHARED, limit=2)
    assert first["has_more"] is True and first["response_metadata"]["next_cursor"]
    window = await web(BOT1).conversations_history(
        channel=SHARED, oldest=stamps[1], latest=stamps[3], inclusive=True
    )
    assert [m["ts"] for m in window["messages"]] == [stamps[3], stamps[2], stamps[1]]
    window = await web(BOT1).conversations_history(channel=SHARED, oldest=stamps[1], latest=stamps[3])
    assert [m["ts"] for m in window["messages"]] == [stamps[2]]
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).conversations_history(channel=SHARED, oldest="yesterday")
    assert e.value.response["error"] == "invalid_ts_oldest"


async def test_replies_are_the_thread_oldest_first(sim: GridSimulator, web: Web) -> None:
    parent = await sim.post_message(user=ALICE, channel=SHARED, text="question")
    await sim.post_message(user=ALICE, channel=SHARED, text="unrelated")
    one = await sim.post_message(user=BOB, channel=SHARED, text="answer 1", thread_ts=parent)
    two = (await web(BOT1).chat_postMessage(channel=SHARED, text="answer 2", thread_ts=parent))["ts"]
    thread, _ = await every_page(
        web(BOT2).conversations_replies(channel=SHARED, ts=parent, limit=2), "messages"
    )
    assert [m["ts"] for m in thread] == [parent, one, two]
    assert thread[1]["user"] == "U0BOB0001" and thread[2]["bot_id"] == "B0BOT0001"
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).conversations_replies(channel=SHARED, ts="1.000001")
    assert e.value.response["error"] == "thread_not_found"


async def test_chat_update_edits_the_callers_own_message(sim: GridSimulator, web: Web, rtm: Connect) -> None:
    two = await rtm(BOT2)
    ts = (await web(BOT1).chat_postMessage(channel=SHARED, text="draft"))["ts"]
    resp = await web(BOT1).chat_update(channel=SHARED, ts=ts, text="final")
    assert (resp["ts"], resp["text"], resp["message"]["edited"]["user"]) == (ts, "final", "U0BOT0001")
    changed = await two.expect(lambda f: f.get("subtype") == "message_changed")
    assert (changed["message"]["ts"], changed["message"]["text"]) == (ts, "final")
    assert changed["previous_message"]["text"] == "draft"
    [stored] = (await web(BOT2).conversations_history(channel=SHARED))["messages"]
    assert stored["text"] == "final"
    user_ts = await sim.post_message(user=ALICE, channel=SHARED, text="mine")
    for token, target, error in (
        (BOT2, ts, "cant_update_message"),
        (BOT1, user_ts, "cant_update_message"),
        (BOT1, "1.000001", "message_not_found"),
    ):
        with pytest.raises(SlackApiError) as e:
            await web(token).chat_update(channel=SHARED, ts=target, text="x")
        assert e.value.response["error"] == error
    assert (await web("xoxp-sim-alice").chat_update(channel=SHARED, ts=user_ts, text="mine, edited"))["ok"]


async def test_event_authorizations_list_names_every_installation(
    sim: GridSimulator, web: Web, socket_mode: Callable[..., Awaitable[WsClient]]
) -> None:
    client = await socket_mode()
    ts = await sim.post_message(user=CAROL, channel=SHARED, text="who else?")
    env = await client.expect(
        lambda f: f.get("type") == "events_api" and f["payload"]["event"].get("ts") == ts
    )
    context = env["payload"]["event_context"]
    auths, pages = await every_page(
        web(APP_TOKEN).apps_event_authorizations_list(event_context=context, limit=1), "authorizations"
    )
    assert [(a["team_id"], a["user_id"], a["is_bot"]) for a in auths] == [
        (T1, "U0BOT0001", True),
        (T2, "U0BOT0002", True),
    ]
    assert pages == 2
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).apps_event_authorizations_list(event_context=context)
    assert e.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as e:
        await web(APP_TOKEN).apps_event_authorizations_list(event_context="4-bm9uc2Vuc2U")
    assert e.value.response["error"] == "invalid_event_context"
