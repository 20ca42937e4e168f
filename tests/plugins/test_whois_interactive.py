"""whois as a slash command and a message shortcut, over Socket Mode: answered to the asker alone."""

from __future__ import annotations

import pytest

from gridbot.testing.pytest_plugin import Grid

SOCKET_MODE = {"T0TEAM001": "socket_mode", "T0TEAM002": "socket_mode"}
pytestmark = pytest.mark.gridbot(plugins=["whois"], transports=SOCKET_MODE)


async def test_slash_whois_answers_the_asker_alone_with_the_cross_workspace_profile(grid: Grid) -> None:
    answer = await grid.slash("carol", "C0SHARED1", "/whois", "<@W0DAVE001|dave>")
    assert answer.posted == []  # nobody else sees it
    [shown] = answer.ephemeral
    assert shown.user == "W0CAROL01"
    assert shown.text.startswith("*Dave Dunn* (@dave)")
    assert "Team One (`T0TEAM001`), Team Two (`T0TEAM002`), Team Three (`T0TEAM003`)" in shown.text
    assert "org admin: yes" in shown.text


async def test_slash_whois_without_a_mention_says_how(grid: Grid) -> None:
    answer = await grid.slash("alice", "C0SHARED1", "/whois", "dave")
    assert answer.ack == {
        "response_type": "ephemeral",
        "text": "Usage: `/whois @user` (mention the person, so Slack gives me their id).",
    }
    assert [m.text for m in answer.ephemeral] == [answer.ack["text"]]


async def test_who_wrote_this_names_the_author_of_a_message(grid: Grid) -> None:
    ts = await grid.sim.post_message(user="W0BOB0001", channel="C0SHARED1", text="lunch?")
    await grid.settle()
    answer = await grid.message_shortcut("alice", "C0SHARED1", ts, "whois_author")
    [shown] = answer.ephemeral
    assert shown.user == "W0ALICE01" and answer.posted == []
    assert shown.text.startswith("*Bob Brown* (@bob)")
    assert "• id: `W0BOB0001`" in shown.text
