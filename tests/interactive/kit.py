"""A plugin with a handler for every kind of interaction, for the end-to-end tests (loaded by the
``grid`` fixture as ``interactive.kit``), and the markers those tests share."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from gridbot import InteractiveContext, Plugin

plugin = Plugin("kit")

SOCKET_MODE = {"T0TEAM001": "socket_mode", "T0TEAM002": "socket_mode"}
GRID = pytest.mark.gridbot(plugins=["interactive.kit"], transports=SOCKET_MODE)
# The same teams served by the runtime's [events] listener: every action POSTed to it.
HTTP = {"T0TEAM001": "http", "T0TEAM002": "http"}
GRID_HTTP = pytest.mark.gridbot(plugins=["interactive.kit"], transports=HTTP)


def modal(callback_id: str, title: str, *, metadata: str = "", notify: bool = False) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "private_metadata": metadata,
        "notify_on_close": notify,
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "input"},
            }
        ],
    }


BUTTONS = [
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "req-1",
                "text": {"type": "plain_text", "text": "OK"},
            },
            {
                "type": "button",
                "action_id": "vote:up",
                "value": "up",
                "text": {"type": "plain_text", "text": "+1"},
            },
            {
                "type": "button",
                "action_id": "slow",
                "value": "s",
                "text": {"type": "plain_text", "text": "Slow"},
            },
            {"type": "button", "action_id": "late_modal", "text": {"type": "plain_text", "text": "Late"}},
            {"type": "button", "action_id": "orphan", "text": {"type": "plain_text", "text": "Nobody"}},
            {"type": "button", "action_id": "replace", "text": {"type": "plain_text", "text": "Replace"}},
            {"type": "button", "action_id": "remove", "text": {"type": "plain_text", "text": "Remove"}},
        ],
    }
]


@plugin.command("buttons")
async def buttons(ctx: Any) -> None:
    """Post the message with the buttons the tests click."""
    await ctx.reply("Pick one", blocks=BUTTONS)


@plugin.slash("/ticket")
async def ticket(ctx: InteractiveContext, text: str) -> str:
    """An immediate ephemeral answer (the return value), then a message for everyone."""
    await ctx.ack(text=f"Filing {text}")
    await ctx.respond(f"Ticket filed: {text}", in_channel=True)
    return "ignored: acked already"


@plugin.slash("/echo-back")
async def echo_back(ctx: InteractiveContext, args: list[str]) -> str:
    return f"{len(args)} words from {ctx.user_id} served by {ctx.team_id}"


@plugin.action("approve")
async def approve(ctx: InteractiveContext, value: str) -> None:
    await ctx.ack()
    await ctx.update(f"Approved {value} by <@{ctx.user_id}> (team {ctx.interaction.user_team_id})")
    await ctx.respond(f"Thanks, served by {ctx.team_id}")


@plugin.action(re.compile(r"vote:(up|down)"), block_id="decide")
async def vote(ctx: InteractiveContext, value: str) -> None:
    await ctx.respond(f"voted {value}")


@plugin.action("slow")
async def slow(ctx: InteractiveContext) -> None:
    await asyncio.sleep(2.8)  # the handler's own slow work, past the ack deadline
    await ctx.respond("done, late")


@plugin.action("late_modal")
async def late_modal(ctx: InteractiveContext) -> None:
    await asyncio.sleep(3.1)  # past the trigger_id's 3 s
    await ctx.open_modal(modal("never", "Too late"))
    await ctx.respond("unreachable")


@plugin.action("replace")
async def replace(ctx: InteractiveContext) -> None:
    await ctx.respond("Replaced by the answer", replace_original=True)


@plugin.action("remove")
async def remove(ctx: InteractiveContext) -> None:
    await ctx.respond(delete_original=True)


@plugin.shortcut("two_step")
async def two_step(ctx: InteractiveContext) -> None:
    opened = await ctx.open_modal(modal("step", "Step 1"))
    await ctx.update_modal(modal("step", "Step 2"), view_id=opened["id"], hash=opened["hash"])


@plugin.shortcut("new_ticket")
async def new_ticket(ctx: InteractiveContext) -> None:
    await ctx.open_modal(modal("ticket_modal", "New ticket", metadata="C0ONE0001", notify=True))


@plugin.message_shortcut("quote")
async def quote(ctx: InteractiveContext, message: dict[str, Any]) -> None:
    await ctx.respond(f"quoted: {message.get('text')}")


@plugin.view_submission("ticket_modal")
async def ticket_submitted(
    ctx: InteractiveContext, values: dict[str, Any], metadata: str
) -> dict[str, Any] | None:
    title = values["title"]["input"]
    if not title:
        return {"response_action": "errors", "errors": {"title": "A title, please"}}
    if title == "more":
        await ctx.ack(push=modal("details_modal", "Details"))
        return None
    await ctx.ack()
    await ctx.post(metadata, f"New ticket: {title}")
    return None


@plugin.view_submission("details_modal")
async def details(ctx: InteractiveContext) -> None:
    await ctx.ack(update=modal("details_modal", "Details (saved)"))


@plugin.view_closed("ticket_modal")
async def ticket_closed(ctx: InteractiveContext, metadata: str) -> None:
    await ctx.post(metadata, "A ticket was abandoned")


@plugin.options("assignee")
async def assignees(ctx: InteractiveContext, value: str) -> None:
    names = ["alice", "bob", "carol"]
    await ctx.ack(options=[(n.title(), n) for n in names if n.startswith(value)])
