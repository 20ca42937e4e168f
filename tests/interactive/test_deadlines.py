"""The 3 s Slack gives an ack, and the 3 s a trigger_id lives, over Socket Mode on real sockets."""

from __future__ import annotations

import json

from gridtest import log_lines
from interactive.kit import GRID

from gridbot.interactive.ack import ACK_DEADLINE
from gridbot.testing.pytest_plugin import Grid

pytestmark = GRID


def events(logs: str, name: str) -> list[dict[str, object]]:
    lines = [json.loads(x) for x in logs.splitlines() if x.startswith("{")]
    return [x for x in lines if x["event"] == name]


async def test_a_late_handler_is_acked_empty_by_the_runtime_and_its_work_goes_on(grid: Grid) -> None:
    """The handler sleeps 2.8 s before it answers: the runtime acks empty at 2.5 s, before Slack's
    3 s (so the user sees no error), says so once naming the handler, and the handler's answer
    through response_url still arrives."""
    [message] = await grid.say("alice", "C0SHARED1", "!buttons")
    with log_lines("info") as logs:
        answer = await grid.click("alice", message, "slow")
    assert answer.acked and answer.ack is None and answer.error is None
    assert ACK_DEADLINE - 0.05 <= answer.sent.seconds < 3.0
    assert answer.text == "done, late"  # respond() after the ack: the handler was not cancelled
    [late] = events(logs.getvalue(), "interactive.ack_late")
    assert late["handler"] == "kit.slow" and late["kind"] == "block_actions"
    assert grid.runtime.interactions is not None
    assert grid.runtime.interactions.counters.empty_late == 1
    assert b'gridbot_interactive_acks_total{by="deadline"} 1.0' in grid.runtime.metrics.render()


async def test_an_expired_trigger_fails_with_one_line_naming_the_handler(grid: Grid) -> None:
    [message] = await grid.say("alice", "C0SHARED1", "!buttons")
    with log_lines("info") as logs:
        answer = await grid.click("alice", message, "late_modal")
    assert answer.opened == [] and answer.ephemeral == []  # stopped at open_modal
    assert grid.calls_to("views.open") == []  # known expired: Slack is not asked
    text = logs.getvalue()
    [expired] = events(text, "interactive.trigger_expired")
    assert expired["handler"] == "late_modal" and expired["plugin"] == "kit" and expired["level"] == "error"
    assert events(text, "handler.failed") == []  # one line, not a traceback as well
    assert grid.errors == []


async def test_nothing_acks_and_the_user_sees_slacks_error(grid: Grid) -> None:
    """With no socket open for the app, Slack cannot deliver: the user sees its error."""
    await grid.runtime.stop()
    answer = await grid.sim.interactivity.slash("W0ALICE01", "C0SHARED1", "/ticket", "x")
    assert not answer.acked
    assert answer.error == '/ticket failed with the error "operation_timeout"'
    [seen] = [s for s in grid.sim.interactivity.seen if s.kind == "error"]
    assert seen.user == "W0ALICE01"
