"""An operator follows messages at info level (issue 16: "a grid you can watch").

Before: at info a handled message left no trace; at debug, ``event.decided``'s ``team_id`` (the
receiving team) next to ``handled_by`` read as a contradiction; and a shutdown logged every team as
``reconnecting``. Now each handled event is one ``event.handled`` line naming the team whose copy
was handled (``received_by``), the team that answers (``handled_by``) and the decision, with a
switch to turn it off for floods; and a shutdown says only that it is shutting down.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from gridtest import SHARED, T1, T2, USERS, connected, grid_config, log_lines, settled

from gridbot.config import LoggingConfig, replace
from gridbot.dispatch import Dispatcher, Router
from gridbot.events import normalise
from gridbot.loading import load_plugin
from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def named(found: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in found if e["event"] == event]


async def test_each_handled_event_is_one_info_line_naming_receiver_handler_and_decision() -> None:
    async with GridSimulator(seed=6) as sim:
        config = grid_config(sim, {T1: "rtm", T2: "rtm"})
        with log_lines("info") as stream:
            async with Runtime(config) as rt:
                await connected(rt, sim, [T1, T2])
                await sim.post_message(user=USERS["T0TEAM003"], channel=SHARED, text="echo one")
                await sim.wait_for(lambda: len(sim.posted) == 1)
                await settled(rt)
                # Team One's socket is cut and stays down: Team Two's copy is held, then rescued.
                sim.fail_connect(T1, error="ratelimited", status=429, retry_after=30)
                await sim.drop_sockets(team=T1)
                await sim.post_message(user=USERS[T2], channel=SHARED, text="echo two")
                await sim.wait_for(lambda: len(sim.posted) == 2)
                await settled(rt)
        found = lines(stream.getvalue())
    keys = ("received_by", "handled_by", "decision", "channel", "type", "handlers", "level")
    said = [tuple(e[k] for k in keys) for e in named(found, "event.handled")]
    common = (SHARED, "message", ["echo.echo"], "info")
    assert said == [(T1, T1, "handled", *common), (T2, T2, "rescued", *common)], said  # two copies each
    assert not named(found, "event.decided")  # the debug lines stay quiet


async def test_the_line_is_off_with_logging_handled_events_false() -> None:
    async with GridSimulator(seed=7) as sim:
        config = replace(grid_config(sim, {T1: "rtm"}), logging=LoggingConfig(handled_events=False))
        with log_lines("info") as stream:
            async with Runtime(config) as rt:
                await connected(rt, sim, [T1])
                await sim.post_message(user=USERS[T1], channel=SHARED, text="echo quiet")
                await sim.wait_for(lambda: len(sim.posted) == 1)  # handled: the reply came
                await settled(rt)
        found = lines(stream.getvalue())
    assert named(found, "gridbot.stopped") and not named(found, "event.handled")


async def test_a_shutdown_says_it_is_stopping_and_no_team_reconnecting() -> None:
    async with GridSimulator(seed=8) as sim:
        config = grid_config(sim, {T1: "rtm", T2: "socket_mode"})
        with log_lines("info") as stream:
            async with Runtime(config) as rt:
                await connected(rt, sim, [T1, T2])
        found = lines(stream.getvalue())
    events = [e["event"] for e in found]
    [stopping] = named(found, "gridbot.stopping")
    assert stopping["teams"] == 2
    after = found[events.index("gridbot.stopping") :]
    assert [e["event"] for e in after if e["event"].startswith(("team.", "link."))] == []
    assert events[-1] == "gridbot.stopped"


async def test_the_receiving_and_the_handling_team_are_named_apart() -> None:
    """When the election just moved, the handler can get another team's copy (README, "Exactly
    once"): the line names both, so neither reads as the other."""
    router = Router([load_plugin("echo")], command_prefix="!", bot_user_ids=())
    dispatcher = Dispatcher(router, lambda event, team, name: SimpleNamespace(), log_handled=True)  # type: ignore[arg-type,return-value]
    frame = {"type": "message", "channel": SHARED, "ts": "1.000001", "user": USERS[T1], "text": "hi"}
    with log_lines("info") as stream:
        dispatcher.dispatch(normalise(frame, team_id=T1, enterprise_id=None), T2, "handled")
        await dispatcher.drain(5)
    [line] = named(lines(stream.getvalue()), "event.handled")
    assert (line["received_by"], line["handled_by"], line["handlers"]) == (T1, T2, [])
