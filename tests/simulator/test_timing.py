"""Timing faults: late, reordered and duplicated copies, seeded and recorded.

Slack gives no ordering between teams' sockets (slack-protocol-notes.md A) and delivers again
what was not acked, "possibly on another socket" (C); platform-2026.md ("Events API over HTTP")
records two deliveries ~530 ms apart with different team ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from simulator.sim_helpers import ALICE, APP, BOT1, BOT2, CAROL, SHARED, T1, T2, WsClient, message_from
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator

Connect = Callable[[str], Awaitable[WsClient]]


def envelope_for(ts: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == "events_api" and f["payload"]["event"].get("ts") == ts


async def test_a_lagging_team_gets_its_copies_after_the_others(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    sim.lag(0.3, team=T1)
    stamps = [await sim.post_message(user=ALICE, channel=SHARED, text=f"m{n}") for n in range(3)]
    await two.expect(message_from(stamps[-1]))
    rtm_held = [i for i in sim.injected if i.app_id is None]  # (envelopes authorized for T1 too)
    assert len(rtm_held) == 3 and sim.in_flight >= 3  # Team 1's three copies are held back
    assert not [f for f in one.frames if f.get("ts") in stamps]
    await one.expect(message_from(stamps[-1]))
    await sim.wait_for(lambda: sim.in_flight == 0)
    # the copies of one message are no longer written back to back
    order = [(d.team, d.ts) for d in sim.deliveries if d.ts in stamps]
    assert order == [(T2, ts) for ts in stamps] + [(T1, ts) for ts in stamps]
    assert [(i.kind, i.team, i.ts, i.delay) for i in sim.injected if i.app_id is None] == [
        ("lag", T1, ts, 0.3) for ts in stamps
    ]
    assert all(i.team == T1 for i in sim.injected)


async def test_times_counts_only_messages_the_rule_could_disturb(sim: GridSimulator, rtm: Connect) -> None:
    two = await rtm(BOT2)
    sim.lag(0.1, team=T2, times=1)
    not_on_two = await sim.post_message(user=ALICE, channel="C0ONE0001", text="Team One only")
    late = await sim.post_message(user=ALICE, channel=SHARED, text="the one")
    await two.expect(message_from(late))
    assert {i.ts for i in sim.injected} == {late} and not_on_two != late


async def test_a_per_message_lag_disturbs_only_the_messages_it_matches(
    sim: GridSimulator, rtm: Connect
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    sim.lag(0.2, match="slow", times=1)
    slow = await sim.post_message(user=ALICE, channel=SHARED, text="slow one")
    again = await sim.post_message(user=ALICE, channel=SHARED, text="slow two")
    plain = await sim.post_message(user=ALICE, channel=SHARED, text="plain")
    for client in (one, two):
        await client.expect(message_from(slow))
    assert {(i.team, i.ts) for i in sim.injected if i.app_id is None} == {(T1, slow), (T2, slow)}
    assert {i.ts for i in sim.injected} == {slow}
    written = [d.ts for d in sim.deliveries]
    assert written.index(again) < written.index(slow) and written.index(plain) < written.index(slow)


async def _reordered(seed: int) -> tuple[list[str], list[str], list[float]]:
    """Twelve messages to a Team 2 socket under a reorder fault: (posted, received, delays)."""
    async with GridSimulator(seed=seed) as sim, aiohttp.ClientSession() as session:
        url = (await AsyncWebClient(token=BOT2, base_url=sim.api_url, session=session).rtm_connect())["url"]
        two = WsClient(await session.ws_connect(url))
        await two.expect(lambda f: f.get("type") == "hello")
        sim.reorder(0.2, team=T2)
        stamps = [await sim.post_message(user=ALICE, channel=SHARED, text=f"r{n}") for n in range(12)]
        await sim.wait_for(lambda: sim.in_flight == 0)
        for ts in stamps:
            await two.expect(message_from(ts))
        await two.close()
        received = [f["ts"] for f in two.frames if f.get("ts") in stamps]
        return stamps, received, [i.delay for i in sim.injected]


async def test_copies_to_one_team_overtake_each_other_as_the_seed_says() -> None:
    stamps, received, delays = await _reordered(1)
    assert sorted(received) == stamps and received != stamps
    assert (await _reordered(1))[2] == delays  # the same seed, the same faults
    assert (await _reordered(2))[2] != delays


async def test_a_duplicated_rtm_copy_arrives_twice_on_that_team_only(
    sim: GridSimulator, rtm: Connect
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    sim.duplicate(team=T2, after=0.1, times=1)
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="twice")
    marker = await sim.post_message(user=ALICE, channel=SHARED, text="marker")
    await sim.wait_for(lambda: len([f for f in two.frames if f.get("ts") == ts]) == 2)
    await one.expect(message_from(marker))
    await sim.wait_for(lambda: sim.in_flight == 0)
    assert len([f for f in one.frames if f.get("ts") == ts]) == 1
    assert next(f for f in two.frames if f.get("ts") == ts) == [f for f in two.frames if f.get("ts") == ts][1]
    assert [(i.kind, i.team, i.ts) for i in sim.injected if i.app_id is None] == [("duplicate", T2, ts)]
    assert len([d for d in sim.deliveries if d.ts == ts]) == 3


async def test_a_duplicated_envelope_names_another_installation(
    sim: GridSimulator, socket_mode: Callable[..., Awaitable[WsClient]]
) -> None:
    client = await socket_mode()
    sim.duplicate(app=APP, after=0.1, times=1)
    ts = await sim.post_message(user=CAROL, channel=SHARED, text="seen twice")
    await sim.wait_for(lambda: len([f for f in client.frames if envelope_for(ts)(f)]) == 2)
    first, second = [f for f in client.frames if envelope_for(ts)(f)]
    assert first["payload"]["event_id"] != second["payload"]["event_id"]
    teams = {f["payload"]["authorizations"][0]["team_id"] for f in (first, second)}
    assert teams == {T1, T2}
    assert first["retry_attempt"] == second["retry_attempt"] == 0
    [injection] = sim.injected
    assert (injection.kind, injection.app_id, injection.ts) == ("duplicate", APP, ts)


async def test_socket_mode_lag_follows_the_authorized_team(
    sim: GridSimulator, socket_mode: Callable[..., Awaitable[WsClient]]
) -> None:
    client = await socket_mode()
    sim.lag(0.05, team=T1)
    stamps = [await sim.post_message(user=ALICE, channel=SHARED, text=f"s{n}") for n in range(8)]
    for ts in stamps:
        await client.expect(envelope_for(ts))
    authorized = {
        f["payload"]["event"]["ts"]: f["payload"]["authorizations"][0]["team_id"]
        for f in client.of_type("events_api")
    }
    assert {i.ts for i in sim.injected} == {ts for ts, team in authorized.items() if team == T1}
    assert {T1, T2} == set(authorized.values())


async def test_a_rule_ends_when_removed_or_when_faults_are_cleared(sim: GridSimulator, rtm: Connect) -> None:
    await rtm(BOT1)
    lag = sim.lag(5.0, team=T1)
    sim.duplicate(team=T1)
    sim.remove_timing(lag)
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="twice, not late")
    await sim.wait_for(lambda: len([d for d in sim.deliveries if d.ts == ts]) == 2, timeout=1.0)
    assert {i.kind for i in sim.injected} == {"duplicate"}
    count = len(sim.injected)
    await sim.wait_for(lambda: sim.in_flight == 0)
    sim.clear_faults()
    prompt = await sim.post_message(user=ALICE, channel=SHARED, text="prompt")
    assert [d.ts for d in sim.deliveries][-1] == prompt  # written before post_message returned
    assert len(sim.injected) == count and sim.in_flight == 0
