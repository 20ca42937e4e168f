"""The translation layer as the guide's example shows it.

enterprise-grid-developer-guide.txt, "A translation layer for the Enterprise Grid": with the layer
on for an app, events carry legacy U ids and ``user_id_mapping_old_to_new`` for every translated
id, the author and the mention ``<@U2EBP618A|mrtulley>`` alike. "User IDs": "We'll automatically
convert references to a user's Enterprise ID to their legacy team-specific ID"; a legacy id is
unique only to its team. "User object changes": ``enterprise_user`` carries the enterprise id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import pytest
from simulator.sim_helpers import ALICE, BOB, BOT1, BOT2, SHARED, T2, WsClient, message_from
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator, default_topology

Connect = Callable[[str], Awaitable[WsClient]]
Web = Callable[[str], AsyncWebClient]


def _alice_legacy_on_two() -> object:
    """The guide's example needs two translated users: Alice also has a legacy id on Team 2."""
    base = default_topology()
    users = tuple(
        dataclasses.replace(u, legacy_ids={T2: "U0ALICE01"}) if u.id == ALICE else u for u in base.users
    )
    return dataclasses.replace(base, users=users)


def _layer_off() -> object:
    base = default_topology()
    return dataclasses.replace(
        base, apps=tuple(dataclasses.replace(a, translation_layer=False) for a in base.apps)
    )


TWO_LEGACY = _alice_legacy_on_two()
LAYER_OFF = _layer_off()


@pytest.mark.parametrize("sim", [TWO_LEGACY], indirect=True)
async def test_the_guides_example_author_and_mention_translated(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    ts = await sim.post_message(
        user=BOB, channel=SHARED, text=f"Would you like some coffee, <@{ALICE}|alice>?"
    )
    on_two, on_one = await two.expect(message_from(ts)), await one.expect(message_from(ts))
    assert on_two["user"] == "U0BOB0001"
    assert on_two["text"] == "Would you like some coffee, <@U0ALICE01|alice>?"
    assert on_two["user_id_mapping_old_to_new"] == {"U0ALICE01": ALICE, "U0BOB0001": BOB}
    assert on_one["user"] == BOB
    assert on_one["text"] == f"Would you like some coffee, <@{ALICE}|alice>?"
    assert "user_id_mapping_old_to_new" not in on_one


async def test_a_legacy_id_written_through_its_team_reaches_other_teams_as_the_enterprise_id(
    sim: GridSimulator, rtm: Connect, web: Web
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    resp = await web(BOT2).chat_postMessage(channel=SHARED, text="thanks <@U0BOB0001>")
    assert (await one.expect(message_from(resp["ts"])))["text"] == f"thanks <@{BOB}>"
    assert (await two.expect(message_from(resp["ts"])))["text"] == "thanks <@U0BOB0001>"
    assert resp["message"]["text"] == "thanks <@U0BOB0001>"  # answered in the caller's ids
    # a legacy id of another team means nothing on Team 1: it stays as written
    other = await web(BOT1).chat_postMessage(channel=SHARED, text="hi <@U0BOB0001>")
    assert (await two.expect(message_from(other["ts"])))["text"] == "hi <@U0BOB0001>"
    assert "user_id_mapping_old_to_new" not in next(f for f in two.frames if f.get("ts") == other["ts"])


async def test_users_info_answers_in_the_callers_ids(web: Web) -> None:
    on_two = (await web(BOT2).users_info(user=BOB))["user"]
    assert (on_two["id"], on_two["enterprise_user"]["id"]) == ("U0BOB0001", BOB)
    assert (await web(BOT2).users_info(user="U0BOB0001"))["user"] == on_two
    on_one = (await web(BOT1).users_info(user=BOB))["user"]
    assert (on_one["id"], on_one["enterprise_user"]["id"]) == (BOB, BOB)


async def test_a_legacy_id_resolves_only_in_its_own_team(web: Web) -> None:
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).users_info(user="U0BOB0001")
    assert e.value.response["error"] == "user_not_found"
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).chat_postEphemeral(channel=SHARED, user="U0BOB0001", text="x")
    assert e.value.response["error"] == "user_not_in_channel"
    assert (await web(BOT2).chat_postEphemeral(channel=SHARED, user="U0BOB0001", text="x"))["ok"]


async def test_lists_and_history_answer_in_the_callers_ids(sim: GridSimulator, web: Web) -> None:
    await sim.post_message(user=BOB, channel=SHARED, text=f"ping <@{BOB}>")
    assert "U0BOB0001" in (await web(BOT2).conversations_members(channel=SHARED))["members"]
    assert BOB in (await web(BOT1).conversations_members(channel=SHARED))["members"]
    [seen_by_two] = (await web(BOT2).conversations_history(channel=SHARED))["messages"]
    assert (seen_by_two["user"], seen_by_two["text"]) == ("U0BOB0001", "ping <@U0BOB0001>")
    assert seen_by_two["user_id_mapping_old_to_new"] == {"U0BOB0001": BOB}
    [seen_by_one] = (await web(BOT1).conversations_history(channel=SHARED))["messages"]
    assert (seen_by_one["user"], seen_by_one["text"]) == (BOB, f"ping <@{BOB}>")
    assert "U0BOB0001" in [u["id"] for u in (await web(BOT2).users_list())["members"]]


@pytest.mark.parametrize("sim", [LAYER_OFF], indirect=True)
async def test_with_the_layer_off_every_team_sees_enterprise_ids(
    sim: GridSimulator, rtm: Connect, web: Web
) -> None:
    two = await rtm(BOT2)
    ts = await sim.post_message(user=BOB, channel=SHARED, text=f"me: <@{BOB}>")
    copy = await two.expect(message_from(ts))
    assert (copy["user"], copy["text"]) == (BOB, f"me: <@{BOB}>")
    assert "user_id_mapping_old_to_new" not in copy
    assert (await web(BOT2).users_info(user=BOB))["user"]["id"] == BOB
    # the legacy id still names Bob in his own team
    assert (await web(BOT2).users_info(user="U0BOB0001"))["user"]["enterprise_user"]["id"] == BOB


async def test_user_tokens_see_enterprise_ids(web: Web) -> None:
    """A user token belongs to no app with the layer on: its answers carry W ids."""
    assert (await web("xoxp-sim-erin").users_info(user="U0BOB0001"))["user"]["id"] == BOB
