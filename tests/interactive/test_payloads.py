"""Every kind of interaction, end to end over Socket Mode on real sockets: routed to its handler,
acked once on the socket that carried it, with the answer Slack shows the user."""

from __future__ import annotations

from interactive.kit import GRID

from gridbot.testing.pytest_plugin import Grid
from gridbot.testing.simulator import PostedMessage

pytestmark = GRID


async def buttons(grid: Grid) -> PostedMessage:
    [message] = await grid.say("alice", "C0SHARED1", "!buttons")
    return message


async def test_a_slash_command_answers_at_once_then_in_the_channel(grid: Grid) -> None:
    answer = await grid.slash("alice", "C0SHARED1", "/ticket", "printer on fire")
    assert answer.ack == {"response_type": "ephemeral", "text": "Filing printer on fire"}
    assert [m.text for m in answer.ephemeral] == ["Filing printer on fire"]  # only alice saw it
    assert [m.text for m in answer.posted] == ["Ticket filed: printer on fire"]  # respond(in_channel)
    [ack] = [a for a in grid.sim.acks if a.envelope_id == answer.sent.envelope_id]
    assert ack.counted  # on the socket that carried it


async def test_a_returned_string_is_the_slash_commands_answer(grid: Grid) -> None:
    answer = await grid.slash("bob", "G0TWOPRIV", "/echo-back", 'one "two three"')
    assert answer.text == "2 words from W0BOB0001 served by T0TEAM002"


async def test_a_button_updates_its_message_and_answers_the_clicker(grid: Grid) -> None:
    message = await buttons(grid)
    answer = await grid.click("alice", message, "approve")
    assert answer.acked and answer.ack is None
    [update] = answer.updated
    assert update["text"].startswith("Approved req-1 by <@W0ALICE01>")
    assert [m.text for m in answer.ephemeral] == [f"Thanks, served by {message.team_id}"]


async def test_an_action_id_pattern_routes_the_click(grid: Grid) -> None:
    message = await buttons(grid)
    answer = await grid.click("alice", message, "vote:up")
    assert answer.text == "voted up"


async def test_a_shortcut_opens_a_modal_and_its_submission_round_trips_private_metadata(grid: Grid) -> None:
    answer = await grid.shortcut("alice", "new_ticket")
    [opened] = answer.opened
    assert opened["callback_id"] == "ticket_modal" and answer.view is not None
    answer = await grid.submit("alice", {"title": {"input": "new desk"}})
    assert answer.view is None  # an empty ack closes the modal
    assert [m.text for m in answer.posted] == ["New ticket: new desk"]
    assert answer.posted[0].channel == "C0ONE0001"  # from private_metadata


async def test_a_validation_error_is_shown_back_in_the_modal(grid: Grid) -> None:
    await grid.shortcut("alice", "new_ticket")
    answer = await grid.submit("alice", {"title": {"input": ""}})
    assert answer.ack == {"response_action": "errors", "errors": {"title": "A title, please"}}
    assert answer.view_errors == {"title": "A title, please"}
    assert answer.view is not None and answer.view["callback_id"] == "ticket_modal"  # still open
    assert answer.posted == []


async def test_push_and_update_act_on_the_view_stack(grid: Grid) -> None:
    await grid.shortcut("alice", "new_ticket")
    answer = await grid.submit("alice", {"title": {"input": "more"}})
    assert answer.view is not None and answer.view["title"]["text"] == "Details"
    stack = grid.sim.interactivity.views.modals["W0ALICE01"].views
    assert [v["callback_id"] for v in stack] == ["ticket_modal", "details_modal"]
    answer = await grid.submit("alice", {"title": {"input": "x"}})
    assert answer.view is not None and answer.view["title"]["text"] == "Details (saved)"


async def test_closing_a_modal_that_asked_to_be_told(grid: Grid) -> None:
    await grid.shortcut("alice", "new_ticket")
    answer = await grid.close_modal("alice")
    assert answer is not None and [m.text for m in answer.posted] == ["A ticket was abandoned"]


async def test_a_message_shortcut_gets_the_message(grid: Grid) -> None:
    ts = await grid.sim.post_message(user="W0ALICE01", channel="C0ONE0001", text="hello there")
    await grid.settle()
    answer = await grid.message_shortcut("dave", "C0ONE0001", ts, "quote")
    assert answer.text == "quoted: hello there"


async def test_an_external_select_gets_its_options(grid: Grid) -> None:
    await grid.shortcut("alice", "new_ticket")
    answer = await grid.suggest("alice", "assignee", "b")
    assert answer.options == [{"text": {"type": "plain_text", "text": "Bob"}, "value": "bob"}]


async def test_a_click_no_handler_answers_is_acked_empty_at_once(grid: Grid) -> None:
    message = await buttons(grid)
    answer = await grid.click("alice", message, "orphan")
    assert answer.acked and answer.ack is None and answer.sent.seconds < 1.0
    assert grid.runtime.interactions is not None
    assert grid.runtime.interactions.counters.empty_unrouted == 1


async def test_respond_can_replace_or_delete_the_message_with_the_button(grid: Grid) -> None:
    message = await buttons(grid)
    await grid.click("alice", message, "replace")
    shown = grid.sim.message(message.channel, message.ts)
    assert shown is not None and shown["text"] == "Replaced by the answer"
    await grid.click("alice", message, "remove")
    assert grid.sim.message(message.channel, message.ts) is None


async def test_a_modal_is_updated_in_place(grid: Grid) -> None:
    answer = await grid.shortcut("alice", "two_step")
    [opened] = answer.opened
    assert answer.view is not None and answer.view["id"] == opened["id"]
    assert answer.view["title"]["text"] == "Step 2"


async def test_after_interactions_say_still_waits_for_its_reply(grid: Grid) -> None:
    """Interactions are decided by the same dedup stage as messages: the fixture's settling counts
    them as delivered too, so a later say() still waits for its own copies."""
    for n in range(4):
        await grid.slash("alice", "C0SHARED1", "/echo-back", f"n{n}")
    for _ in range(3):
        message = await buttons(grid)
        assert message.text == "Pick one"
