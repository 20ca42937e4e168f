"""A broken plugin leaves the daemon and every other plugin working, with one clear log event each.

These tests mean the failures (``expect_errors=True``): the grid fixture records them in
``grid.errors`` instead of failing the test (tests/plugins/test_grid_failures.py shows it does).
"""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from gridbot.config import PluginsConfig, replace
from gridbot.loading import PluginsFailed
from gridbot.runtime import Runtime
from gridbot.testing.pytest_plugin import Grid, GridFactory

SAMPLES = "fixtures.sample_plugins"
BROKEN_AT_LOAD = {
    f"{SAMPLES}.import_error": (
        "import failed at tests/fixtures/sample_plugins/import_error.py:3: "
        "ModuleNotFoundError: No module named 'gridbot_no_such_dependency'"
    ),
    f"{SAMPLES}.bad_signature": (
        "plugin bad_signature, handler hello: parameter 'user' is never passed (available: who)"
    ),
    f"{SAMPLES}.setup_fails": (
        "setup() failed at tests/fixtures/sample_plugins/setup_fails.py:7: ValueError: missing API key"
    ),
    f"{SAMPLES}.healthy:nothing_here": "import failed: module fixtures.sample_plugins.healthy has no attribute",
    "no_such_plugin": "not found",
}
RUNNING = [f"{SAMPLES}.{name}" for name in ("raising", "hanging", "catastrophic", "healthy")]


def events_named(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


@pytest.fixture
def logs() -> Any:
    with capture_logs() as captured:
        yield captured


@pytest.fixture
async def grid(grid_factory: GridFactory, logs: list[dict[str, Any]]) -> Grid:
    return await grid_factory(
        plugins=["echo", *BROKEN_AT_LOAD, *RUNNING], handler_timeout=5.0, expect_errors=True
    )


async def test_plugins_that_fail_to_load_are_reported_once_and_left_out(
    grid: Grid, logs: list[dict[str, Any]]
) -> None:
    failed = events_named(logs, "plugin.load_failed")
    assert [e["plugin"] for e in failed] == list(BROKEN_AT_LOAD)
    for event, expected in zip(failed, BROKEN_AT_LOAD.values(), strict=True):
        assert expected in event["error"], event
    assert [p.name for p in grid.runtime.plugins] == ["echo", "raising", "hanging", "catastrophic", "healthy"]
    assert [(e.kind, e.plugin) for e in grid.errors] == [("load", name) for name in BROKEN_AT_LOAD]
    assert (await grid.ask("alice", "C0SHARED1", "echo still here")).text == "still here"


async def test_a_raising_handler_is_logged_with_its_context_and_harms_nothing(
    grid: Grid, logs: list[dict[str, Any]]
) -> None:
    assert await grid.say("bob", "C0SHARED1", "boom") == []
    [failure] = events_named(logs, "handler.failed")
    assert failure["plugin"] == "raising" and failure["handler"] == "boom"
    assert failure["channel"] == "C0SHARED1" and failure["team_id"] == "T0TEAM001" and failure["ts"]
    assert failure["exc_info"] is True or isinstance(failure["exc_info"], BaseException | tuple)
    [error] = [e for e in grid.errors if e.kind != "load"]
    assert (error.kind, error.plugin, error.handler) == ("error", "raising", "boom")
    assert isinstance(error.exception, RuntimeError) and str(error.exception) == "kaboom"
    assert (await grid.ask("bob", "C0SHARED1", "!ping")).text == "pong"


async def test_a_hanging_handler_times_out_while_others_answer(
    grid: Grid, logs: list[dict[str, Any]]
) -> None:
    dispatcher = grid.runtime.dispatcher
    assert dispatcher is not None
    await grid.sim.post_message(user="W0ALICE01", channel="C0SHARED1", text="hang")
    await grid.sim.post_message(user="W0ALICE01", channel="C0SHARED1", text="echo meanwhile")
    # Answered while the hanging handler still runs (the echo handler ends a moment after the
    # simulator records its reply; the hanging one only at its 2 s timeout).
    await grid.sim.wait_for(
        lambda: [r.text for r in grid.replies] == ["meanwhile"] and dispatcher.running == 1, timeout=10
    )
    assert not events_named(logs, "handler.timeout")
    await grid.settle()
    [timeout] = events_named(logs, "handler.timeout")
    assert timeout["plugin"] == "hanging" and timeout["handler"] == "hang" and timeout["timeout_s"] == 2.0
    assert events_named(logs, "handler.failed") == []
    assert [(e.kind, e.handler) for e in grid.errors if e.kind != "load"] == [("timeout", "hang")]


async def test_a_catastrophic_pattern_costs_its_match_budget_not_the_daemon(
    grid: Grid, logs: list[dict[str, Any]]
) -> None:
    # With re, this search would not return in our lifetime; say() settling at all is the proof.
    assert await grid.say("carol", "C0SHARED1", "a" * 64 + "!") == []
    [timeout] = events_named(logs, "handler.match_timeout")
    assert timeout["plugin"] == "catastrophic" and timeout["handler"] == "only_as"
    assert timeout["channel"] == "C0SHARED1" and timeout["ts"]
    assert (await grid.ask("carol", "C0SHARED1", "aaaa")).text == "only a's"
    assert (await grid.ask("carol", "C0SHARED1", "echo fine")).text == "fine"


async def test_strict_mode_stops_start_up_naming_every_broken_plugin(grid_factory: GridFactory) -> None:
    grid = await grid_factory(plugins=["echo"])
    broken = (f"{SAMPLES}.bad_signature", "echo", f"{SAMPLES}.import_error", "no_such_plugin")
    config = replace(grid.config, plugins=PluginsConfig(enabled=broken, strict=True))
    with capture_logs() as logs, pytest.raises(PluginsFailed) as failed:
        Runtime(config)
    assert [f.name for f in failed.value.failures] == [broken[0], *broken[2:]]
    assert [e["plugin"] for e in events_named(logs, "plugin.load_failed")] == [broken[0], *broken[2:]]
    assert "plugin bad_signature, handler hello: parameter 'user'" in str(failed.value)
