"""The dedup stage's decisions, on the in-memory store (the Redis twin passes the same contract)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from dedup.stagekit import Stage
from gridtest import log_lines, wait_until

from gridbot.bots import Bots
from gridbot.election import Elector
from gridbot.events import Event, FrameError, normalise
from gridbot.store import MemoryStore, Store, StoreUnavailable


def msg(team: str, ts: str, channel: str = "C1", **extra: Any) -> Event:
    return normalise(
        {"type": "message", "channel": channel, "ts": ts, "user": "W1", "text": "hi", **extra},
        team_id=team,
        enterprise_id="E1",
    )


class Harness:
    def __init__(self, store: Store, installed: set[str], grace: float = 0.05, **stage: Any) -> None:
        self.handled: list[tuple[str, str, str]] = []  # (ts, team, decision)
        self.installed = installed
        self.elector = Elector(store, installed=lambda: installed, client_for=lambda _t: None)
        self.bots = Bots(store)
        self.bots.add("UBOT1", "B1")
        self.bots.add("UBOT2", "B2")
        self.stage = Stage(store, self.elector, self._dispatch, bots=self.bots, standby_grace=grace, **stage)

    def _dispatch(self, event: Event, team: str, decision: str) -> None:
        self.handled.append((event.ts or "", team, decision))

    async def up(self) -> Harness:
        """Every installed team's socket is up: their heartbeats are renewed (as a supervisor
        would); a standby copy then waits out the grace for the responsible team's own copy."""
        await self.stage.store.renew_alive(sorted(self.installed), "sockets", 600_000)
        return self


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = await Harness(MemoryStore(), {"T1", "T2", "T3"}).up()
    task = asyncio.create_task(h.stage.run())
    yield h
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_copies_from_every_team_are_handled_once_by_the_responsible_team(harness: Harness) -> None:
    await harness.stage.store.elect("C1", "T1", ["T1", "T2"])
    for n in range(20):
        for team in ("T2", "T1"):  # the standby's copy often arrives first
            harness.stage.submit(msg(team, f"{n}.0"), (team,))
    # backlog counts held standby copies too: at 0 every copy has been decided for good.
    await wait_until(lambda: harness.stage.backlog == 0 and len(harness.handled) == 20)
    assert sorted(h[0] for h in harness.handled) == sorted(f"{n}.0" for n in range(20))
    assert {h[1] for h in harness.handled} == {"T1"}
    assert harness.stage.counters.rescued == 0


async def test_a_held_standby_copy_is_let_go_once_the_responsible_team_answers() -> None:
    """The standby's copy is decided first and held; the responsible team's copy arrives a batch
    later and is handled. Nothing is left waiting out the (here 60 s) grace period: the backlog
    is empty, so a drain or a shutdown does not wait for it either."""
    h = await Harness(MemoryStore(), {"T1", "T2"}, grace=60).up()
    await h.stage.store.elect("C1", "T1", ["T1", "T2"])
    task = asyncio.create_task(h.stage.run())
    try:
        h.stage.submit(msg("T2", "1.0"), ("T2",))
        await wait_until(lambda: h.stage.counters.standby == 1)
        assert h.stage.backlog == 1
        h.stage.submit(msg("T1", "1.0"), ("T1",))
        assert await h.stage.wait_idle(5)
        assert h.stage.backlog == 0
        assert h.handled == [("1.0", "T1", "handled")]
        assert (h.stage.counters.duplicate, h.stage.counters.rescued) == (1, 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_copy_read_in_the_same_loop_turn_joins_before_the_batch_is_taken() -> None:
    """Sockets are read in callbacks of one loop turn: T2's copy wakes the worker, T1's copy is
    read just after, in the same turn. The worker waits that turn out, so both copies are one
    question, answered by T1, and nothing is held as a standby copy."""
    h = await Harness(MemoryStore(), {"T1", "T2"}).up()
    await h.stage.store.elect("C1", "T1", ["T1", "T2"])
    task = asyncio.create_task(h.stage.run())
    try:
        await h.stage.wait_idle(5)  # the worker is parked, waiting for work
        loop = asyncio.get_running_loop()
        h.stage.submit(msg("T2", "1.0"), ("T2",))  # wakes the worker: its step is queued now
        loop.call_soon(h.stage.submit, msg("T1", "1.0"), ("T1",))  # queued behind that step
        await wait_until(lambda: h.stage.backlog == 0 and len(h.handled) == 1)
        assert h.handled == [("1.0", "T1", "handled")]
        assert h.stage.counters.standby == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("responsible_copy_comes", [True, False])
async def test_every_copy_ends_counted_once_when_standby_copies_come_in_separate_batches(
    responsible_copy_comes: bool,
) -> None:
    """T2's and T3's copies are decided in separate batches and both held; whether T1's copy comes
    (handled) or not (rescued), each delivered copy ends as exactly one of handled, duplicate or
    rescued: ``grid.settle`` and the metrics count on that."""
    h = await Harness(MemoryStore(), {"T1", "T2", "T3"}, grace=0.2).up()
    await h.stage.store.elect("C1", "T1", ["T1", "T2", "T3"])
    task = asyncio.create_task(h.stage.run())
    try:
        for n, team in enumerate(("T2", "T3"), start=1):
            h.stage.submit(msg(team, "1.0"), (team,))
            await wait_until(lambda n=n: h.stage.counters.standby == n)
        if responsible_copy_comes:
            h.stage.submit(msg("T1", "1.0"), ("T1",))
        assert await h.stage.wait_idle(5)
        c = h.stage.counters
        assert c.handled + c.duplicate + c.rescued == (3 if responsible_copy_comes else 2)
        assert len(h.handled) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_first_event_in_a_channel_elects_deterministically(harness: Harness) -> None:
    harness.stage.submit(msg("T2", "1.0"), ("T2",))
    await wait_until(lambda: len(harness.handled) == 1)
    election = await harness.stage.store.election("C1")
    assert election is not None and election.team == "T2"  # the only team it knows of in C1


async def test_a_copy_only_the_standby_received_is_rescued_and_takes_over_when_the_heartbeat_lapsed(
    harness: Harness,
) -> None:
    store = harness.stage.store
    await store.elect("C1", "T1", ["T1", "T2"])
    await store.release_alive(["T1"], "sockets")  # T1's heartbeat is gone: its socket is down
    harness.stage.submit(msg("T2", "5.0"), ("T2",))
    await wait_until(lambda: len(harness.handled) == 1)
    assert harness.handled == [("5.0", "T2", "rescued")]
    election = await store.election("C1")
    assert election is not None and election.team == "T2" and election.epoch == 2
    # From now on T2 answers at once, and T1's late copy of 5.0 is a duplicate.
    harness.stage.submit(msg("T2", "6.0"), ("T2",))
    harness.stage.submit(msg("T1", "5.0"), ("T1",))
    await wait_until(lambda: len(harness.handled) == 2 and harness.stage.backlog == 0)
    assert harness.handled[1] == ("6.0", "T2", "handled")
    assert len(harness.handled) == 2


async def test_rescue_while_responsible_is_alive_keeps_the_election(harness: Harness) -> None:
    store = harness.stage.store
    await store.elect("C1", "T1", ["T1", "T2"])
    await store.renew_alive(["T1", "T2"], "me", 60_000)
    harness.stage.submit(msg("T2", "7.0"), ("T2",))  # T1 was reconnecting and missed it
    await wait_until(lambda: len(harness.handled) == 1)
    assert harness.handled == [("7.0", "T2", "rescued")]
    election = await store.election("C1")
    assert election is not None and election.team == "T1"


async def test_our_own_bot_messages_are_never_dispatched(harness: Harness) -> None:
    harness.stage.submit(msg("T1", "8.0", bot_id="B2", subtype="bot_message", user="UBOT2"), ("T1",))
    harness.stage.submit(msg("T1", "9.0", user="UBOT1"), ("T1",))
    harness.stage.submit(msg("T1", "10.0"), ("T1",))
    await wait_until(lambda: len(harness.handled) == 1)
    await wait_until(lambda: harness.stage.counters.own_message == 2)
    assert harness.handled[0][0] == "10.0"


async def test_a_bot_served_by_another_process_is_recognised_through_the_registry(harness: Harness) -> None:
    await harness.stage.store.roster_add("T9", {"bot_user_id": "UBOT9", "bot_id": "B9"})
    harness.stage.submit(msg("T1", "11.0", bot_id="B9", subtype="bot_message", user="UBOT9"), ("T1",))
    harness.stage.submit(msg("T1", "12.0", bot_id="BFOREIGN", subtype="bot_message"), ("T1",))
    await wait_until(lambda: harness.stage.backlog == 0 and harness.stage.counters.own_message == 1)
    assert [h[0] for h in harness.handled] == ["12.0"]  # a foreign bot's message is an ordinary event


async def test_events_without_a_conversation_are_claimed_by_event_id(harness: Harness) -> None:
    event = normalise(
        {"type": "app_requested", "app_request": {"id": "Ar1"}},
        team_id="T1",
        enterprise_id="E1",
        event_id="Ev1",
    )
    harness.stage.submit(event, ("T1",))
    harness.stage.submit(event, ("T1",))  # a redelivery
    await wait_until(lambda: harness.stage.backlog == 0 and harness.stage.counters.duplicate == 1)
    assert len(harness.handled) == 1


class FlakyStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def decide_many(self, asks: Any) -> Any:
        if self.down:
            raise StoreUnavailable("connection refused")
        return await super().decide_many(asks)


async def test_store_outage_buffers_then_drains_exactly_once() -> None:
    store = FlakyStore()
    await store.elect("C1", "T1", ["T1"])
    h = Harness(store, {"T1"})
    task = asyncio.create_task(h.stage.run())
    try:
        for n in range(10):
            h.stage.submit(msg("T1", f"{n}.0"), ("T1",))
        await wait_until(lambda: not h.stage.store_ok)
        assert h.handled == []
        store.down = False
        await wait_until(lambda: len(h.handled) == 10)
        assert h.stage.store_ok
        assert sorted(x[0] for x in h.handled) == sorted(f"{n}.0" for n in range(10))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class ClaimsDown(MemoryStore):
    """Decides as usual, but cannot claim while ``down`` (the outage began after the hold)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused = 0

    async def claim_many(self, claims: Any) -> Any:
        if self.down:
            self.refused += 1
            raise StoreUnavailable("connection refused")
        return await super().claim_many(claims)


async def test_a_rescue_that_meets_an_outage_is_retried_until_the_store_is_back() -> None:
    store = ClaimsDown()
    h = await Harness(store, {"T1", "T2"}).up()
    await store.elect("C1", "T1", ["T1", "T2"])
    task = asyncio.create_task(h.stage.run())
    try:
        h.stage.submit(msg("T2", "1.0"), ("T2",))  # T1 never delivers its copy
        await wait_until(lambda: h.stage.counters.standby == 1)
        store.down = True
        await wait_until(lambda: store.refused >= 1 and not h.stage.store_ok)
        assert h.handled == [] and h.stage.backlog == 1  # still held, not dropped
        store.down = False
        await wait_until(lambda: h.handled == [("1.0", "T2", "rescued")])
        assert h.stage.store_ok and h.stage.backlog == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_full_buffer_drops_the_oldest_and_counts() -> None:
    h = Harness(MemoryStore(), {"T1"}, max_buffer=3)
    for n in range(5):
        h.stage.submit(msg("T1", f"{n}.0"), ("T1",))
    assert h.stage.counters.dropped_overflow == 2
    task = asyncio.create_task(h.stage.run())
    try:
        assert await h.stage.wait_idle(5)
        assert [ts for ts, _, _ in h.handled] == ["2.0", "3.0", "4.0"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# -- copies merged before they are normalised (Intake.offer, the hot path) ---------------------


def frame(ts: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": "C1", "ts": ts, "user": "W1", "text": "hi", **extra}


class Seen(Harness):
    def __init__(self, **stage: Any) -> None:
        super().__init__(MemoryStore(), {"T1", "T2", "T3"}, **stage)
        self.events: list[Event] = []

    async def up(self) -> Seen:
        await super().up()
        return self

    def _dispatch(self, event: Event, team: str, decision: str) -> None:
        super()._dispatch(event, team, decision)
        self.events.append(event)


@pytest.fixture
async def seen() -> AsyncIterator[Seen]:
    h = await Seen().up()
    await h.stage.store.elect("C1", "T1", ["T1", "T2", "T3"])
    task = asyncio.create_task(h.stage.run())
    yield h
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_the_responsible_teams_joined_copy_is_the_one_handled(seen: Seen) -> None:
    """The standby's copy opens the question; the responsible team's raw frame joins it and is
    normalised for the handler, with that team's own view of the user."""
    seen.stage.submit(normalise(frame("1.0"), team_id="T2", enterprise_id="E1"), ("T2",))
    mapped = frame("1.0", user="U1", user_id_mapping_old_to_new={"U1": "W1"}, text="<@U1> hi")
    seen.stage.offer(mapped, "T1")
    seen.stage.offer(frame("1.0"), "T3")
    await wait_until(lambda: seen.stage.backlog == 0 and len(seen.events) == 1)
    [event] = seen.events
    assert (event.team_id, event.user, event.text) == ("T1", "W1", "<@W1> hi")
    assert seen.stage.counters.duplicate == 2 and seen.stage.counters.rescued == 0


async def test_a_copy_of_a_claimed_event_is_dropped_before_it_is_normalised(seen: Seen) -> None:
    seen.stage.submit(normalise(frame("2.0"), team_id="T1", enterprise_id="E1"), ("T1",))
    await wait_until(lambda: seen.stage.backlog == 0 and len(seen.events) == 1)
    seen.stage.offer(frame("2.0", text={"not": "text"}), "T2")  # never parsed
    assert seen.stage.counters.duplicate == 1 and len(seen.events) == 1


async def test_frames_that_cannot_be_merged_unparsed_are_normalised_and_decided_once(seen: Seen) -> None:
    seen.stage.submit(normalise(frame("3.0"), team_id="T2", enterprise_id="E1"), ("T2",))
    for odd in (
        frame("3.0", user={"id": "W1"}),  # an object where a string is merged: normalise reads it
        frame("3.0", bot_id="BOTHER"),  # a bot we do not know: the roster is asked first
        frame("3.0", channel={"id": "C1"}),
        {**frame("3.0"), "type": "member_joined_channel"},  # a join: elected before it is decided
    ):
        seen.stage.offer(odd, "T1")
    with pytest.raises(FrameError):  # had it been merged unparsed, nothing would have rejected it
        seen.stage.offer(frame("3.0", subtype=7), "T1")
    await wait_until(lambda: seen.stage.backlog == 0 and len(seen.events) == 2)
    assert sorted((e.type, e.ts) for e in seen.events) == [
        ("member_joined_channel", "3.0"),
        ("message", "3.0"),
    ]


async def test_a_chosen_copy_that_does_not_normalise_is_replaced_by_the_first(seen: Seen) -> None:
    seen.stage.submit(normalise(frame("4.0"), team_id="T2", enterprise_id="E1"), ("T2",))
    seen.stage.offer(frame("4.0", text=["bad"]), "T1")
    await wait_until(lambda: seen.stage.backlog == 0 and len(seen.events) == 1)
    [event] = seen.events
    assert event.team_id == "T2" and event.text == "hi"
    assert seen.handled == [("4.0", "T1", "handled")]  # still answered once, by the responsible team


async def test_a_message_keyed_on_its_event_ts_is_handled_once_and_not_confused(seen: Seen) -> None:
    """An empty ``ts`` makes normalise fall back to ``event_ts``: the early look must not lend
    submit the key it built from the empty one (every such message would share it)."""
    for n in (6, 7):
        for team in ("T1", "T2"):
            seen.stage.offer({**frame(""), "event_ts": f"{n}.0"}, team)
        await wait_until(lambda: seen.stage.backlog == 0)
    assert seen.handled == [("6.0", "T1", "handled"), ("7.0", "T1", "handled")]
    assert seen.stage.counters.duplicate == 2 and seen.stage.counters.rescued == 0


async def test_our_own_message_is_recognised_in_a_joined_copy(seen: Seen) -> None:
    seen.stage.submit(normalise(frame("5.0", user="U9"), team_id="T2", enterprise_id="E1"), ("T2",))
    seen.stage.offer(frame("5.0", user="UBOT1"), "T1")
    await wait_until(lambda: seen.stage.backlog == 0)
    assert seen.events == [] and seen.stage.counters.own_message == 2


@pytest.fixture
def at_info() -> Iterator[io.StringIO]:
    """Logs at info, as a daemon runs: at debug every copy is logged, so every frame is kept."""
    with log_lines("info") as stream:
        yield stream


@pytest.fixture
def at_debug() -> Iterator[io.StringIO]:
    with log_lines("debug") as stream:
        yield stream


async def learn_responsible(seen: Seen, ts: str) -> None:
    """One event decided in C1: the stage now knows T1 answers there."""
    seen.stage.submit(normalise(frame(ts), team_id="T1", enterprise_id="E1"), ("T1",))
    await wait_until(lambda: seen.stage.backlog == 0 and len(seen.handled) == 1)
    seen.handled.clear()
    seen.events.clear()


async def test_copies_the_handler_never_sees_are_judged_on_arrival(seen: Seen, at_info: io.StringIO) -> None:
    """Once the stage knows T1 answers in C1, T3's copy keeps no frame, yet its author is still
    checked (our bot's message is not answered) and the handler still gets T1's own view."""
    await learn_responsible(seen, "7.0")
    seen.stage.submit(normalise(frame("7.1"), team_id="T2", enterprise_id="E1"), ("T2",))
    mapped = frame("7.1", user="U1", user_id_mapping_old_to_new={"U1": "W1"}, text="<@U1> hi")
    seen.stage.offer(frame("7.1", text=["never normalised"]), "T3")
    seen.stage.offer(mapped, "T1")
    seen.stage.submit(normalise(frame("7.2", user="U9"), team_id="T2", enterprise_id="E1"), ("T2",))
    seen.stage.offer(frame("7.2", user="UBOT1"), "T3")  # our bot, seen by T3
    await wait_until(lambda: seen.stage.backlog == 0 and len(seen.handled) == 1)
    [event] = seen.events
    assert (event.team_id, event.ts, event.text) == ("T1", "7.1", "<@W1> hi")
    assert seen.stage.counters.own_message == 2


async def test_at_debug_every_copy_is_logged_as_its_own_team_received_it(
    seen: Seen, at_debug: io.StringIO
) -> None:
    await learn_responsible(seen, "9.0")
    seen.stage.submit(normalise(frame("9.1"), team_id="T2", enterprise_id="E1"), ("T2",))
    seen.stage.offer(frame("9.1"), "T3")  # not responsible: kept at debug
    seen.stage.offer(frame("9.1"), "T1")
    await wait_until(lambda: seen.stage.backlog == 0 and len(seen.handled) == 1)
    lines = [orjson.loads(line) for line in at_debug.getvalue().splitlines()]
    decided = {(r["team_id"], r["decision"]) for r in lines if r.get("ts") == "9.1"}
    assert decided == {("T1", "handled"), ("T2", "duplicate"), ("T3", "duplicate")}
    assert not [r for r in lines if r["event"] == "frame.dropped"]


async def test_when_the_election_moved_the_handler_gets_a_copy_we_kept(
    seen: Seen, at_info: io.StringIO
) -> None:
    """The stage still believes T1 answers; the store says T3 now. T3's copy joined without its
    frame, so T3 handles the event with the first copy (T2's); the hint is corrected by that
    decision, so the next event gets T3's own copy. (Every event queued before the correction
    gets the first copy: the README's "which copy" edge.)"""
    await learn_responsible(seen, "8.0")
    await seen.stage.store.takeover("C1", "T1", "T3")
    for ts in ("8.1", "8.2"):
        seen.stage.submit(normalise(frame(ts), team_id="T2", enterprise_id="E1"), ("T2",))
        seen.stage.offer(frame(ts), "T3")
        await wait_until(
            lambda ts=ts: seen.stage.backlog == 0 and seen.handled[-1:] == [(ts, "T3", "handled")]
        )
    assert [(e.ts, e.team_id) for e in seen.events] == [("8.1", "T2"), ("8.2", "T3")]
    assert seen.stage.counters.duplicate == 2
    assert "frame.dropped" not in at_info.getvalue()  # a copy we chose not to keep is not a bad frame


async def test_a_hostile_key_field_takes_the_full_path_and_the_bound_holds(seen: Seen) -> None:
    deep: Any = []
    for _ in range(1000):  # str() of it raises RecursionError: it must never be formatted
        deep = [deep]
    seen.stage.submit(normalise(frame("6.0"), team_id="T2", enterprise_id="E1"), ("T2",))
    for field in ("channel", "ts", "type", "subtype"):
        with pytest.raises(FrameError):  # rejected by normalise, never formatted into a key
            seen.stage.offer({**frame("6.0"), field: deep}, "T1")


async def test_at_the_bound_a_copy_is_not_merged_and_the_oldest_question_goes() -> None:
    h = Seen(max_buffer=1)
    h.stage.submit(normalise(frame("6.0"), team_id="T2", enterprise_id="E1"), ("T2",))
    h.stage.offer(frame("6.0"), "T1")
    assert h.stage.intake.queued == 1 and h.stage.counters.dropped_overflow == 1


class BrokenElector(Elector):
    async def ensure(self, channel: str, via: str, joined: Any = ()) -> Any:
        raise RuntimeError("a bug in the election")


async def test_a_failed_election_still_answers_the_message_once() -> None:
    """No election could be made (logged ``election.failed``): the message is claimed for the team
    that read it rather than dropped, and its other copy is a duplicate."""
    store = MemoryStore()
    handled: list[str] = []
    elector = BrokenElector(store, installed=lambda: {"T1", "T2"}, client_for=lambda _t: None)
    stage = Stage(store, elector, lambda e, team, d: handled.append(e.ts or ""), bots=Bots(store))
    task = asyncio.create_task(stage.run())
    try:
        stage.submit(msg("T2", "1.0"), ("T2",))
        stage.submit(msg("T1", "1.0"), ("T1",))
        await wait_until(lambda: stage.backlog == 0 and len(handled) == 1)
        stage.submit(msg("T1", "2.0"), ("T1",))  # a later marker: nothing else came of 1.0
        await wait_until(lambda: len(handled) == 2 and stage.backlog == 0)
        assert handled == ["1.0", "2.0"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
