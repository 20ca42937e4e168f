"""whois through the plugin authors' fixture: people of every team, legacy ids, strangers."""

from __future__ import annotations

import pytest

from gridbot.testing.pytest_plugin import Grid

pytestmark = pytest.mark.gridbot(plugins=["whois"])


async def test_a_user_of_team_two_asks_about_alice_in_the_shared_channel(grid: Grid) -> None:
    reply = await grid.ask("bob", "C0SHARED1", f"whois {grid.mention('alice')}")
    assert reply.channel == "C0SHARED1"
    assert "Alice Anders" in reply.text
    assert "`W0ALICE01`" in reply.text
    assert "home team: Team One (`T0TEAM001`)" in reply.text
    assert "Team One (`T0TEAM001`), Team Two (`T0TEAM002`)" in reply.text
    assert "org admin: no · org owner: no" in reply.text


async def test_a_user_of_a_team_without_the_app_is_resolved_through_users_info(grid: Grid) -> None:
    reply = await grid.ask("bob", "C0SHARED1", "whois <@W0CAROL01>")
    assert "Carol Chen" in reply.text
    assert "home team: Team Three (`T0TEAM003`)" in reply.text
    assert [c.args["user"] for c in grid.calls_to("users.info")] == ["W0CAROL01"]


async def test_admin_flags_come_from_enterprise_user(grid: Grid) -> None:
    reply = await grid.ask("alice", "C0SHARED1", "whois <@W0DAVE001|dave>")
    assert "org admin: yes · org owner: no" in reply.text
    assert "Team Three (`T0TEAM003`)" in reply.text


async def test_a_legacy_u_id_is_the_same_person_under_the_stable_w_id(grid: Grid) -> None:
    # A legacy id is unique only to its team, so it is asked where Team 2 answers; Team 2's copy
    # carries the mapping to the W id (enterprise-grid-developer-guide, "A translation layer for the
    # Enterprise Grid"), and the answer names the stable id.
    reply = await grid.ask("bob", "G0TWOPRIV", "whois <@U0BOB0001>")
    assert "• id: `W0BOB0001`\n" in reply.text
    # A later question about the W id is answered from the cache: one person, one lookup.
    await grid.ask("bob", "G0TWOPRIV", "whois <@W0BOB0001>")
    assert len(grid.calls_to("users.info")) == 1


async def test_an_unknown_user_gets_a_plain_answer(grid: Grid) -> None:
    reply = await grid.ask("carol", "C0SHARED1", "whois <@W0GHOST01>")
    assert "I can't find `W0GHOST01` in this org" in reply.text


async def test_guests_are_marked(grid: Grid) -> None:
    reply = await grid.ask("bob", "G0TWOPRIV", "whois <@W0ERIN001>")
    assert reply.text.endswith("· guest")


@pytest.mark.parametrize("text", ["!whois <@W0ALICE01>", "<@U0BOT0001> whois <@W0ALICE01>"])
async def test_the_command_forms_answer_once(grid: Grid, text: str) -> None:
    reply = await grid.ask("carol", "C0SHARED1", text)
    assert "Alice Anders" in reply.text


async def test_whois_without_a_mention_explains_itself(grid: Grid) -> None:
    reply = await grid.ask("carol", "C0SHARED1", "!whois alice")
    assert reply.text.startswith("Usage: `whois @user`")
