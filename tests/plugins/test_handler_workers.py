"""Handler time limits: handlers started together share one timer, yet each is judged alone."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from gridtest import wait_until

from gridbot.context import Context
from gridbot.dispatch import Dispatcher
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


async def test_one_deadline_window_ends_only_the_handlers_that_overran() -> None:
    finished.clear()
    outcomes: list[tuple[str, str]] = []
    dispatcher = Dispatcher(
        [plugin],
        lambda event, team, name: SimpleNamespace(),  # type: ignore[arg-type,return-value]
        bot_user_ids=set,
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
        [plugin],
        lambda event, team, name: SimpleNamespace(),  # type: ignore[arg-type,return-value]
        bot_user_ids=set,
        default_timeout=30.0,
        observer=lambda route, seconds, outcome: outcomes.append(outcome),
    )
    event = normalise({"type": "message", "channel": "C1", "ts": "9.0", "user": "W1", "text": "slow z"},
                      team_id="T1", enterprise_id=None)
    dispatcher.dispatch(event, "T1", "handled")
    await wait_until(lambda: dispatcher.running == 1)
    assert await dispatcher.drain(0.05) == 1
    assert outcomes == ["cancelled"] and dispatcher.counters.timed_out == 0
