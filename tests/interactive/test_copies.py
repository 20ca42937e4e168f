"""A copy of an interaction that lost its claim answers what the winner answered.

Two :class:`Interactions` on one store stand for two processes (two replicas behind a balancer,
or two Socket Mode sockets: the transports share this path and differ only in ``send``). The
dedup stage's decision is given by hand through the intake's outcomes, as the decider gives it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from gridtest import CollectingIntake, log_lines, wait_until

from gridbot.interactive.ack import Acks
from gridbot.interactive.intake import Interactions
from gridbot.store import MemoryStore, Store, StoreUnavailable

T1 = "T0TEAM001"
DEADLINE = 0.5  # the copies' ack deadline here (2.5 s in production): the tests wait it out
ERRORS = {"response_action": "errors", "errors": {"title": "A title, please"}}


@dataclass
class Team:
    team_id: str
    enterprise_id: str | None = None
    last_event_at: float = 0.0


@dataclass
class Process:
    """One runtime's interactions, and the answers its transport sent (in order)."""

    interactions: Interactions
    intake: CollectingIntake
    sent: list[tuple[dict[str, Any] | None, float]] = field(default_factory=list)

    def receive(self, payload: dict[str, Any]) -> str:
        async def send(body: dict[str, Any] | None) -> None:
            self.sent.append((body, time.monotonic()))

        teams = {T1: Team(T1)}
        self.interactions.offer_interaction("interactive", payload, teams, teams.values(), send)
        key = self.intake.events[-1].event_id  # (the dedup stage's key of the payload)
        assert key is not None
        return key

    def decide(self, key: str, outcome: str) -> None:
        self.intake.outcomes.settle_one(key, outcome)


def process(store: Store | None) -> Process:
    intake = CollectingIntake([])
    return Process(Interactions(intake, Acks(deadline=DEADLINE), store), intake)


def submission(trigger: str = "1337.42.abcdef") -> dict[str, Any]:
    return {
        "type": "view_submission",
        "trigger_id": trigger,
        "team": {"id": T1},
        "user": {"id": "W0ALICE01", "team_id": T1},
        "view": {"id": "V0MODAL01", "callback_id": "ticket_modal", "state": {"values": {}}},
    }


async def test_a_copy_elsewhere_answers_the_validation_errors_the_winner_acked_later(store: Store) -> None:
    """The copy reaches B while A's handler still runs: B waits, and answers A's errors."""
    a, b = process(store), process(store)
    key = a.receive(submission())
    a.decide(key, "handled")
    pending = a.interactions.take(key)  # A's handler starts
    assert pending is not None
    assert b.receive(submission()) == key
    b.decide(key, "duplicate")  # (an empty answer at once would fail the assertion below)
    await pending.ack(ERRORS)
    await wait_until(lambda: len(b.sent) == 1, 2, "B's answer")
    assert [body for body, _ in b.sent] == [ERRORS] == [body for body, _ in a.sent]
    assert b.interactions.counters.duplicates == 1
    assert b.interactions.counters.duplicates_unanswered == 0
    await a.interactions.close()
    await b.interactions.close()


async def test_a_second_copy_on_the_same_process_answers_the_first_ones_ack(store: Store) -> None:
    """A retry that reaches the same replica (or the same socket) while the first is pending."""
    a = process(store)
    key = a.receive(submission())
    a.receive(submission())  # the copy: decided at once, without the store's claim
    a.decide(key, "handled")
    pending = a.interactions.take(key)
    assert pending is not None
    await pending.ack(ERRORS)
    await wait_until(lambda: len(a.sent) == 2, 2, "both answers")
    assert [body for body, _ in a.sent] == [ERRORS, ERRORS]
    await a.interactions.close()


async def test_a_winner_that_never_acks_in_time_leaves_its_copy_an_empty_answer_at_its_deadline(
    store: Store,
) -> None:
    """A's handler is slow and the store has nothing for B by B's deadline: B answers empty
    then (not at once: the winner may still answer), counts it and says so."""
    a, b = process(store), process(store)
    key = a.receive(submission())
    a.decide(key, "handled")
    assert a.interactions.take(key) is not None  # its handler runs, and never acks
    arrived = time.monotonic()
    b.receive(submission())
    with log_lines("info") as logs:
        b.decide(key, "duplicate")
        await wait_until(lambda: len(b.sent) == 1, 3, "B's answer")
    [(body, at)] = b.sent
    assert body is None
    assert DEADLINE - 0.05 <= at - arrived < DEADLINE + 0.3
    counters = b.interactions.counters
    assert (counters.duplicates, counters.duplicates_unanswered) == (1, 1)
    lines = [json.loads(x) for x in logs.getvalue().splitlines() if x.startswith("{")]
    [line] = [x for x in lines if x["event"] == "interactive.duplicate_unanswered"]
    assert line["reason"] == "not_recorded" and line["kind"] == "view_submission"
    assert counters.empty_late == 0  # the copy's own deadline is not the handler's lateness
    await a.interactions.close()
    await b.interactions.close()


class Unreachable(MemoryStore):
    """The store is down for the ack records (the claims were decided before it went)."""

    async def record_ack(self, key: str, ack: str, ttl_ms: int) -> None:
        raise StoreUnavailable("connection refused")

    async def wait_ack(self, key: str, timeout: float) -> str | None:
        raise StoreUnavailable("connection refused")


async def test_with_the_store_unreachable_a_copy_is_answered_empty_at_once_and_nothing_fails() -> None:
    store = Unreachable()
    a, b = process(store), process(store)
    key = a.receive(submission())
    a.decide(key, "handled")
    pending = a.interactions.take(key)
    assert pending is not None
    arrived = time.monotonic()
    b.receive(submission())
    with log_lines("info") as logs:
        b.decide(key, "duplicate")
        await pending.ack(ERRORS)  # the winner's record fails: logged, its own answer unharmed
        await wait_until(lambda: len(b.sent) == 1, 2, "B's answer")
        await a.interactions.close()
        await b.interactions.close()
    [(body, at)] = b.sent
    assert body is None and at - arrived < DEADLINE / 2
    assert [body for body, _ in a.sent] == [ERRORS]
    assert b.interactions.counters.duplicates_unanswered == 1
    text = logs.getvalue()
    assert '"interactive.ack_unrecorded"' in text and '"store_unavailable"' in text
    assert "A title, please" not in text  # an ack's body is never logged


class Refused(MemoryStore):
    """The store answers the record and the wait with an error reply (a server without BLMOVE,
    an ACL without it): neither is an outage, and neither may leave the copy unanswered."""

    async def record_ack(self, key: str, ack: str, ttl_ms: int) -> None:
        raise RuntimeError("NOPERM this user has no permissions to run the 'evalsha' command")

    async def wait_ack(self, key: str, timeout: float) -> str | None:
        raise RuntimeError("ERR unknown command 'BLMOVE'")


async def test_a_store_error_reply_still_leaves_the_copy_answered_and_counted() -> None:
    a, b = process(Refused()), process(Refused())
    key = a.receive(submission())
    a.decide(key, "handled")
    pending = a.interactions.take(key)
    assert pending is not None
    b.receive(submission())
    with log_lines("info") as logs:
        b.decide(key, "duplicate")
        await pending.ack(ERRORS)
        await wait_until(lambda: len(b.sent) == 1, 2, "B's answer")
        await a.interactions.close()
    assert [body for body, _ in b.sent] == [None] and b.interactions.counters.duplicates_unanswered == 1
    lines = [json.loads(x) for x in logs.getvalue().splitlines() if x.startswith("{")]
    reasons = {x["event"]: x.get("reason") for x in lines if x["event"].startswith("interactive.")}
    assert reasons["interactive.duplicate_unanswered"] == "RuntimeError"
    assert reasons["interactive.ack_unrecorded"] == "RuntimeError"
    assert "title" not in logs.getvalue()  # the ack body is never logged
    await b.interactions.close()
