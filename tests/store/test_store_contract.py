"""The store contract, identical for the in-memory store and the real Redis."""

from __future__ import annotations

import asyncio

from gridbot.store import Outcome, Store


async def test_unelected_channel_asks_for_an_election(store: Store) -> None:
    decision = await store.decide("C1", "message.:1.0", ["T1"])
    assert decision.outcome is Outcome.UNELECTED


async def test_responsible_team_claims_and_copies_are_duplicates(store: Store) -> None:
    await store.elect("C1", "T1", ["T1", "T2"])
    first = await store.decide("C1", "message.:1.0", ["T1"])
    again = await store.decide("C1", "message.:1.0", ["T1"])
    other = await store.decide("C1", "message.:1.0", ["T2"])
    assert (first.outcome, first.team) == (Outcome.HANDLED, "T1")
    assert (again.outcome, again.team) == (Outcome.DUPLICATE, "T1")
    assert (other.outcome, other.team) == (Outcome.DUPLICATE, "T1")


async def test_standby_copy_waits_and_can_rescue_once(store: Store) -> None:
    await store.elect("C1", "T1", ["T1", "T2"])
    standby = await store.decide("C1", "message.:2.0", ["T2"])
    assert (standby.outcome, standby.team) == (Outcome.STANDBY, "T1")
    assert await store.claim("C1", "message.:2.0", "T2") is None
    assert await store.claim("C1", "message.:2.0", "T2") == "T2"
    late = await store.decide("C1", "message.:2.0", ["T1"])
    assert (late.outcome, late.team) == (Outcome.DUPLICATE, "T2")


async def test_one_delivery_can_speak_for_several_teams(store: Store) -> None:
    """Socket Mode: one app on T1 and T2 gets one event; it is handled for the responsible team."""
    await store.elect("C1", "T2", ["T1", "T2"])
    decision = await store.decide("C1", "message.:3.0", ["T1", "T2"])
    assert (decision.outcome, decision.team) == (Outcome.HANDLED, "T2")


async def test_concurrent_deliveries_of_one_event_give_exactly_one_handler(store: Store) -> None:
    await store.elect("C1", "T1", ["T1", "T2", "T3"])
    results = await asyncio.gather(
        *(store.decide("C1", f"message.:{n}.0", ["T1"]) for n in range(50) for _ in range(3))
    )
    handled = [r for r in results if r.outcome is Outcome.HANDLED]
    assert len(handled) == 50


async def test_election_keeps_the_sitting_team_and_merges_candidates(store: Store) -> None:
    first = await store.elect("C1", "T2", ["T2"])
    second = await store.elect("C1", "T1", ["T1", "T3"])
    assert first.team == "T2" and first.epoch == 1
    assert second.team == "T2"
    assert second.candidates == ("T1", "T2", "T3")


async def test_takeover_is_compare_and_set(store: Store) -> None:
    await store.elect("C1", "T1", ["T1", "T2", "T3"])
    moved = await store.takeover("C1", "T1", "T2")
    assert moved is not None and moved.team == "T2" and moved.epoch == 2
    stale = await store.takeover("C1", "T1", "T3")  # someone saw T1 die too, but T2 already took it
    assert stale is not None and stale.team == "T2"
    assert (await store.election("C1")) == moved


async def test_pin_and_clear(store: Store) -> None:
    await store.elect("C1", "T1", ["T1", "T2"])
    pinned = await store.pin("C1", "T2")
    assert pinned.team == "T2" and pinned.pinned
    assert (await store.elections())["C1"].team == "T2"
    assert await store.clear("C1")
    assert await store.election("C1") is None


async def test_elections_lists_every_conversation_once(store: Store) -> None:
    for n in range(30):
        await store.elect(f"C{n}", "T1", ["T1", "T2"])
    await store.pin("C7", "T2")
    await store.clear("C8")
    found = await store.elections()
    assert set(found) == {f"C{n}" for n in range(30)} - {"C8"}
    assert found["C7"] == await store.election("C7") and found["C7"].pinned
    assert found["C0"] == await store.election("C0") and found["C0"].candidates == ("T1", "T2")


async def test_a_heartbeat_has_one_holder_until_released(store: Store) -> None:
    await store.renew_alive(["T1", "T2"], "proc-a", 10_000)
    await store.renew_alive(["T2"], "proc-b", 10_000)  # held by proc-a: not taken
    assert await store.alive(["T1", "T2", "T3"]) == {"T1", "T2"}
    await store.release_alive(["T2"], "proc-b")  # not the holder: no effect
    assert await store.alive(["T2"]) == {"T2"}
    await store.release_alive(["T1", "T2"], "proc-a")
    assert await store.alive(["T1", "T2"]) == set()


async def test_kv_roundtrips_json_and_expires_deletes(store: Store) -> None:
    await store.kv_set("plug", "k", {"a": [1, 2], "b": "x"})
    assert await store.kv_get("plug", "k") == {"a": [1, 2], "b": "x"}
    assert await store.kv_get("other", "k") is None
    assert await store.kv_delete("plug", "k")
    assert await store.kv_get("plug", "k") is None


async def test_lock_has_one_holder(store: Store) -> None:
    assert await store.try_lock("job:1", "a", 10_000)
    assert not await store.try_lock("job:1", "b", 10_000)
    assert await store.try_lock("job:1", "a", 10_000)


async def test_the_roster_keeps_every_team_with_its_bot_ids(store: Store) -> None:
    await store.roster_add("T1", {"bot_user_id": "U1", "bot_id": "B1", "enterprise_id": "E1"})
    await store.roster_add("T2", {"bot_user_id": "U2", "bot_id": "B2", "enterprise_id": None})
    teams = await store.roster()
    assert teams == {
        "T1": {"bot_user_id": "U1", "bot_id": "B1", "enterprise_id": "E1"},
        "T2": {"bot_user_id": "U2", "bot_id": "B2", "enterprise_id": None},
    }


async def test_an_election_records_why_it_last_changed(store: Store) -> None:
    assert (await store.elect("C1", "T1", ["T1", "T2"])).reason == "elected"
    moved = await store.takeover("C1", "T1", "T2", "heartbeat_lapsed")
    assert moved is not None and (moved.team, moved.reason, moved.epoch) == ("T2", "heartbeat_lapsed", 2)
    assert await store.election("C1") == moved
    pinned = await store.pin("C1", "T1")
    assert (pinned.reason, pinned.epoch) == ("pinned", 3)
    assert (await store.elections())["C1"] == pinned


async def test_a_team_that_left_moves_the_election_and_is_no_candidate_until_it_joins(store: Store) -> None:
    await store.elect("C1", "T1", ["T1", "T2", "T3"])
    moved, after = await store.depart("C1", ["T1"], "T2", "channel_left", left=True)
    assert moved and after is not None
    assert (after.team, after.epoch, after.reason, after.candidates) == (
        "T2",
        2,
        "channel_left",
        ("T2", "T3"),
    )
    assert await store.election("C1") == after
    # conversations.info still lists T1 (the conversation is shared with it): not a candidate again
    kept = await store.elect("C1", "T1", ["T1", "T2", "T3"])
    assert (kept.team, kept.candidates) == ("T2", ("T2", "T3"))
    again, same = await store.depart("C1", ["T1"], "T3", "channel_left", left=True)  # another process
    assert not again and same == kept
    back = await store.elect("C1", "T2", ["T1", "T2"], joined=["T1"])  # T1's bot joined again
    assert back.candidates == ("T1", "T2", "T3") and back.team == "T2"


async def test_a_departure_with_no_successor_clears_the_election_and_the_next_elects_afresh(
    store: Store,
) -> None:
    await store.elect("C1", "T1", ["T1"])
    moved, after = await store.depart("C1", ["T1"], None, "channel_left", left=True)
    assert moved and after is None
    assert await store.election("C1") is None and "C1" not in await store.elections()
    assert (await store.decide("C1", "message.:1.0", ["T2"])).outcome is Outcome.UNELECTED
    # The next event is seen by T2; conversations.info (via T2) names T1 the host: T1 left, so T2.
    fresh = await store.elect("C1", "T1", ["T1", "T2"], fallback="T2")
    assert (fresh.team, fresh.epoch, fresh.reason, fresh.candidates) == ("T2", 3, "elected", ("T2",))


async def test_a_stopped_team_moves_the_election_but_stays_a_candidate(store: Store) -> None:
    await store.elect("C1", "T1", ["T1", "T2"])
    not_it, unchanged = await store.depart("C1", ["T3"], None, "team_stopped", left=False)
    assert not not_it and unchanged is not None and unchanged.team == "T1"
    moved, after = await store.depart("C1", ["T1"], "T2", "team_stopped", left=False)
    assert moved and after is not None and (after.team, after.candidates) == ("T2", ("T1", "T2"))
    nothing, none = await store.depart("C9", ["T1"], None, "team_stopped", left=False)
    assert (nothing, none) == (False, None) and await store.election("C9") is None
