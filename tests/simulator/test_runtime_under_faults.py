"""The real runtime against the simulator's faithful faults: late copies, duplicates, 429s.

Each test drives gridbot through the ``grid`` fixture (real sockets, real slack_sdk clients) and
asserts what a user sees: every message answered, once.
"""

from __future__ import annotations

import pytest

from gridbot.testing.pytest_plugin import GridFactory

SHARED = "C0SHARED1"


async def test_a_burst_of_replies_in_one_channel_is_late_not_lost_nor_doubled(
    grid_factory: GridFactory,
) -> None:
    """chat.postMessage allows about one message a second per channel (slack-protocol-notes.md E):
    the runtime's client waits out each 429's Retry-After."""
    grid = await grid_factory(plugins=["echo"])
    for n in range(4):
        await grid.sim.post_message(user="W0ALICE01", channel=SHARED, text=f"echo burst {n}")
    await grid.settle(timeout=30)
    assert sorted(p.text for p in grid.replies) == [f"burst {n}" for n in range(4)]
    assert any(c.status == 429 for c in grid.calls_to("chat.postMessage"))  # some were late
    marker = await grid.ask("alice", "C0ONE0001", "echo marker")  # nothing else still on its way
    assert marker.text == "marker" and len(grid.replies) == 5


async def test_a_burst_of_replies_in_one_conversation_is_late_not_lost(grid_factory: GridFactory) -> None:
    """Slack allows about one post a second per channel (slack-protocol-notes.md E): ten replies
    wait their turn through 429s and Retry-After, within the daemon's default handler timeout."""
    grid = await grid_factory(plugins=["echo"], handler_timeout=30.0)
    for n in range(10):  # about ten seconds of Slack's posting budget in one conversation
        await grid.sim.post_message(user="W0CAROL01", channel="D0CAROLDM", text=f"echo dm {n}")
    await grid.settle(timeout=40)
    assert sorted(p.text for p in grid.replies) == sorted(f"dm {n}" for n in range(10))


async def test_the_responsible_teams_copy_arriving_late_is_answered_once(grid_factory: GridFactory) -> None:
    """Team One (the host, elected) gets its copies after standby_grace (0.5 s in tests)."""
    grid = await grid_factory(plugins=["echo"])
    assert (await grid.ask("carol", SHARED, "echo first")).text == "first"
    grid.sim.lag(0.8, team="T0TEAM001", match="echo late")  # the user's messages, not the replies
    for n in range(3):
        assert (await grid.ask("carol", SHARED, f"echo late {n}")).text == f"late {n}"
    rtm_copies = [(i.kind, i.team) for i in grid.sim.injected if i.app_id is None]
    assert rtm_copies == [("lag", "T0TEAM001")] * 3


@pytest.mark.parametrize("transport", ["rtm", "socket_mode"])
async def test_duplicated_and_reordered_copies_are_answered_once(
    grid_factory: GridFactory, transport: str
) -> None:
    """Socket Mode duplicates carry another installation's authorization and their own event_id
    (platform-2026.md: "Two deliveries ~530 ms apart with different team ids")."""
    grid = await grid_factory(plugins=["echo"], transports={"T0TEAM001": transport, "T0TEAM002": transport})
    grid.sim.duplicate(after=0.05, match="echo mixed")
    grid.sim.reorder(0.1, match="echo mixed")
    for n in range(3):
        await grid.sim.post_message(user="W0DAVE001", channel=SHARED, text=f"echo mixed {n}")
    await grid.settle(timeout=30)
    assert sorted(p.text for p in grid.replies) == [f"mixed {n}" for n in range(3)]
    assert {i.kind for i in grid.sim.injected} == {"lag", "duplicate"}
    assert (await grid.ask("alice", "C0ONE0001", "echo marker")).text == "marker"
    assert len(grid.replies) == 4
