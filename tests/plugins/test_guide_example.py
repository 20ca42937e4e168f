"""The plugin authoring guide's example test, against its example plugin (README.md, "Writing plugins")."""

import pytest

pytestmark = pytest.mark.gridbot(
    plugins=["fixtures.sample_plugins.standup"], settings={"standup": {"channel": "C0SHARED1"}}
)


async def test_people_of_two_teams_check_in(grid):
    assert await grid.say("bob", "C0SHARED1", "in late today") == []  # a reaction, no reply
    assert await grid.say("alice", "shared-all", "in") == []
    reply = await grid.ask("carol", "C0SHARED1", "!who")  # exactly one reply
    assert reply.text == "Bob Brown (Team Two): late today\nAlice Anders (Team One)"
    assert len(grid.sim.reactions) == 2
