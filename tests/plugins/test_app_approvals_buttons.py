"""app_approvals through its buttons, over Socket Mode: an org admin approves or restricts with a
click and the request message shows the outcome in place; anyone else is refused, privately."""

from __future__ import annotations

from typing import Any

import pytest

from gridbot.testing.pytest_plugin import Grid
from gridbot.testing.simulator import PostedMessage

ADMIN_METHODS = (
    "admin.apps.approve",
    "admin.apps.restrict",
    "admin.apps.clearResolution",
    "admin.apps.uninstall",
)
REQUEST_EVENT: dict[str, Any] = {
    "type": "app_requested",
    "app_request": {
        "id": "Ar0REQ0001",
        "app": {"id": "A0OTHER01", "name": "Polly"},
        "previous_resolution": None,
        "user": {"id": "W0BOB0001", "name": "bob"},
        "team": {"id": "T0TEAM002", "name": "Team Two", "domain": "acme-two"},
        "enterprise": {"id": "E0GRID001", "name": "Acme Corp"},
        "scopes": [
            {"name": "chat:write", "description": "", "is_sensitive": False, "token_type": "bot"},
            {"name": "channels:read", "description": "", "is_sensitive": False, "token_type": "bot"},
        ],
        "message": "for the stand-up polls",
    },
}
SOCKET_MODE = {"T0TEAM001": "socket_mode", "T0TEAM002": "socket_mode"}
SETTINGS = {"app_approvals": {"admin_channel": "C0SHARED1", "user_token": "xoxp-sim-dave"}}

pytestmark = pytest.mark.gridbot(plugins=["app_approvals"], settings=SETTINGS, transports=SOCKET_MODE)


def admin_calls(grid: Grid) -> list[Any]:
    return [c for m in ADMIN_METHODS for c in grid.calls_to(m)]


async def request(grid: Grid) -> PostedMessage:
    [post] = await grid.send_event(REQUEST_EVENT, team="T0TEAM001")
    return post


async def test_the_request_carries_buttons_for_the_team_and_the_org(grid: Grid) -> None:
    post = await request(grid)
    assert post.blocks is not None
    [actions] = [b for b in post.blocks if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("app_approvals:approve:team", "Ar0REQ0001 team T0TEAM002"),
        ("app_approvals:approve:org", "Ar0REQ0001 org"),
        ("app_approvals:restrict:team", "Ar0REQ0001 team T0TEAM002"),
        ("app_approvals:restrict:org", "Ar0REQ0001 org"),
    ]
    assert "`!approve Ar0REQ0001 team T0TEAM002`" in post.text  # the text commands still work


async def test_an_admin_approves_with_a_click_and_the_message_shows_who_and_when(grid: Grid) -> None:
    post = await request(grid)
    answer = await grid.click("dave", post, "app_approvals:approve:team")
    assert grid.sim.admin.resolutions == {("T0TEAM002", "A0OTHER01"): "approved"}
    [call] = grid.calls_to("admin.apps.approve")
    assert call.user_id == "W0DAVE001" and call.args == {"request_id": "Ar0REQ0001", "team_id": "T0TEAM002"}
    [update] = answer.updated
    assert update["text"].startswith(
        "✅ Approved Polly (request Ar0REQ0001) for team T0TEAM002, by <@W0DAVE001> on <!date^"
    )
    shown = grid.sim.message(post.channel, post.ts)
    assert shown is not None and not any(
        b["type"] == "actions" for b in shown["blocks"]
    )  # decided: no buttons
    assert answer.ephemeral == []
    checks = [c for c in grid.calls_to("users.info") if c.args["user"] == "W0DAVE001"]
    assert len(checks) == 1  # asked afresh on the click


async def test_an_org_wide_restrict_with_a_click(grid: Grid) -> None:
    post = await request(grid)
    answer = await grid.click("dave", post, "app_approvals:restrict:org")
    assert grid.sim.admin.resolutions == {("E0GRID001", "A0OTHER01"): "restricted"}
    assert answer.updated[0]["text"].startswith("⛔ Restricted Polly (request Ar0REQ0001) for the whole org")


@pytest.mark.parametrize("who", ["alice", "carol"])
async def test_a_non_admins_click_is_refused_to_them_alone_and_nothing_changes(grid: Grid, who: str) -> None:
    post = await request(grid)
    answer = await grid.click(who, post, "app_approvals:approve:org")
    assert [m.text for m in answer.ephemeral] == ["Sorry, only org admins and owners can decide about apps."]
    assert answer.ephemeral[0].user == grid.user_id(who)
    assert admin_calls(grid) == [] and answer.updated == [] and answer.posted == []
    assert grid.sim.admin.resolutions == {}


async def test_slacks_error_is_answered_to_the_clicker_in_words(grid: Grid) -> None:
    post = await request(grid)
    reply = await grid.ask("dave", "C0SHARED1", "!restrict A0OTHER01 org")  # by command, meanwhile
    assert reply.text.startswith("Done: restricted app A0OTHER01 for the whole org")
    answer = await grid.click("dave", post, "app_approvals:approve:team")
    [text] = [m.text for m in answer.ephemeral]
    assert text.startswith("I couldn't approve Polly (request Ar0REQ0001): ")
    assert text.endswith("that request has already been answered.") and answer.updated == []
