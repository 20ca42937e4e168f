"""help lists every loaded plugin's commands with their docstrings."""

from __future__ import annotations

import pytest

from gridbot.testing.pytest_plugin import Grid

pytestmark = pytest.mark.gridbot(plugins=["echo", "help", "whois"])


async def test_help_lists_commands_with_their_docstrings(grid: Grid) -> None:
    reply = await grid.ask("alice", "C0SHARED1", "!help")
    lines = reply.text.splitlines()
    assert lines[0] == "Commands (say `!<command>` or `@bot <command>`):"
    assert "• *help*: list the commands, or explain one. (`help [command]`)" in lines
    assert any(line.startswith("• *whois*: their stable id, home team") for line in lines)
    assert "• echo <text>: say <text> back." in lines  # a message handler with a docstring


async def test_help_about_one_command_shows_its_whole_docstring(grid: Grid) -> None:
    reply = await grid.ask("bob", "C0SHARED1", "<@U0BOT0002> help whois")
    assert reply.text.startswith("*whois* (whois)\nwhois @user: their stable id")


async def test_in_a_direct_message_no_prefix_is_needed(grid: Grid) -> None:
    reply = await grid.ask("carol", "D0CAROLDM", "help nope")
    assert reply.text == "There is no command `nope`. Say `help` for the list."


@pytest.mark.gridbot(command_prefix="?")
async def test_the_configured_prefix_is_used(grid: Grid) -> None:
    assert await grid.say("alice", "C0SHARED1", "!help") == []
    reply = await grid.ask("alice", "C0SHARED1", "?help")
    assert "`?<command>`" in reply.text
