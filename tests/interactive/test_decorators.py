"""The interactive decorators: signatures checked at load, one owner per selector across plugins,
the first matching handler (one per payload), and what an ack may carry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gridtest import log_lines

from gridbot import InteractiveContext, Plugin, PluginError
from gridbot.dispatch import Router
from gridbot.interactive.ack import ack_body, option, returned_body
from gridbot.interactive.payload import read_interaction


def test_a_parameter_the_kind_never_passes_fails_the_load() -> None:
    plugin = Plugin("p")
    with pytest.raises(
        PluginError, match=r"handler go: parameter 'values' is never passed \(available: args, text\)"
    ):

        @plugin.slash("/go")
        async def go(ctx: InteractiveContext, values: dict[str, Any]) -> None: ...


def test_bad_declarations_fail_the_load_with_the_plugins_name() -> None:
    plugin = Plugin("p")
    with pytest.raises(PluginError, match="plugin p: a slash command is '/name', not 'go'"):
        plugin.slash("go")
    with pytest.raises(PluginError, match=r"plugin p: action\(\) needs an action_id or a block_id"):
        plugin.action()
    with pytest.raises(PluginError, match="must be an async def"):
        plugin.shortcut("s")(lambda ctx: None)  # type: ignore[arg-type, return-value]
    with pytest.raises(PluginError, match=r"an id is a str or an re\.Pattern, not int"):
        plugin.action(5)  # type: ignore[arg-type]


def test_a_selector_declared_twice_in_one_plugin_fails_its_load() -> None:
    plugin = Plugin("p")

    @plugin.view_submission("form")
    async def one(ctx: InteractiveContext) -> None: ...

    with pytest.raises(PluginError, match="handler two: view_submission form is declared twice"):

        @plugin.view_submission("form")
        async def two(ctx: InteractiveContext) -> None: ...


def test_two_plugins_declaring_one_slash_command_the_first_owns_it() -> None:
    first, second = Plugin("first"), Plugin("second")

    @first.slash("/deploy")
    async def mine(ctx: InteractiveContext) -> None: ...

    @second.slash("/deploy")
    async def theirs(ctx: InteractiveContext) -> None: ...

    @second.action("other")
    async def other(ctx: InteractiveContext) -> None: ...

    with log_lines("info") as logs:
        router = Router([first, second], command_prefix="!", bot_user_ids=set())
    [line] = [json.loads(x) for x in logs.getvalue().splitlines() if "interaction_conflict" in x]
    assert line["plugins"] == ["first", "second"] and line["handlers"] == ["mine", "theirs"]
    assert line["selector"] == "slash_command /deploy"
    assert [(r.plugin, r.name) for r in router.interactive.routes] == [("first", "mine"), ("second", "other")]


def test_an_ack_carries_only_what_its_kind_accepts() -> None:
    slash = read_interaction("slash_commands", {"command": "/x", "text": "", "user_id": "W1"})
    submission = read_interaction("interactive", {"type": "view_submission", "view": {"id": "V1"}})
    options = read_interaction("interactive", {"type": "block_suggestion", "action_id": "a", "value": "b"})
    click = read_interaction("interactive", {"type": "block_actions", "actions": [{"action_id": "a"}]})
    assert ack_body(slash, text="hi", in_channel=True) == {"response_type": "in_channel", "text": "hi"}
    assert ack_body(submission, errors={"b": "no"}) == {"response_action": "errors", "errors": {"b": "no"}}
    assert ack_body(submission, clear=True) == {"response_action": "clear"}
    assert ack_body(options, options=[("Bob", "bob")]) == {"options": [option(("Bob", "bob"))]}
    assert ack_body(click) is None
    with pytest.raises(ValueError, match="a block_actions ack cannot carry text"):
        ack_body(click, text="hi")
    with pytest.raises(ValueError, match="one response_action per ack"):
        ack_body(submission, errors={"b": "no"}, clear=True)
    assert returned_body(slash, "hello") == {"response_type": "ephemeral", "text": "hello"}
    with pytest.raises(TypeError, match="a block_actions handler returns None, a dict"):
        returned_body(click, "hello")


def test_a_response_url_never_shows_in_a_repr() -> None:
    """It lets anyone post in the channel as the app for 30 minutes: kept out of logs as tokens are."""
    url = "https://hooks.slack.com/actions/T1/123/s3cr3t"
    interaction = read_interaction("slash_commands", {"command": "/x", "response_url": url, "user_id": "W1"})
    assert interaction.response_url == url
    assert "s3cr3t" not in repr(interaction)
