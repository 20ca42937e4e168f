"""The grid fixture fails a test with the plugin's own error: a plugin that does not load, a
handler or hook that raises or times out. Unless the test says it expects that.

Issue 16: a plugin that did not load showed up as "got 0 replies", and a handler that raised passed
``assert replies == []``. Each case runs as a plugin author's test would: ``pytest`` in a fresh
project directory, in a subprocess, with nothing configured.
"""

from __future__ import annotations

from pathlib import Path

from ops.projects import fresh_project

BROKEN = """from gridbot import Plugin

plugin = Plugin(undefined_name)
"""

SHAKY = """import asyncio

from gridbot import Context, Plugin

plugin = Plugin("shaky")


@plugin.message(r"^boom$")
async def boom(ctx: Context) -> None:
    raise ValueError("bad input")


@plugin.message(r"^slow$", timeout=0.2)
async def slow(ctx: Context) -> None:
    await asyncio.Event().wait()


@plugin.message(r"^fine$")
async def fine(ctx: Context) -> None:
    await ctx.reply("fine")
"""

HOOKED = """from gridbot import Plugin

plugin = Plugin("hooked")


@plugin.on_startup
async def connect(ctx) -> None:
    raise ConnectionError("no database")
"""

TESTS = """import pytest


@pytest.mark.gridbot(plugins=["broken", "echo"])
async def test_a_plugin_that_does_not_load(grid):
    assert await grid.say("alice", "C0SHARED1", "echo hi") != []


@pytest.mark.gridbot(plugins=["shaky"])
async def test_a_handler_that_raises(grid):
    assert await grid.say("alice", "C0SHARED1", "boom") == []


@pytest.mark.gridbot(plugins=["shaky"])
async def test_a_handler_that_times_out(grid):
    assert await grid.say("alice", "C0SHARED1", "slow") == []


@pytest.mark.gridbot(plugins=["hooked", "echo"])
async def test_a_startup_hook_that_raises(grid):
    assert (await grid.ask("alice", "C0SHARED1", "echo hi")).text == "hi"


@pytest.mark.gridbot(plugins=["shaky"])
async def test_a_failure_after_the_last_say_fails_the_teardown(grid):
    await grid.sim.post_message(user="W0ALICE01", channel="C0SHARED1", text="boom")
    await grid.settle()


@pytest.mark.gridbot(plugins=["shaky"])
async def test_an_error_expected_by_the_call(grid):
    assert await grid.say("alice", "C0SHARED1", "boom", expect_errors=True) == []
    [error] = grid.errors
    assert (error.kind, error.plugin, error.handler) == ("error", "shaky", "boom")
    assert isinstance(error.exception, ValueError)
    assert (await grid.ask("alice", "C0SHARED1", "fine")).text == "fine"


@pytest.mark.gridbot(plugins=["broken", "shaky", "echo"], expect_errors=True)
async def test_errors_expected_by_the_marker(grid):
    assert await grid.say("alice", "C0SHARED1", "slow") == []
    assert [(e.kind, e.plugin) for e in grid.errors] == [("load", "broken"), ("timeout", "shaky")]
    assert (await grid.ask("alice", "C0SHARED1", "echo still here")).text == "still here"
"""


def test_plugin_mistakes_fail_the_test_with_the_plugins_own_error(tmp_path: Path) -> None:
    project = fresh_project(tmp_path)
    project.write("broken.py", BROKEN)
    project.write("shaky.py", SHAKY)
    project.write("hooked.py", HOOKED)
    project.write("test_mistakes.py", TESTS)
    done, outcomes = project.outcomes()
    shown = done.stdout + done.stderr
    assert set(outcomes) == {
        line.split("(")[0].removeprefix("async def ")
        for line in TESTS.splitlines()
        if line.startswith("async def")
    }

    failed = outcomes["test_a_plugin_that_does_not_load"]
    assert (
        "plugin broken: import failed at broken.py:3: NameError: name 'undefined_name' is not defined"
        in failed
    )
    assert "got 0" not in failed

    failed = outcomes["test_a_handler_that_raises"]
    assert "plugin shaky, handler boom: raised ValueError: bad input" in failed
    assert "shaky.py:10: ValueError" in failed or 'shaky.py", line 10' in shown  # its traceback, chained

    assert "plugin shaky, handler slow: timed out after 0.2 s" in outcomes["test_a_handler_that_times_out"]
    assert (
        "handler connect (on_startup): raised ConnectionError: no database"
        in (outcomes["test_a_startup_hook_that_raises"])
    )
    assert (
        "plugin shaky, handler boom: raised ValueError"
        in (outcomes["test_a_failure_after_the_last_say_fails_the_teardown"])
    )
    assert outcomes["test_an_error_expected_by_the_call"] == "passed", outcomes
    assert outcomes["test_errors_expected_by_the_marker"] == "passed", outcomes
