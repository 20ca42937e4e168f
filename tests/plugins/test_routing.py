"""Which handlers a message runs: one answer per plugin for a command, one owner per command name."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from gridbot import Context, Plugin
from gridbot.dispatch import Router
from gridbot.events import Event, normalise
from gridbot.testing.pytest_plugin import Grid

BOT = "U0BOT0001"


def message(text: str, channel: str = "C0SHARED1", **fields: Any) -> Event:
    raw = {"type": "message", "channel": channel, "ts": "1.0", "user": "W0ALICE01", "text": text, **fields}
    return normalise(raw, team_id="T0TEAM001", enterprise_id=None)


def routed(router: Router, event: Event) -> list[tuple[str, str, dict[str, Any]]]:
    return [(route.plugin, route.name, kwargs) for route, kwargs in router.match(event)]


def lookup_plugin(name: str = "lookup") -> Plugin:
    """Like whois: a ``find @user`` pattern (matching the command forms too), and a ``find`` command."""
    p = Plugin(name)

    @p.message(r"find (?P<who><@\w+>)$")
    async def find_pattern(ctx: Context, who: str) -> None: ...

    @p.command("find")
    async def find_command(ctx: Context, text: str) -> None: ...

    return p


def listener_plugin() -> Plugin:
    """Another plugin that reacts to the same words, and to every message event."""
    p = Plugin("listener")

    @p.message(r"find")
    async def hears_find(ctx: Context) -> None: ...

    @p.event("message")
    async def every_message(ctx: Context) -> None: ...

    return p


def pinger(name: str) -> Plugin:
    p = Plugin(name)

    @p.command("ping")
    async def ping(ctx: Context) -> None: ...

    @p.command(f"only-{name}")
    async def own(ctx: Context) -> None: ...

    return p


# -- one plugin, several of its handlers match ----------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        message("find <@W0BOB0001>", channel="D0CAROLDM", channel_type="im"),  # a DM: a command too
        message("!find <@W0BOB0001>"),
        message(f"<@{BOT}> find <@W0BOB0001>"),
    ],
    ids=["dm", "prefix", "mention"],
)
def test_a_message_that_is_a_plugins_command_runs_only_that_command_of_the_plugin(event: Event) -> None:
    router = Router([lookup_plugin()], command_prefix="!", bot_user_ids={BOT})
    assert routed(router, event) == [("lookup", "find_command", {"text": "<@W0BOB0001>"})]


def test_the_same_words_without_a_command_form_run_the_pattern() -> None:
    router = Router([lookup_plugin()], command_prefix="!", bot_user_ids={BOT})
    assert routed(router, message("find <@W0BOB0001>")) == [
        ("lookup", "find_pattern", {"who": "<@W0BOB0001>"})
    ]


def test_other_plugins_patterns_and_event_handlers_still_run_beside_a_command() -> None:
    router = Router([lookup_plugin(), listener_plugin()], command_prefix="!", bot_user_ids={BOT})
    dm = message("find <@W0BOB0001>", channel="D0CAROLDM", channel_type="im")
    assert routed(router, dm) == [
        ("lookup", "find_command", {"text": "<@W0BOB0001>"}),
        ("listener", "hears_find", {}),
        ("listener", "every_message", {}),
    ]


def test_a_command_of_another_plugin_does_not_silence_this_plugins_pattern() -> None:
    other = Plugin("other")

    @other.command("find")
    async def other_find(ctx: Context) -> None: ...

    finder = Plugin("finder")

    @finder.message(r"^find (?P<who>\S+)$")
    async def find_pattern(ctx: Context, who: str) -> None: ...

    router = Router([other, finder], command_prefix="!", bot_user_ids={BOT})
    dm = message("find x", channel="D0CAROLDM", channel_type="im")
    assert routed(router, dm) == [("other", "other_find", {}), ("finder", "find_pattern", {"who": "x"})]


# -- two plugins declare one command -------------------------------------------------------------


@pytest.mark.parametrize("order", [["first", "second"], ["second", "first"]])
def test_the_plugin_listed_first_owns_a_command_name_and_start_up_says_so(order: list[str]) -> None:
    plugins = [pinger(name) for name in order]
    with capture_logs() as logs:
        router = Router(plugins, command_prefix="!", bot_user_ids={BOT})
    owner, later = order
    assert routed(router, message("!ping")) == [(owner, "ping", {})]
    assert routed(router, message(f"!only-{later}")) == [(later, "own", {})]  # the rest of it routes
    [conflict] = [e for e in logs if e["event"] == "dispatch.command_conflict"]
    assert conflict["log_level"] == "warning" and conflict["command"] == "ping"
    assert conflict["plugins"] == [owner, later] and conflict["handlers"] == ["ping", "ping"]
    # help lists what is routed: the later plugin's ping is not offered
    assert [(r.plugin, r.command) for r in router.routes if r.command == "ping"] == [(owner, "ping")]


def test_no_conflict_no_warning() -> None:
    with capture_logs() as logs:
        Router([pinger("first"), lookup_plugin()], command_prefix="!", bot_user_ids={BOT})
    assert [e for e in logs if e["event"] == "dispatch.command_conflict"] == []


# -- the bundled plugins, end to end --------------------------------------------------------------


@pytest.mark.gridbot(plugins=["whois"])
async def test_whois_in_a_direct_message_answers_once(grid: Grid) -> None:
    # "whois @x" in a DM is both whois's pattern and its command: one reply, from the command.
    reply = await grid.ask("carol", "D0CAROLDM", f"whois {grid.mention('alice')}")
    assert "Alice Anders" in reply.text


@pytest.mark.gridbot(plugins=["echo", "help", "whois"])
async def test_help_and_whois_in_a_direct_message_each_answer_once(grid: Grid) -> None:
    assert (await grid.ask("carol", "D0CAROLDM", "help whois")).text.startswith("*whois* (whois)")
    assert (await grid.ask("carol", "D0CAROLDM", "echo hi")).text == "hi"


@pytest.mark.gridbot(plugins=["help", "fixtures.sample_plugins.other_help"])
async def test_the_bundled_help_listed_first_keeps_help_and_lists_itself_once(grid: Grid) -> None:
    listing = (await grid.ask("alice", "C0SHARED1", "!help")).text
    assert listing.count("*help*") == 1 and "*hint*" in listing
    assert (await grid.ask("alice", "C0SHARED1", "!help help")).text.startswith("*help* (help)")
    assert (await grid.ask("alice", "C0SHARED1", "!hint")).text == "a hint"


@pytest.mark.gridbot(plugins=["fixtures.sample_plugins.other_help", "help"])
async def test_a_plugin_listed_before_help_owns_help(grid: Grid) -> None:
    assert (await grid.ask("alice", "C0SHARED1", "!help")).text == "other help"
