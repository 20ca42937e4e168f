"""Every kind of interaction end to end over HTTP, on real sockets: the simulator POSTs each user
action to the app's request URL (the runtime's ``[events]`` listener), signed and form-encoded
(platform-2026.md, "Interactivity": slash commands as form fields, the rest as ``payload=`` JSON;
"Ack within 3 s"; "They are not retried"), and what the user sees of the HTTP answer is what
they would see of the same ack over Socket Mode (tests/interactive/test_payloads.py)."""

from __future__ import annotations

import asyncio
import json
import urllib.parse

import pytest
from aiohttp import web
from gridtest import log_lines, serving, wait_until
from interactive.httpkit import APP, behind_a_balancer
from interactive.kit import GRID_HTTP
from interactive.test_grid import post_buttons
from slack_sdk.signature import SignatureVerifier

from gridbot.interactive.ack import ACK_DEADLINE
from gridbot.testing import GridSimulator
from gridbot.testing.harness import signing_secret
from gridbot.testing.pytest_plugin import Grid, GridFactory
from gridbot.testing.simulator import PostedMessage

T1, T2 = "T0TEAM001", "T0TEAM002"


def posted_over_http(grid: Grid) -> list[str]:
    """The outcome of each interaction the simulator POSTed (form bodies), oldest first."""
    return [str(d.outcome) for d in grid.sim.http.deliveries if d.kind == "form"]


async def buttons(grid: Grid) -> PostedMessage:
    [message] = await grid.say("alice", "C0SHARED1", "!buttons")
    return message


@GRID_HTTP
async def test_a_slash_command_is_posted_as_form_fields_and_answered_in_the_response(grid: Grid) -> None:
    answer = await grid.slash("alice", "C0SHARED1", "/ticket", "printer on fire")
    assert answer.sent.carrier == "http" and answer.sent.envelope_id is None
    assert answer.ack == {"response_type": "ephemeral", "text": "Filing printer on fire"}
    assert [m.text for m in answer.ephemeral] == ["Filing printer on fire"]  # only alice saw it
    assert [m.text for m in answer.posted] == ["Ticket filed: printer on fire"]  # respond(in_channel)
    assert posted_over_http(grid) == ["acked"]  # one POST, no retry
    assert len(grid.sim.envelopes_sent) == 0  # nothing over Socket Mode


@GRID_HTTP
async def test_a_returned_string_answers_and_the_form_fields_reach_the_handler(grid: Grid) -> None:
    answer = await grid.slash("bob", "G0TWOPRIV", "/echo-back", 'one "two three"')
    assert answer.text == f"2 words from W0BOB0001 served by {T2}"


@GRID_HTTP
async def test_a_click_updates_its_message_and_answers_the_clicker(grid: Grid) -> None:
    message = await buttons(grid)
    answer = await grid.click("alice", message, "approve")
    assert answer.sent.carrier == "http" and answer.acked and answer.ack is None
    [update] = answer.updated
    assert update["text"].startswith("Approved req-1 by <@W0ALICE01>")
    assert [m.text for m in answer.ephemeral] == [f"Thanks, served by {message.team_id}"]


@GRID_HTTP
async def test_a_global_shortcut_opens_a_modal_and_its_submission_posts(grid: Grid) -> None:
    answer = await grid.shortcut("alice", "new_ticket")
    [opened] = answer.opened
    assert opened["callback_id"] == "ticket_modal" and answer.view is not None
    answer = await grid.submit("alice", {"title": {"input": "new desk"}})
    assert answer.view is None  # the empty 200 closes the modal
    assert [(m.channel, m.text) for m in answer.posted] == [("C0ONE0001", "New ticket: new desk")]


@GRID_HTTP
async def test_a_message_shortcut_gets_the_message(grid: Grid) -> None:
    ts = await grid.sim.post_message(user="W0BOB0001", channel="C0SHARED1", text="the quote")
    await grid.settle()
    answer = await grid.message_shortcut("alice", "C0SHARED1", ts, "quote")
    assert answer.sent.carrier == "http"
    assert answer.text == "quoted: the quote"


@GRID_HTTP
async def test_a_validation_error_in_the_response_is_shown_in_the_modal(grid: Grid) -> None:
    await grid.shortcut("alice", "new_ticket")
    answer = await grid.submit("alice", {"title": {"input": ""}})
    assert answer.ack == {"response_action": "errors", "errors": {"title": "A title, please"}}
    assert answer.view_errors == {"title": "A title, please"}
    assert answer.view is not None and answer.view["callback_id"] == "ticket_modal"  # still open
    assert answer.posted == []


@GRID_HTTP
async def test_push_and_update_in_the_response_act_on_the_view_stack(grid: Grid) -> None:
    await grid.shortcut("alice", "new_ticket")
    answer = await grid.submit("alice", {"title": {"input": "more"}})
    assert answer.view is not None and answer.view["title"]["text"] == "Details"
    stack = grid.sim.interactivity.views.modals["W0ALICE01"].views
    assert [v["callback_id"] for v in stack] == ["ticket_modal", "details_modal"]
    answer = await grid.submit("alice", {"title": {"input": "x"}})
    assert answer.view is not None and answer.view["title"]["text"] == "Details (saved)"


@GRID_HTTP
async def test_a_modal_closed_is_posted_as_view_closed(grid: Grid) -> None:
    await grid.shortcut("alice", "new_ticket")
    answer = await grid.close_modal("alice")
    assert answer is not None and answer.sent.kind == "view_closed" and answer.sent.carrier == "http"
    assert [m.text for m in answer.posted] == ["A ticket was abandoned"]


@GRID_HTTP
async def test_an_external_select_gets_its_options_in_the_response(grid: Grid) -> None:
    await grid.shortcut("alice", "new_ticket")
    answer = await grid.suggest("alice", "assignee", "b")
    assert answer.sent.kind == "block_suggestion" and answer.sent.carrier == "http"
    assert answer.options == [{"text": {"type": "plain_text", "text": "Bob"}, "value": "bob"}]


@GRID_HTTP
async def test_a_late_handler_gets_an_empty_200_before_3s_and_its_work_goes_on(grid: Grid) -> None:
    """The handler sleeps 2.8 s: the runtime answers the POST with an empty 200 at 2.5 s (Slack
    shows no error), and the handler's respond() after it still reaches the user."""
    message = await buttons(grid)
    with log_lines("info") as logs:
        answer = await grid.click("alice", message, "slow")
    assert answer.acked and answer.ack is None and answer.error is None
    [post] = [d for d in grid.sim.http.deliveries if d.kind == "form"]
    [attempt] = post.attempts
    assert (attempt.status, post.answer) == (200, b"")
    assert ACK_DEADLINE - 0.05 <= attempt.seconds < 3.0
    assert answer.text == "done, late"  # respond() after the ack: the handler was not cancelled
    assert '"interactive.ack_late"' in logs.getvalue()


@GRID_HTTP
async def test_a_foreign_users_click_is_served_by_the_installed_team(grid: Grid) -> None:
    """Carol's team (Team Three) has no install. Her click on Team Two's message in the shared
    channel names her team; Team Two, whose bot wrote the message, serves it."""
    message = await post_buttons(grid.sim, "xoxb-sim-T0TEAM002", "C0SHARED1")
    assert message.team_id == T2
    answer = await grid.click("carol", message, "approve")
    assert answer.sent.payload["team"]["id"] == "T0TEAM003"  # what Slack says: the user's team
    [update] = [c for c in grid.calls_to("chat.update") if c.ok]
    assert update.team_id == message.team_id
    assert "(team T0TEAM003)" in update.args["text"]
    assert [m.text for m in answer.ephemeral] == [f"Thanks, served by {message.team_id}"]


@GRID_HTTP
async def test_a_foreign_users_slash_command_is_served_by_an_installation_of_the_org(grid: Grid) -> None:
    answer = await grid.slash("carol", "C0SHARED1", "/echo-back", "hello")
    assert answer.sent.payload["team_id"] == "T0TEAM003" and answer.sent.carrier == "http"
    assert answer.text == f"1 words from W0CAROL01 served by {T1}"


@GRID_HTTP
async def test_a_payload_posted_twice_to_one_runtime_is_handled_once(grid: Grid) -> None:
    message = await buttons(grid)
    grid.sim.interactivity.duplicate_next = True
    answer = await grid.click("alice", message, "approve")
    assert grid.sim.interactivity.copies_acked == 1  # both POSTs answered 200
    assert len(answer.updated) == 1 and len(answer.ephemeral) == 1
    assert grid.runtime.interactions is not None and grid.runtime.interactions.counters.duplicates == 1


@GRID_HTTP
async def test_nothing_answers_and_the_user_sees_slacks_error(grid: Grid) -> None:
    """The listener is gone (connection refused): not retried, the user sees Slack's error."""
    await grid.runtime.stop()
    sent = await grid.sim.interactivity.slash("W0ALICE01", "C0SHARED1", "/ticket", "x")
    assert not sent.acked and sent.carrier == "http"
    assert sent.error == '/ticket failed with the error "operation_timeout"'
    assert posted_over_http(grid) == ["gave_up"]
    [attempt] = grid.sim.http.attempts[-1:]
    assert attempt.result == "connection_failed"


async def test_an_answer_after_3s_is_no_ack_and_the_user_sees_slacks_error() -> None:
    """platform-2026.md, "Interactivity": "Ack within 3 s"; a 2xx after it counts for nothing."""
    got: list[bytes] = []

    async def slow(request: web.Request) -> web.Response:
        got.append(await request.read())
        await asyncio.sleep(3.3)
        return web.json_response({"response_action": "clear"})

    app = web.Application()
    app.router.add_post("/slow", slow)
    async with GridSimulator() as sim, serving(app) as url:
        await sim.http.subscribe(APP, url + "/slow", signing_secret(APP), verify=False)
        sent = await sim.interactivity.shortcut("W0ALICE01", "new_ticket")
    assert not sent.acked and sent.ack is None
    assert sent.error == "This app is not responding. Please try again later."
    assert 3.0 <= sent.seconds < 3.3
    [body] = got
    assert body.startswith(b"payload=")
    assert json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])["type"] == "shortcut"


async def test_a_command_and_the_interactivity_url_set_apart_get_their_own_signed_forms() -> None:
    """A slash command goes, as form fields, to its command's request URL; anything else, as
    ``payload=`` JSON, to the interactivity request URL; each signed with the app's secret."""
    got: dict[str, tuple[dict[str, list[str]], bool]] = {}
    verifier = SignatureVerifier(signing_secret(APP))

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        assert request.content_type == "application/x-www-form-urlencoded"
        got[request.path] = (
            urllib.parse.parse_qs(body.decode()),
            verifier.is_valid_request(body, dict(request.headers)),
        )
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/{name}", record)
    async with GridSimulator() as sim, serving(app) as url:
        await sim.http.subscribe(APP, url + "/events", signing_secret(APP), verify=False)
        sim.interactivity.http.set_url(APP, url + "/ticket", command="/ticket")
        sim.interactivity.http.set_url(APP, url + "/interactive")
        assert (await sim.interactivity.slash("W0ALICE01", "C0ONE0001", "/ticket", "a b")).acked
        assert (await sim.interactivity.shortcut("W0ALICE01", "new_ticket")).acked
    fields, signed = got["/ticket"]
    assert signed and fields["command"] == ["/ticket"] and fields["text"] == ["a b"]
    assert fields["user_id"] == ["W0ALICE01"] and fields["channel_id"] == ["C0ONE0001"]
    fields, signed = got["/interactive"]
    assert signed and json.loads(fields["payload"][0])["type"] == "shortcut"
    assert "/events" not in got


async def test_two_runtimes_behind_one_request_url_handle_each_payload_once(
    redis_url: str, redis_prefix: str
) -> None:
    """Each click and slash command is POSTed twice through the balancer, so once to each
    runtime (one Redis): handled once (one update, one answer), the other copy answered an
    empty 200 as a duplicate."""
    async with GridSimulator() as sim, behind_a_balancer(sim, redis_url, redis_prefix) as (runtimes, lb):
        await sim.post_message(user="W0ALICE01", channel="C0SHARED1", text="!buttons")
        await wait_until(lambda: len(sim.posted) == 1, 10, "the buttons")
        message = sim.posted[-1]
        rounds = 3
        served = len(lb.served)
        for n in range(rounds):
            sim.interactivity.duplicate_next = True
            sent = await sim.interactivity.click("W0ALICE01", "C0SHARED1", message.ts, "approve")
            assert sent.acked and sent.carrier == "http"
            sim.interactivity.duplicate_next = True
            await sim.interactivity.slash("W0DAVE001", "C0ONE0001", "/ticket", f"n{n}")
        assert sim.interactivity.copies_acked == 2 * rounds
        assert len(set(lb.served[served:])) == 2  # the copies reached both runtimes
        counters = [rt.interactions.counters for rt in runtimes if rt.interactions is not None]
        await wait_until(lambda: sum(c.duplicates for c in counters) == 2 * rounds, 10, "duplicates")
        await wait_until(lambda: len(sim.interactivity.responses.posts) >= 2 * rounds, 10, "the answers")
        tickets = sorted(p.text for p in sim.posted if p.text.startswith("Ticket filed"))
        assert tickets == sorted(f"Ticket filed: n{n}" for n in range(rounds))
        assert len([c for c in sim.calls_to("chat.update") if c.ok]) == rounds
        assert len(sim.interactivity.responses.posts) == 2 * rounds  # one respond() per payload
        assert sum(c.by_handler for c in counters) == 2 * rounds


async def test_one_app_over_both_http_and_socket_mode_is_refused(grid_factory: GridFactory) -> None:
    """An app has Socket Mode or a request URL (tests would otherwise wait for a team that
    never hears anything)."""
    with pytest.raises(ValueError, match="both http and socket_mode"):
        await grid_factory(plugins=["interactive.kit"], transports={T1: "http", T2: "socket_mode"})


async def test_a_balancers_retry_on_the_other_runtime_still_shows_the_validation_errors(
    redis_url: str, redis_prefix: str
) -> None:
    """The submission reaches runtime A, which handles it and answers ``errors``; that answer is
    lost between A and the balancer, which retries on runtime B. B finds A's claim (handled
    once, as it should be) and its answer is what Slack applies: the user should still see the
    errors in the open modal."""
    async with GridSimulator() as sim, behind_a_balancer(sim, redis_url, redis_prefix) as (runtimes, lb):
        assert (await sim.interactivity.shortcut("W0ALICE01", "new_ticket")).acked
        lb.retry_next = True
        sent = await sim.interactivity.submit("W0ALICE01", {"title": {"input": ""}})
        counters = [rt.interactions.counters for rt in runtimes if rt.interactions is not None]
        assert sum(c.duplicates for c in counters) == 1 and sum(c.by_handler for c in counters) == 2
        assert sent.ack == {"response_action": "errors", "errors": {"title": "A title, please"}}
        top = sim.interactivity.views.top("W0ALICE01")
        assert top is not None and top["callback_id"] == "ticket_modal"  # still open
