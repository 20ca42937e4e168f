"""How handlers run: in pooled workers, yet each alone (its deadline, its context, its waits)."""

from __future__ import annotations

import asyncio
import contextvars
from types import SimpleNamespace
from typing import Any

import pytest
from gridtest import wait_until

from gridbot.context import Context
from gridbot.dispatch import Dispatcher, Router
from gridbot.events import normalise
from gridbot.plugins import Plugin

plugin = Plugin("timing")
finished: list[str] = []


@plugin.message(r"^quick (?P<name>\w+)$", timeout=0.3)
async def quick(ctx: Context, name: str) -> None:
    await asyncio.sleep(0)
    finished.append(name)


@plugin.message(r"^slow (?P<name>\w+)$", timeout=0.3)
async def slow(ctx: Context, name: str) -> None:
    await asyncio.Event().wait()  # never set: only the deadline (or a drain) ends this
    finished.append(name)


seen_request: list[str | None] = []
request = contextvars.ContextVar[str]("request")
gate = asyncio.Event()


@plugin.message(r"^tag (?P<name>\w+)$")
async def tag(ctx: Context, name: str) -> None:
    seen_request.append(request.get(None))
    request.set(name)  # a plugin binding a context variable (structlog's contextvars, say)
    await asyncio.sleep(0)


@plugin.message(r"^wait (?P<name>\w+)$")
async def wait(ctx: Context, name: str) -> None:
    await gate.wait()
    finished.append(name)


@plugin.message(r"^open (?P<name>\w+)$")
async def open_gate(ctx: Context, name: str) -> None:
    gate.set()
    finished.append(name)


@plugin.message(r"^own (?P<name>\w+)$", timeout=5)
async def own_limit(ctx: Context, name: str) -> None:
    try:
        async with asyncio.timeout(0.05):  # the handler's own, shorter limit
            await asyncio.Event().wait()
    except TimeoutError:
        finished.append(f"{name} timed itself out")


saved: dict[str, Any] = {}


@plugin.message(r"^remember$")
async def remember(ctx: Context) -> None:
    saved["task"] = asyncio.current_task()  # its worker, as the README says


@plugin.message(r"^stubborn$")
async def stubborn(ctx: Context) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        pass  # a bad plugin: swallows the cancellation and returns


def dispatcher_with(outcomes: list[tuple[str, str]], **options: float) -> Dispatcher:
    return Dispatcher(
        Router([plugin], command_prefix="!", bot_user_ids=()),
        lambda event, team, name: SimpleNamespace(),  # type: ignore[arg-type,return-value]
        observer=lambda route, seconds, outcome: outcomes.append((route.name, outcome)),
        **options,  # type: ignore[arg-type]
    )


def dispatch(dispatcher: Dispatcher, *texts: str) -> None:
    for n, text in enumerate(texts):
        event = normalise({"type": "message", "channel": "C1", "ts": f"{n}.0", "user": "W1", "text": text},
                          team_id="T1", enterprise_id=None)
        dispatcher.dispatch(event, "T1", "handled")


async def test_a_waiting_handler_does_not_hold_up_the_one_that_releases_it() -> None:
    finished.clear()
    gate.clear()
    outcomes: list[tuple[str, str]] = []
    dispatcher = dispatcher_with(outcomes)
    dispatch(dispatcher, "wait a", "wait b", "open c")
    await wait_until(lambda: len(outcomes) == 3, 5, "every handler ended")
    assert sorted(finished) == ["a", "b", "c"] and finished[0] == "c"
    assert await dispatcher.drain(1.0) == 0


@pytest.mark.parametrize("bound", [256, 1])  # 1: each handler waits for a slot another one frees
async def test_a_context_variable_one_handler_sets_is_not_seen_by_the_next(bound: int) -> None:
    seen_request.clear()
    outcomes: list[tuple[str, str]] = []
    dispatcher = dispatcher_with(outcomes, max_concurrent=bound)
    dispatch(dispatcher, "tag one", "tag two", "tag three")
    await wait_until(lambda: len(outcomes) == 3, 5, "every handler ended")
    assert seen_request == [None, None, None]
    assert await dispatcher.drain(1.0) == 0


async def test_a_handler_timing_itself_out_leaves_its_worker_and_the_others_sound() -> None:
    finished.clear()
    outcomes: list[tuple[str, str]] = []
    dispatcher = dispatcher_with(outcomes)
    dispatch(dispatcher, "own x", "quick y", "own z")
    await wait_until(lambda: len(outcomes) == 3, 5, "every handler ended")
    assert sorted(finished) == ["x timed itself out", "y", "z timed itself out"]
    assert sorted(outcomes) == [("own_limit", "ok"), ("own_limit", "ok"), ("quick", "ok")]
    dispatch(dispatcher, "quick after")  # the workers' tasks carry no stale cancellation
    await wait_until(lambda: len(outcomes) == 4, 5, "the next handler ended")
    assert outcomes[-1] == ("quick", "ok") and dispatcher.counters.timed_out == 0
    assert await dispatcher.drain(1.0) == 0


async def test_drain_leaves_no_worker_task_behind() -> None:
    outcomes: list[tuple[str, str]] = []
    dispatcher = dispatcher_with(outcomes)
    dispatch(dispatcher, "quick a", "slow b", "quick c")
    await wait_until(lambda: len(outcomes) == 2, 5, "the quick ones ended")
    assert await dispatcher.drain(0.05) == 1
    leftovers = [t for t in asyncio.all_tasks() if t.get_name().startswith("dispatch:")]
    assert leftovers == []
    assert sorted(outcomes) == [("quick", "ok"), ("quick", "ok"), ("slow", "cancelled")]


async def test_one_deadline_window_ends_only_the_handlers_that_overran() -> None:
    finished.clear()
    outcomes: list[tuple[str, str]] = []
    dispatcher = Dispatcher(
        Router([plugin], command_prefix="!", bot_user_ids=()),
        lambda event, team, name: SimpleNamespace(),  # type: ignore[arg-type,return-value]
        observer=lambda route, seconds, outcome: outcomes.append((route.name, outcome)),
    )
    texts = ["quick a", "slow b", "quick c", "slow d", "quick e"]  # all within one 1 ms window
    for n, text in enumerate(texts):
        event = normalise({"type": "message", "channel": "C1", "ts": f"{n}.0", "user": "W1", "text": text},
                          team_id="T1", enterprise_id=None)
        dispatcher.dispatch(event, "T1", "handled")
    await wait_until(lambda: len(outcomes) == 5, 5, "every handler ended")
    assert sorted(finished) == ["a", "c", "e"]
    assert sorted(outcomes) == [("quick", "ok")] * 3 + [("slow", "timeout")] * 2
    assert dispatcher.counters.timed_out == 2 and dispatcher.counters.failed == 0
    assert await dispatcher.drain(1.0) == 0  # nothing left running, no pending cancellation


async def test_a_drain_cancellation_is_not_taken_for_a_timeout() -> None:
    outcomes: list[str] = []
    dispatcher = Dispatcher(
        Router([plugin], command_prefix="!", bot_user_ids=()),
        lambda event, team, name: SimpleNamespace(),  # type: ignore[arg-type,return-value]
        default_timeout=30.0,
        observer=lambda route, seconds, outcome: outcomes.append(outcome),
    )
    event = normalise({"type": "message", "channel": "C1", "ts": "9.0", "user": "W1", "text": "slow z"},
                      team_id="T1", enterprise_id=None)
    dispatcher.dispatch(event, "T1", "handled")
    await wait_until(lambda: dispatcher.running == 1)
    assert await dispatcher.drain(0.05) == 1
    assert outcomes == ["cancelled"] and dispatcher.counters.timed_out == 0


async def test_drain_ends_even_a_handler_that_swallows_its_cancellation() -> None:
    outcomes: list[tuple[str, str]] = []
    dispatcher = dispatcher_with(outcomes)
    dispatch(dispatcher, "stubborn")
    await wait_until(lambda: dispatcher.running == 1)
    async with asyncio.timeout(10):
        assert await dispatcher.drain(0.05) == 1
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("dispatch:")] == []


async def test_a_worker_cancelled_while_resting_strands_nothing() -> None:
    finished.clear()
    outcomes: list[tuple[str, str]] = []
    dispatcher = dispatcher_with(outcomes)
    dispatch(dispatcher, "remember")
    await wait_until(lambda: len(outcomes) == 1 and dispatcher.running == 0)
    saved["task"].cancel()  # the resting worker, by a plugin that kept it
    dispatch(dispatcher, "quick a")  # in the same step: the cancelled worker is still listed
    await wait_until(lambda: len(outcomes) == 2, 5, "the next handler ran")
    dispatch(dispatcher, "quick b")
    await wait_until(lambda: len(outcomes) == 3, 5, "and the one after")
    assert finished == ["a", "b"]
    assert await dispatcher.drain(1.0) == 0
