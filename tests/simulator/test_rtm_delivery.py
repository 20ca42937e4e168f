"""The guide's RTM table: app on Team 1 and Team 2, a channel shared with Team 3."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from simulator.sim_helpers import (
    ALICE,
    BOB,
    BOT1,
    BOT2,
    CAROL,
    SHARED,
    T1,
    T2,
    T3,
    WsClient,
    message_from,
)

from gridbot.testing import GridSimulator
from gridbot.testing.simulator import topology_from_dict

Connect = Callable[[str], Awaitable[WsClient]]


@pytest.mark.parametrize(
    ("author", "home"),
    [(ALICE, T1), (BOB, T2), (CAROL, T3)],
    ids=["user-from-team-1", "user-from-team-2", "user-from-team-3"],
)
async def test_each_team_socket_gets_its_own_copy_with_the_same_ts(
    sim: GridSimulator, rtm: Connect, author: str, home: str
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    ts = await sim.post_message(user=author, channel=SHARED, text="hello grid")

    copy1 = await one.expect(message_from(ts))
    copy2 = await two.expect(message_from(ts))

    for copy in (copy1, copy2):
        assert copy["channel"] == SHARED
        assert copy["text"] == "hello grid"
        assert copy["team"] == copy["user_team"] == home
        assert copy["source_team"] == home
        assert copy["event_ts"] == ts
    # "some additional metadata about the user": the profile rides along on foreign teams only
    assert ("user_profile" in copy1) == (home != T1)
    assert ("user_profile" in copy2) == (home != T2)
    if home == T3:
        assert copy1["user_profile"] == copy2["user_profile"]
        assert copy1["user_profile"]["team"] == T3
        assert copy1["user_profile"]["real_name"] == "Carol Chen"


async def test_copies_arrive_in_a_random_order_per_message(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    stamps = [await sim.post_message(user=ALICE, channel=SHARED, text=f"m{n}") for n in range(20)]
    await two.expect(message_from(stamps[-1]))
    await one.expect(message_from(stamps[-1]))

    firsts = {ts: next(d.team for d in sim.deliveries if d.ts == ts) for ts in stamps}
    assert set(firsts.values()) == {T1, T2}, "one team always got the first copy"


async def test_a_team_without_the_bot_in_the_channel_gets_nothing(sim: GridSimulator, rtm: Connect) -> None:
    two = await rtm(BOT2)
    one = await rtm(BOT1)
    ts = await sim.post_message(user=ALICE, channel="C0ONE0001", text="team one only")
    await one.expect(message_from(ts))
    marker = await sim.post_message(user=ALICE, channel=SHARED, text="marker")
    await two.expect(message_from(marker))
    assert not [f for f in two.frames if f.get("ts") == ts]


async def test_cross_team_dm_reaches_only_the_bot_it_was_sent_to(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    ts = await sim.post_message(user=CAROL, channel="D0CAROLDM", text="hi bot")
    copy = await one.expect(message_from(ts))
    assert copy["source_team"] == T3
    assert copy["user"] == CAROL
    assert copy["user_profile"]["team"] == T3
    marker = await sim.post_message(user=ALICE, channel=SHARED, text="marker")
    await two.expect(message_from(marker))
    assert not [f for f in two.frames if f.get("ts") == ts]


async def test_mpdm_across_three_teams_reaches_both_bots(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    ts = await sim.post_message(user=CAROL, channel="G0MPIM001", text="group chat")
    c1, c2 = await one.expect(message_from(ts)), await two.expect(message_from(ts))
    assert c1["channel"] == c2["channel"] == "G0MPIM001"
    assert c1["source_team"] == c2["source_team"] == T3


async def test_translation_layer_shows_the_legacy_id_with_its_mapping(
    sim: GridSimulator, rtm: Connect
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    ts = await sim.post_message(user=BOB, channel=SHARED, text="from bob")
    on_two = await two.expect(message_from(ts))
    on_one = await one.expect(message_from(ts))
    assert on_two["user"] == "U0BOB0001"
    assert on_two["user_id_mapping_old_to_new"] == {"U0BOB0001": BOB}
    assert on_one["user"] == BOB
    assert "user_id_mapping_old_to_new" not in on_one


async def test_source_team_can_differ_from_the_authors_home_team(sim: GridSimulator, rtm: Connect) -> None:
    one = await rtm(BOT1)
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="from t2", source_team=T2)
    copy = await one.expect(message_from(ts))
    assert (copy["user_team"], copy["source_team"]) == (T1, T2)


async def test_thread_replies_carry_thread_ts(sim: GridSimulator, rtm: Connect) -> None:
    one = await rtm(BOT1)
    parent = await sim.post_message(user=ALICE, channel=SHARED, text="parent")
    ts = await sim.post_message(user=BOB, channel=SHARED, text="reply", thread_ts=parent)
    assert (await one.expect(message_from(ts)))["thread_ts"] == parent


async def test_edit_and_delete_reach_every_team(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    ts = await sim.post_message(user=BOB, channel=SHARED, text="draft")
    edit_ts = await sim.edit_message(SHARED, ts, "final")

    for client in (one, two):
        changed = await client.expect(lambda f: f.get("subtype") == "message_changed")
        assert changed["hidden"] is True
        assert changed["ts"] == edit_ts != ts
        assert changed["message"]["ts"] == ts
        assert changed["message"]["text"] == "final"
        assert changed["message"]["edited"]["ts"] == edit_ts
        assert changed["previous_message"]["text"] == "draft"
    assert (await two.expect(lambda f: f.get("subtype") == "message_changed"))["message"]["edited"][
        "user"
    ] == "U0BOB0001"

    delete_ts = await sim.delete_message(SHARED, ts)
    for client in (one, two):
        deleted = await client.expect(lambda f: f.get("subtype") == "message_deleted")
        assert deleted["deleted_ts"] == ts
        assert deleted["ts"] == delete_ts
        assert deleted["hidden"] is True
        assert deleted["previous_message"]["text"] == "final"
    assert sim.message(SHARED, ts) is None


async def test_adding_the_bot_sends_channel_joined_to_that_team_only(
    sim: GridSimulator, rtm: Connect
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    await sim.remove_bot_from_channel(T2, SHARED)
    await sim.add_bot_to_channel(T2, SHARED)
    joined = await two.expect(lambda f: f.get("type") == "channel_joined")
    assert joined["channel"]["id"] == SHARED
    assert joined["channel"]["is_member"] is True
    assert joined["channel"]["is_org_shared"] is True
    assert "U0BOT0002" in joined["channel"]["members"]
    for client in (one, two):  # member_joined_channel goes to every member (test_membership.py)
        member = await client.expect(lambda f: f.get("type") == "member_joined_channel")
        assert {k: v for k, v in member.items() if k != "event_ts"} == {
            "type": "member_joined_channel",
            "user": "U0BOT0002",
            "channel": SHARED,
            "channel_type": "C",
            "team": T2,
            "enterprise": "E0GRID001",
        }
    assert not one.of_type("channel_joined")


PRIVATE_WITHOUT_BOT = topology_from_dict(
    {
        "enterprise": {"id": "E0X", "name": "X"},
        "teams": [{"id": "T0ONE", "name": "One", "domain": "one"}],
        "apps": [
            {
                "id": "A0X",
                "name": "x",
                "installations": [
                    {"team": "T0ONE", "bot_token": "xoxb-sim-one", "bot_user_id": "U0B", "bot_id": "B0B"}
                ],
            }
        ],
        "users": [{"id": "W0X", "name": "x", "home_team": "T0ONE", "teams": ["T0ONE"]}],
        "conversations": [
            {
                "id": "G0PRIV",
                "name": "priv",
                "kind": "private",
                "teams": ["T0ONE"],
                "host_team": "T0ONE",
                "members": ["W0X"],
            }
        ],
    }
)


@pytest.mark.parametrize("sim", [PRIVATE_WITHOUT_BOT], indirect=True)
async def test_bot_added_to_a_private_channel_gets_group_joined_then_messages(
    sim: GridSimulator, rtm: Connect
) -> None:
    client = await rtm("xoxb-sim-one")
    before = await sim.post_message(user="W0X", channel="G0PRIV", text="before")
    await sim.add_bot_to_channel("T0ONE", "G0PRIV")
    joined = await client.expect(lambda f: f.get("type") == "group_joined")
    assert joined["channel"]["id"] == "G0PRIV"
    member = await client.expect(lambda f: f.get("type") == "member_joined_channel")
    assert member["channel_type"] == "G"
    after = await sim.post_message(user="W0X", channel="G0PRIV", text="after")
    await client.expect(message_from(after))
    assert not [f for f in client.frames if f.get("ts") == before]


async def test_ping_gets_a_pong_echoing_extra_fields(rtm: Connect) -> None:
    one = await rtm(BOT1)
    await one.send({"id": 42, "type": "ping", "time": 1700000000000})
    pong = await one.expect(lambda f: f.get("type") == "pong")
    assert pong == {"type": "pong", "reply_to": 42, "time": 1700000000000}


async def test_non_json_client_frames_are_ignored(rtm: Connect) -> None:
    one = await rtm(BOT1)
    await one.ws.send_str("this is not json")
    await one.ws.send_str("[1, 2]")
    await one.send({"id": 1, "type": "ping"})
    assert (await one.expect(lambda f: f.get("type") == "pong"))["reply_to"] == 1
