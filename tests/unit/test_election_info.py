"""``conversations.info`` failing, rate limited or saying too little: a clear log line and a safe
election (the team that saw the event, which is in the conversation), never a stuck conversation.

Against a real HTTP server (aiohttp) and the team client gridbot makes (``SlackClients.web``), so
slack_sdk's retry handlers run as in production. Reference: slack-protocol-notes.md section B
("All of these are optional") and section E / H (429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from gridtest import serving
from structlog.testing import capture_logs

from gridbot.election import Elector
from gridbot.secrets import Secret
from gridbot.slack import SlackClients
from gridbot.store import MemoryStore

Reply = tuple[int, dict[str, Any], dict[str, str]]  # status, body, headers


class InfoApi:
    """``conversations.info``: answers the ``first`` replies in turn, then ``reply`` to every call."""

    def __init__(self) -> None:
        self.first: list[Reply] = []
        self.reply: Reply = (200, {"ok": True}, {})
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        status, body, headers = self.first.pop(0) if self.first else self.reply
        return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def api() -> AsyncIterator[tuple[InfoApi, SlackClients]]:
    fake = InfoApi()
    app = web.Application()
    app.router.add_route("*", "/api/{method}", fake.handle)
    async with serving(app) as url:
        clients = SlackClients(f"{url}/api/")
        try:
            yield fake, clients
        finally:
            await clients.close()


def elector(clients: SlackClients, timeout: float = 2.0) -> tuple[Elector, MemoryStore]:
    store = MemoryStore()
    client = clients.web(Secret("xoxb-1-info-test"))
    found = Elector(
        store,
        installed=lambda: {"T1", "T2", "T3"},
        client_for=lambda _t: client,
        info_timeout=timeout,
    )
    return found, store


async def test_a_full_answer_elects_the_host(api: tuple[InfoApi, SlackClients]) -> None:
    fake, clients = api
    info = {"id": "C1", "is_shared": True, "conversation_host_id": "T2", "shared_team_ids": ["T1", "T2"]}
    fake.reply = (200, {"ok": True, "channel": info}, {})
    chosen, _ = elector(clients)
    election = await chosen.ensure("C1", "T3")
    assert (election.team, election.candidates) == ("T2", ("T1", "T2", "T3"))


@pytest.mark.parametrize(
    ("reply", "timeout", "error"),
    [
        ((200, {"ok": False, "error": "channel_not_found"}, {}), 0.5, "channel_not_found"),
        ((500, {"ok": False, "error": "fatal_error"}, {}), 5.0, "fatal_error"),  # after 2 retries
        ((429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}), 0.5, "timeout"),
        ((429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3600"}), 5.0, "ratelimited"),
    ],
    ids=["slack-error", "server-error", "rate-limited-beyond-the-bound", "rate-limited-for-an-hour"],
)
async def test_a_failing_info_elects_the_team_that_saw_the_event_and_says_why(
    api: tuple[InfoApi, SlackClients], reply: Reply, timeout: float, error: str
) -> None:
    fake, clients = api
    fake.reply = reply
    chosen, store = elector(clients, timeout=timeout)
    started = time.monotonic()
    with capture_logs() as logs:
        election = await chosen.ensure("C1", "T3")
    assert time.monotonic() - started < timeout + 1  # the decider waits for this: bounded
    assert (election.team, election.candidates) == ("T3", ("T3",))
    assert (await store.decide("C1", "message.:1.0", ["T3"])).team == "T3"  # answered, not stuck
    [line] = [e for e in logs if e["event"] == "election.info_failed"]
    assert (line["error"], line["fallback"], line["channel"]) == (error, "T3", "C1")


async def test_a_short_rate_limit_is_waited_out_and_the_answer_used(
    api: tuple[InfoApi, SlackClients],
) -> None:
    fake, clients = api
    fake.first = [(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0"})]
    fake.reply = (200, {"ok": True, "channel": {"id": "C1", "conversation_host_id": "T1"}}, {})
    chosen, _ = elector(clients)
    with capture_logs() as logs:
        election = await chosen.ensure("C1", "T3")
    assert election.team == "T1" and fake.calls == 2
    [line] = [e for e in logs if e["event"] == "slack.ratelimited"]
    assert (line["method"], line["retrying"], line["attempt"]) == ("conversations.info", True, 1)


@pytest.mark.parametrize(
    "body",
    [
        {"ok": True},  # no channel object at all
        {"ok": True, "channel": {"id": "C1", "is_shared": True}},  # shared, but no team ids
    ],
    ids=["no-channel", "shared-without-teams"],
)
async def test_an_answer_missing_its_fields_is_logged_and_elects_the_reader(
    api: tuple[InfoApi, SlackClients], body: dict[str, Any]
) -> None:
    fake, clients = api
    fake.reply = (200, body, {})
    chosen, _ = elector(clients)
    with capture_logs() as logs:
        election = await chosen.ensure("C1", "T2")
    assert election.team == "T2"
    assert [e["event"] for e in logs if e["event"].startswith("election.info")] == [
        "election.info_incomplete"
    ]


async def test_a_plain_channel_with_no_shared_fields_is_not_called_incomplete(
    api: tuple[InfoApi, SlackClients],
) -> None:
    fake, clients = api
    fake.reply = (200, {"ok": True, "channel": {"id": "C1", "is_shared": False}}, {})
    chosen, _ = elector(clients)
    with capture_logs() as logs:
        assert (await chosen.ensure("C1", "T2")).team == "T2"
    assert not [e for e in logs if e["event"].startswith("election.info")]


async def test_concurrent_events_of_a_new_conversation_ask_once(api: tuple[InfoApi, SlackClients]) -> None:
    fake, clients = api
    fake.reply = (200, {"ok": True, "channel": {"id": "C1", "conversation_host_id": "T1"}}, {})
    chosen, _ = elector(clients)
    elections = await asyncio.gather(*(chosen.ensure("C1", t) for t in ("T1", "T2", "T3")))
    assert {e.team for e in elections} == {"T1"} and fake.calls == 1
