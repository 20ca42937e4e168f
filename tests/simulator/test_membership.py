"""Membership is an event stream: joins, leaves, removals, sharing, new users, teams and installs.

slack-protocol-notes.md A: ``member_joined_channel`` reaches the channel's members ("Only channel
members receive it"; ``user == own bot id`` is the "bot was added" signal); ``channel_joined`` /
``group_joined`` are RTM-only, to the bot that joined; ``channel_shared`` / ``channel_unshared``
are Events-API-only. docs.slack.dev/reference/events/message/channel_join for the message subtype.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from simulator.sim_helpers import (
    ALICE,
    BOB,
    BOT1,
    BOT2,
    DAVE,
    ERIN,
    SHARED,
    T1,
    T2,
    T3,
    WsClient,
    message_from,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator, default_topology
from gridbot.testing.simulator import Conversation, Installation, Team, User

Connect = Callable[[str], Awaitable[WsClient]]
SocketMode = Callable[..., Awaitable[WsClient]]
Web = Callable[[str], AsyncWebClient]

QUIET = Conversation(
    id="C0QUIET01",
    name="quiet",
    kind="channel",
    teams=(T1, T2),
    host_team=T1,
    members=(ALICE,),
    bot_teams=(T2,),
)
WITH_QUIET = dataclasses.replace(default_topology(), conversations=(*default_topology().conversations, QUIET))


def of(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


def events(client: WsClient, kind: str) -> list[dict[str, Any]]:
    return [
        f["payload"]["event"] for f in client.of_type("events_api") if f["payload"]["event"]["type"] == kind
    ]


async def test_a_user_joining_is_seen_by_every_member_team(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    join_ts = await sim.org.join(SHARED, user=ERIN, inviter=ALICE)
    for client, _team in ((one, T1), (two, T2)):
        joined = await client.expect(of("member_joined_channel", user=ERIN))
        assert (joined["channel"], joined["channel_type"], joined["team"]) == (SHARED, "C", T2)
        assert (joined["inviter"], joined["enterprise"]) == (ALICE, "E0GRID001")
        message = await client.expect(message_from(join_ts))
        assert message["subtype"] == "channel_join"
        assert message["text"] == f"<@{ERIN}> has joined the channel"
        assert message["inviter"] == ALICE
    assert (
        one.of_type("member_joined_channel")[0]["event_ts"]
        == two.of_type("member_joined_channel")[0]["event_ts"]
    )
    assert ERIN in sim.topology.conversation_by_id[SHARED].members
    assert not one.of_type("channel_joined") and not two.of_type("channel_joined")
    # and she can now write there
    ts = await sim.post_message(user=ERIN, channel=SHARED, text="hello all")
    await one.expect(message_from(ts))


@pytest.mark.parametrize("sim", [WITH_QUIET], indirect=True)
async def test_a_bot_joining_gets_channel_joined_and_every_member_sees_it(
    sim: GridSimulator, rtm: Connect
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    await sim.add_bot_to_channel(T1, "C0QUIET01", inviter=BOB)
    joined = await one.expect(of("channel_joined"))
    assert joined["channel"]["id"] == "C0QUIET01" and "U0BOT0001" in joined["channel"]["members"]
    for client in (one, two):
        event = await client.expect(of("member_joined_channel", user="U0BOT0001"))
        assert event["team"] == T1
        await client.expect(lambda f: f.get("subtype") == "channel_join" and f.get("user") == "U0BOT0001")
    # the translation layer: Team 2 is shown Bob as its legacy id, Team 1 as his W id
    assert one.of_type("member_joined_channel")[0]["inviter"] == BOB
    assert two.of_type("member_joined_channel")[0]["inviter"] == "U0BOB0001"
    assert not two.of_type("channel_joined")


async def test_a_join_reaches_socket_mode_once_per_app(sim: GridSimulator, socket_mode: SocketMode) -> None:
    client = await socket_mode()
    await sim.org.join("C0ADMINS1", user=ALICE)
    await client.expect(
        lambda f: f.get("type") == "events_api" and f["payload"]["event"].get("subtype") == "channel_join"
    )
    [event] = events(client, "member_joined_channel")
    assert event["user"] == ALICE
    assert not events(client, "channel_joined")  # RTM-only


async def test_a_bot_leaving_gets_channel_left_and_the_others_member_left(
    sim: GridSimulator, rtm: Connect, web: Web
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    await sim.remove_bot_from_channel(T1, SHARED)
    left = await one.expect(of("channel_left"))
    assert (left["channel"], left["actor_id"]) == (SHARED, "U0BOT0001")
    member_left = await two.expect(of("member_left_channel", user="U0BOT0001"))
    assert (member_left["team"], member_left["channel_type"]) == (T1, "C")
    await two.expect(lambda f: f.get("subtype") == "channel_leave")
    assert not one.of_type("member_left_channel")
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="after the bot left")
    await two.expect(message_from(ts))
    marker = await sim.post_message(user=ALICE, channel="C0ONE0001", text="marker")
    await one.expect(message_from(marker))
    assert not [f for f in one.frames if f.get("ts") == ts]
    assert (await web(BOT1).conversations_info(channel=SHARED))["channel"]["is_member"] is False


async def test_a_removed_bot_is_told_who_removed_it_and_a_private_channel_says_group_left(
    sim: GridSimulator, rtm: Connect, web: Web
) -> None:
    two = await rtm(BOT2)
    await sim.remove_bot_from_channel(T2, "G0TWOPRIV", by=BOB)
    left = await two.expect(of("group_left"))
    assert (left["channel"], left["actor_id"]) == ("G0TWOPRIV", "U0BOB0001")
    with pytest.raises(SlackApiError) as e:  # a private channel vanishes for a non-member
        await web(BOT2).conversations_info(channel="G0TWOPRIV")
    assert e.value.response["error"] == "channel_not_found"


async def test_a_user_leaving(sim: GridSimulator, rtm: Connect) -> None:
    one = await rtm(BOT1)
    await sim.org.leave(SHARED, user=DAVE)
    event = await one.expect(of("member_left_channel", user=DAVE))
    assert event["team"] == T1
    await one.expect(lambda f: f.get("subtype") == "channel_leave" and f.get("user") == DAVE)
    assert DAVE not in sim.topology.conversation_by_id[SHARED].members
    with pytest.raises(ValueError, match="not a member"):
        await sim.post_message(user=DAVE, channel=SHARED, text="gone")


async def test_sharing_is_told_over_the_events_api_only(
    sim: GridSimulator, rtm: Connect, socket_mode: SocketMode, web: Web
) -> None:
    one = await rtm(BOT1)
    client = await socket_mode()
    with pytest.raises(SlackApiError):
        await web(BOT2).conversations_info(channel="C0ONE0001")
    await sim.org.share("C0ONE0001", T2)
    await client.expect(
        lambda f: f.get("type") == "events_api" and f["payload"]["event"]["type"] == "channel_shared"
    )
    [shared] = events(client, "channel_shared")
    assert (shared["connected_team_id"], shared["channel"]) == (T2, "C0ONE0001")
    info = (await web(BOT2).conversations_info(channel="C0ONE0001"))["channel"]
    assert (info["is_shared"], info["shared_team_ids"], info["is_member"]) == (True, [T1, T2], False)
    marker = await sim.post_message(user=ALICE, channel="C0ONE0001", text="marker")
    await one.expect(message_from(marker))
    assert not one.of_type("channel_shared")


async def test_unsharing_takes_the_channel_from_that_team(
    sim: GridSimulator, rtm: Connect, socket_mode: SocketMode, web: Web
) -> None:
    two = await rtm(BOT2)
    client = await socket_mode()
    await sim.org.unshare(SHARED, T2)
    await client.expect(
        lambda f: f.get("type") == "events_api" and f["payload"]["event"]["type"] == "channel_unshared"
    )
    [unshared] = events(client, "channel_unshared")
    assert (unshared["previously_connected_team_id"], unshared["channel"]) == (T2, SHARED)
    await two.expect(of("channel_left", channel=SHARED))
    assert not two.of_type("channel_unshared")  # Events API only
    conv = sim.topology.conversation_by_id[SHARED]
    assert (conv.teams, conv.bot_teams) == ((T1, T3), (T1,))
    assert BOB not in conv.members and ALICE in conv.members  # Bob is on Team 2 only
    with pytest.raises(SlackApiError) as e:
        await web(BOT2).conversations_info(channel=SHARED)
    assert e.value.response["error"] == "channel_not_found"
    with pytest.raises(ValueError, match="host team"):
        await sim.org.unshare(SHARED, T1)


async def test_a_new_user_is_announced_with_team_join(sim: GridSimulator, rtm: Connect, web: Web) -> None:
    two = await rtm(BOT2)
    frank = User(id="W0FRANK01", name="frank", home_team=T2, teams=(T2,), legacy_ids={T2: "U0FRANK01"})
    await sim.org.add_user(frank)
    event = await two.expect(of("team_join"))
    assert (event["user"]["id"], event["user"]["enterprise_user"]["id"]) == ("U0FRANK01", "W0FRANK01")
    assert (await web(BOT2).users_info(user="U0FRANK01"))["user"]["name"] == "frank"
    await sim.org.join(SHARED, user="W0FRANK01")
    ts = await sim.post_message(user="W0FRANK01", channel=SHARED, text="new here")
    assert (await two.expect(message_from(ts)))["user"] == "U0FRANK01"


async def test_a_team_joins_the_org_and_the_app_is_installed_there(sim: GridSimulator, rtm: Connect) -> None:
    await sim.org.add_team(Team(id="T0TEAM004", name="Team Four", domain="acme-four"))
    await sim.org.install(
        "A0GRIDBOT1", Installation("T0TEAM004", "xoxb-sim-T0TEAM004", "U0BOT0004", "B0BOT0004")
    )
    await sim.org.share(SHARED, "T0TEAM004")
    four = await rtm("xoxb-sim-T0TEAM004")
    await sim.add_bot_to_channel("T0TEAM004", SHARED)
    await four.expect(of("channel_joined"))
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="welcome four")
    assert (await four.expect(message_from(ts)))["source_team"] == T1


async def test_reinstalling_after_an_uninstall_gives_a_new_token_and_the_old_one_stays_dead(
    sim: GridSimulator, rtm: Connect, web: Web
) -> None:
    """A reinstall issues a new bot token; the uninstalled one is dead ("rtm.connect returns
    token_revoked/account_inactive/invalid_auth", slack-protocol-notes.md A); the bot is back
    where it was a member."""
    with pytest.raises(ValueError, match="uninstall it first"):
        await sim.org.install("A0GRIDBOT1", Installation(T1, "xoxb-sim-T0TEAM001-b", "U0BOT0001", "B0BOT0001"))
    await sim.uninstall("A0GRIDBOT1", T1)
    await sim.org.install("A0GRIDBOT1", Installation(T1, "xoxb-sim-T0TEAM001-b", "U0BOT0001", "B0BOT0001"))
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).auth_test()
    assert e.value.response["error"] in ("token_revoked", "invalid_auth")
    one = await rtm("xoxb-sim-T0TEAM001-b")
    ts = await sim.post_message(user=ALICE, channel="C0ONE0001", text="back again")
    assert (await one.expect(message_from(ts)))["text"] == "back again"


async def test_a_grid_migration_pauses_the_teams_calls(
    sim: GridSimulator, rtm: Connect, socket_mode: SocketMode, web: Web
) -> None:
    two = await rtm(BOT2)
    client = await socket_mode()
    await sim.org.start_migration(T2)
    started = await two.expect(of("grid_migration_started"))
    assert started["enterprise_id"] == "E0GRID001"
    with pytest.raises(SlackApiError) as e:
        await web(BOT2).rtm_connect()
    assert e.value.response["error"] == "team_added_to_org"
    assert (await web(BOT1).auth_test())["ok"]  # other teams are not affected
    await sim.org.finish_migration(T2)
    await client.expect(
        lambda f: f.get("type") == "events_api" and f["payload"]["event"]["type"] == "grid_migration_finished"
    )
    assert (await web(BOT2).auth_test())["ok"]


async def test_a_new_public_channel_is_announced(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    new = Conversation(id="C0NEW0001", name="new", kind="channel", teams=(T2,), host_team=T2, members=(BOB,))
    await sim.org.create_channel(new, creator=BOB)
    created = await two.expect(of("channel_created"))
    assert (created["channel"]["id"], created["channel"]["creator"]) == ("C0NEW0001", "U0BOB0001")
    await sim.org.join("C0NEW0001", user=ERIN)
    assert sim.topology.conversation_by_id["C0NEW0001"].members == (BOB, ERIN)
    marker = await sim.post_message(user=ALICE, channel="C0ONE0001", text="marker")
    await one.expect(message_from(marker))
    assert not one.of_type("channel_created")  # not Team 1's channel
    with pytest.raises(ValueError, match="exists"):
        await sim.org.create_channel(new)


async def test_invalid_changes_are_refused(sim: GridSimulator) -> None:
    with pytest.raises(ValueError, match="already"):
        await sim.org.join(SHARED, user=ALICE)
    with pytest.raises(ValueError, match="not connected"):
        await sim.add_bot_to_channel(T3, "C0ONE0001")
    with pytest.raises(ValueError, match="exactly one"):
        await sim.org.join(SHARED)
    with pytest.raises(ValueError, match="DM"):
        await sim.org.join("D0CAROLDM", user=ALICE)
