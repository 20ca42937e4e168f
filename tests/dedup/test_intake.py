"""The dedup stage's batching: one store question per event, fair across channels, backpressure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from dedup.stagekit import Stage
from gridtest import log_lines, wait_until

from gridbot.bots import Bots
from gridbot.election import Elector
from gridbot.events import Event, normalise
from gridbot.store import Decision, MemoryStore


def msg(team: str, ts: str, channel: str = "C1") -> Event:
    return normalise(
        {"type": "message", "channel": channel, "ts": ts, "user": "W1", "text": "hi"},
        team_id=team,
        enterprise_id="E1",
    )


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.questions = 0  # events asked about
        self.round_trips = 0

    async def decide_many(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[Decision]:
        self.round_trips += 1
        self.questions += len(asks)
        return await super().decide_many(asks)


class Harness:
    def __init__(self, **stage: Any) -> None:
        self.store = CountingStore()
        self.handled: list[tuple[str, str, str]] = []  # (channel, ts, team)
        elector = Elector(self.store, installed=lambda: {"T1", "T2", "T3"}, client_for=lambda _t: None)
        self.stage = Stage(self.store, elector, self._dispatch, bots=Bots(self.store), **stage)
        self.task: asyncio.Task[None] | None = None

    def _dispatch(self, event: Event, team: str, decision: str) -> None:
        self.handled.append((event.channel or "", event.ts or "", team))

    def start(self) -> None:
        self.task = asyncio.create_task(self.stage.run(), name="test:dedup")


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness(standby_grace=0.05, batch_size=64)  # 64: a flood spans many batches
    yield h
    if h.task is not None:
        h.task.cancel()
        await asyncio.gather(h.task, return_exceptions=True)


async def test_copies_of_one_event_from_our_teams_make_one_question(harness: Harness) -> None:
    await harness.store.elect("C1", "T2", ["T1", "T2", "T3"])
    for n in range(20):  # 60 deliveries: one batch
        for team in ("T1", "T3", "T2"):  # the responsible team's copy last
            harness.stage.submit(msg(team, f"{n}.0"), (team,))
    harness.start()
    await wait_until(lambda: harness.stage.backlog == 0 and len(harness.handled) == 20)
    assert {team for _, _, team in harness.handled} == {"T2"}
    assert harness.store.questions == 20 and harness.store.round_trips == 1  # not 60 questions
    assert harness.stage.counters.duplicate == 40 and harness.stage.counters.standby == 0


async def test_a_flood_in_one_channel_does_not_queue_another_channel_behind_it(harness: Harness) -> None:
    await harness.store.elect("C1", "T1", ["T1"])
    await harness.store.elect("C2", "T1", ["T1"])
    for n in range(2_000):
        harness.stage.submit(msg("T1", f"{n}.0", "C1"), ("T1",))
    harness.stage.submit(msg("T1", "1.0", "C2"), ("T1",))  # arrives after the whole flood
    harness.start()
    await wait_until(lambda: len(harness.handled) == 2_001)
    position = harness.handled.index(("C2", "1.0", "T1"))
    assert position < 64  # in the first batch, not after 2,000 flood messages


async def test_a_full_intake_pauses_readers_until_the_stage_drains() -> None:
    h = Harness(max_buffer=100)
    await h.store.elect("C1", "T1", ["T1"])
    for n in range(40):
        h.stage.submit(msg("T1", f"{n}.0"), ("T1",))
    assert not h.stage.intake.open.is_set()  # above the high-water mark: links stop reading
    h.start()
    try:
        await wait_until(lambda: h.stage.intake.open.is_set() and len(h.handled) == 40)
        assert h.stage.counters.dropped_overflow == 0
    finally:
        assert h.task is not None
        h.task.cancel()
        await asyncio.gather(h.task, return_exceptions=True)


async def test_a_flood_that_closes_the_intake_often_logs_it_once_and_counts_every_time() -> None:
    """A flood closes the intake many times a second: ops get one warning per interval (with the
    count) and the counter for graphs, not a warning per closing."""
    h = Harness(high_water=10)
    await h.store.elect("C1", "T1", ["T1"])
    h.start()
    try:
        with log_lines("info") as stream:
            for round_ in range(5):
                for n in range(10):
                    h.stage.submit(msg("T1", f"{round_}.{n}"), ("T1",))
                assert not h.stage.intake.open.is_set()
                await wait_until(lambda: h.stage.intake.open.is_set())
        lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
        warnings = [line for line in lines if line["event"] == "dedup.backpressure"]
        assert h.stage.counters.backpressure == 5
        assert [(w["queued"], w["closures"]) for w in warnings] == [(10, 1)]
    finally:
        assert h.task is not None
        h.task.cancel()
        await asyncio.gather(h.task, return_exceptions=True)
