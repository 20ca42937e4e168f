"""Scheduled handlers: cron and every=, once per slot across processes sharing a store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from fixtures.sample_plugins import scheduled
from gridtest import T1, T2, grid_config, wait_until
from structlog.testing import capture_logs

from gridbot.events import Event
from gridbot.plugins import Plugin, Route
from gridbot.runtime import Runtime
from gridbot.schedule import Scheduler
from gridbot.store import MemoryStore, Store
from gridbot.testing import GridSimulator
from gridbot.triggers import Cron, CronError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expr: str, start: str, count: int) -> list[str]:
    cron, moment, found = Cron.parse(expr), at(start), []
    for _ in range(count):
        moment = cron.next_after(moment)
        found.append(moment.strftime("%Y-%m-%d %a %H:%M"))
    return found


def test_cron_steps_ranges_and_names() -> None:
    assert fires("*/20 9-10 * * mon-fri", "2026-11-20 10:30", 3) == [
        "2026-11-20 Fri 10:40",
        "2026-11-23 Mon 09:00",
        "2026-11-23 Mon 09:20",
    ]
    assert fires("0 12 1 jan,jul *", "2026-03-01 00:00", 2) == [
        "2026-07-01 Wed 12:00",
        "2027-01-01 Fri 12:00",
    ]
    assert fires("@hourly", "2026-01-01 00:00", 2) == ["2026-01-01 Thu 01:00", "2026-01-01 Thu 02:00"]
    assert fires("5/30 * * * *", "2026-01-01 00:00", 2) == ["2026-01-01 Thu 00:05", "2026-01-01 Thu 00:35"]


def test_cron_day_of_month_or_day_of_week_when_both_are_given() -> None:
    # classic cron: "the 13th, or any Friday"
    assert fires("0 0 13 * fri", "2026-11-01 00:00", 3) == [
        "2026-11-06 Fri 00:00",
        "2026-11-13 Fri 00:00",
        "2026-11-20 Fri 00:00",
    ]
    assert fires("0 0 29 2 *", "2026-01-01 00:00", 1) == ["2028-02-29 Tue 00:00"]
    assert fires("0 0 * * 7", "2026-11-20 00:00", 1) == ["2026-11-22 Sun 00:00"]  # 7 is Sunday too


@pytest.mark.parametrize(
    "expr,problem",
    [
        ("* * * *", "expected 5 fields"),
        ("* 24 * * *", "hour: 24 is outside 0-23"),
        ("*/0 * * * *", "minute: bad step '0'"),
        ("* * * foo *", "month: 'foo' is not a number"),
        ("5-1 * * * *", "minute: range '5-1' runs backwards"),
        ("0 0 31 4 *", "never fires"),
    ],
)
def test_cron_mistakes_are_named(expr: str, problem: str) -> None:
    with pytest.raises(CronError, match=problem):
        Cron.parse(expr)


# -- the scheduler, on a fake clock ---------------------------------------------------------------


class FakeTime:
    def __init__(self, start: float) -> None:
        self.now = start

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Recorder:
    """Stands in for the dispatcher and the supervisor."""

    def __init__(self, log: list[tuple[str, int]], name: str) -> None:
        self.log, self.name = log, name

    def connected(self) -> list[str]:
        return ["T2", "T1"]

    def run_now(self, route: Route, event: Event, team_id: str) -> None:
        assert team_id == "T1" and event.type == "schedule"
        self.log.append((self.name, int(event.raw["slot"])))


def plugin_with(**schedule: Any) -> Plugin:
    p = Plugin("jobs")

    @p.schedule(**schedule)
    async def job(ctx: Any) -> None: ...

    return p


async def run_schedulers(
    store: Store, plugin: Plugin, clocks: dict[str, FakeTime], until: int
) -> list[tuple[str, int]]:
    log: list[tuple[str, int]] = []
    schedulers = [
        Scheduler(
            [plugin],
            store,
            Recorder(log, name),
            Recorder(log, name),
            name,
            clock=lambda c=c: c.now,
            sleep=c.sleep,
        )  # type: ignore[arg-type, misc]
        for name, c in clocks.items()
    ]
    tasks = [asyncio.create_task(s.run(), name=f"test:scheduler:{i}") for i, s in enumerate(schedulers)]
    try:
        await wait_until(lambda: len({slot for _, slot in log}) >= until, 10, f"{until} slots")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return log


async def test_two_schedulers_sharing_a_store_run_each_slot_once_even_with_skewed_clocks(
    store: Store,
) -> None:
    # A second process whose clock runs 0.3 s late must find the slot taken, not run it again.
    start = 1_800_000_000.0
    clocks = {"a": FakeTime(start), "b": FakeTime(start - 0.3)}
    log = await run_schedulers(store, plugin_with(every=1), clocks, until=20)
    slots = [slot for _, slot in log]
    assert len(slots) == len(set(slots))
    assert sorted(slots) == list(range(min(slots), max(slots) + 1))


async def test_a_cron_job_fires_on_its_minutes() -> None:
    start = at("2026-11-20 10:07").timestamp()
    log = await run_schedulers(
        MemoryStore(), plugin_with(cron="*/15 * * * *"), {"a": FakeTime(start)}, until=3
    )
    due = [datetime.fromtimestamp(slot * 60, UTC).strftime("%H:%M") for _, slot in log[:3]]
    assert due == ["10:15", "10:30", "10:45"]


# -- two real runtimes sharing the real Redis -----------------------------------------------------


async def test_a_scheduled_job_runs_once_per_interval_with_two_processes_sharing_redis(
    redis_url: str, redis_prefix: str
) -> None:
    scheduled.RUNS.clear()
    async with GridSimulator() as sim:
        config = grid_config(
            sim,
            {T1: "rtm", T2: "rtm"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            plugins=("fixtures.sample_plugins.scheduled",),
        )
        with capture_logs() as logs:
            async with (
                Runtime(config, instance_id="gridbot-a") as a,
                Runtime(config, instance_id="gridbot-b") as b,
            ):
                assert a.supervisor is not None and b.supervisor is not None
                sa, sb = a.supervisor, b.supervisor
                # Scale-out splits the installations between the processes: together they serve both.
                await wait_until(
                    lambda: {*sa.connected(), *sb.connected()} == {T1, T2}, 15, "both teams served"
                )
                first = len(scheduled.RUNS)
                await wait_until(lambda: len(scheduled.RUNS) >= first + 5, 10, "five more slots")
                assert a.dispatcher is not None and b.dispatcher is not None
                await wait_until(lambda: a.dispatcher.running == 0 and b.dispatcher.running == 0)
                runs = list(scheduled.RUNS)
    slots = [slot for slot, _, _ in runs]
    assert len(slots) == len(set(slots)), f"a slot ran twice: {sorted(slots)}"
    assert sorted(slots) == list(range(min(slots), max(slots) + 1)), "a slot was skipped"
    assert [e for e in logs if e["event"].startswith("handler.")] == []
    # Each run saw the count the previous one wrote, whichever process ran it: one shared store.
    assert [count for _, _, count in runs] == list(range(len(runs)))
    ran = [e for e in logs if e["event"] == "schedule.ran"]
    assert sorted(e["slot"] for e in ran)[: len(slots)] == sorted(slots)
    assert {e["holder"] for e in ran} <= {"gridbot-a", "gridbot-b"}
