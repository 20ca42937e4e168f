"""decide_many / claim_many: the batched hot path keeps the one-at-a-time contract, on both stores."""

from __future__ import annotations

from gridbot.store import Outcome, Store


async def test_a_batch_over_several_conversations_decides_each_event_as_decide_would(store: Store) -> None:
    await store.elect("C1", "T1", ["T1", "T2"])
    await store.elect("C2", "T2", ["T1", "T2"])
    already = await store.decide("C1", "message.:0.0", ["T1"])
    assert already.outcome is Outcome.HANDLED
    decisions = await store.decide_many(
        [
            ("C1", "message.:1.0", ["T1"]),  # the responsible team: handled
            ("C2", "message.:1.0", ["T1"]),  # T2 answers in C2: standby
            ("C1", "message.:0.0", ["T2"]),  # claimed before: duplicate, by whom
            ("C3", "message.:1.0", ["T1"]),  # nobody elected yet
            ("C2", "message.:2.0", ["T1", "T2"]),  # a delivery covering both teams (Socket Mode)
            ("C1", "message.:1.0", ["T1"]),  # the same event twice in one batch: in order
        ]
    )
    assert [(d.outcome, d.team) for d in decisions] == [
        (Outcome.HANDLED, "T1"),
        (Outcome.STANDBY, "T2"),
        (Outcome.DUPLICATE, "T1"),
        (Outcome.UNELECTED, None),
        (Outcome.HANDLED, "T2"),
        (Outcome.DUPLICATE, "T1"),
    ]
    # The batch wrote real claims: the one-at-a-time path sees them.
    later = await store.decide("C2", "message.:2.0", ["T2"])
    assert (later.outcome, later.team) == (Outcome.DUPLICATE, "T2")


async def test_claim_many_claims_once_and_names_the_owner(store: Store) -> None:
    await store.claim("C1", "message.:5.0", "T1")
    owners = await store.claim_many(
        [
            ("C1", "message.:5.0", "T2"),
            ("C1", "message.:6.0", "T2"),
            (None, "event:Ev1", "T3"),
            ("C1", "message.:6.0", "T3"),
        ]
    )
    assert owners == ["T1", None, None, "T2"]
    assert await store.decide_many([]) == [] and await store.claim_many([]) == []
