"""The Slack error policy: one rule for what an error means, whether auth.test or a connect call met it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from gridtest import CollectingIntake, serving, wait_until
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from structlog.testing import capture_logs

from gridbot.config import RuntimeConfig, TeamConfig
from gridbot.secrets import Secret
from gridbot.slack import Action, RateLimitRetry, SlackClients, classify, retry_after
from gridbot.store import MemoryStore
from gridbot.supervisor import Supervisor
from gridbot.team import TeamState
from gridbot.transport.socket_mode import SocketModeLink

BOT, APP = Secret("xoxb-1-policy-test"), Secret("xapp-1-A1-1-policy-test")


class FailingSlack:
    """A Web API whose every method answers ``{"ok": false, "error": <error>}``."""

    def __init__(self) -> None:
        self.error = ""
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error": self.error})


@pytest.fixture
async def slack() -> AsyncIterator[FailingSlack]:
    fake = FailingSlack()
    app = web.Application()
    app.router.add_post("/api/{method}", fake.handle)
    async with serving(app) as url:
        fake.url = f"{url}/api/"
        yield fake


@pytest.mark.parametrize(
    ("error", "state"),
    [
        ("invalid_auth", TeamState.STOPPED),
        ("token_revoked", TeamState.STOPPED),
        ("account_inactive", TeamState.STOPPED),
        ("link_disabled", TeamState.DISABLED),
        ("team_added_to_org", TeamState.PAUSED),
    ],
)
async def test_auth_test_and_a_connect_call_end_a_team_in_the_same_state(
    slack: FailingSlack, error: str, state: TeamState
) -> None:
    """The supervisor (auth.test) and a link (apps.connections.open) meet the same error: the
    team and the link must end up in the same state (they once disagreed about link_disabled)."""
    slack.error = error
    runtime = RuntimeConfig(paused_probe_interval=60)
    clients = SlackClients(slack.url)
    supervisor = Supervisor(clients, MemoryStore(), CollectingIntake([]), runtime, instance_id="test")
    link = SocketModeLink(
        "policy#0",
        {},
        app_token=APP,
        connector=clients.connector(APP),
        intake=CollectingIntake([]),
        session=clients.session,
        runtime=runtime,
    )
    linking = asyncio.create_task(link.run(), name="test:link")
    try:
        supervisor.start((TeamConfig("socket_mode", BOT, APP),))
        [team] = supervisor.teams
        await wait_until(lambda: team.state == state and link.state == state, 5, f"both {state}")
        assert team.error == link.error == error
        assert linking.done() is state.final  # a final state ends the link; a pause waits to re-probe
    finally:
        linking.cancel()
        await asyncio.gather(linking, return_exceptions=True)
        await supervisor.stop()
        await clients.close()


class LimitedSlack:
    """``chat.postMessage`` answering 429 (with ``Retry-After``) ``limited`` times, then ok."""

    def __init__(self, limited: int, retry_after: str | None = "0") -> None:
        self.limited = limited
        self.retry_after = retry_after
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.calls <= self.limited:
            headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
        return web.json_response({"ok": True, "ts": "1.0"})


async def post_through(fake: LimitedSlack) -> tuple[Any, list[dict[str, Any]]]:
    """One chat.postMessage with the client every handler and the runtime use."""
    app = web.Application()
    app.router.add_post("/api/{method}", fake.handle)
    async with serving(app) as url:
        clients = SlackClients(f"{url}/api/")
        try:
            with capture_logs() as logs:
                try:
                    result: Any = await clients.web(BOT).chat_postMessage(channel="C1", text="hi")
                except SlackApiError as exc:
                    result = exc
        finally:
            await clients.close()
    return result, [e for e in logs if e["event"] == "slack.ratelimited"]


@pytest.mark.parametrize("retry_after", ["0", "0.2", None], ids=["whole", "fraction", "missing"])
async def test_a_429_is_waited_out_as_retry_after_says_and_the_call_succeeds(retry_after: str | None) -> None:
    """Rate limits (protocol notes E, H): sleep Retry-After, then retry. slack_sdk's own handler
    raised a ValueError on a fractional value; a missing one means a second."""
    fake = LimitedSlack(limited=2, retry_after=retry_after)
    started = time.monotonic()
    result, lines = await post_through(fake)
    assert result["ok"] is True and fake.calls == 3
    waited = {"0": 0.0, "0.2": 0.4, None: 2.0}[retry_after]
    assert time.monotonic() - started >= waited
    assert [(e["method"], e["attempt"], e["retrying"]) for e in lines] == [
        ("chat.postMessage", 1, True),
        ("chat.postMessage", 2, True),
    ]


async def test_rate_limit_retries_are_bounded_and_the_error_then_reaches_the_caller() -> None:
    fake = LimitedSlack(limited=1000)
    result, lines = await post_through(fake)
    assert isinstance(result, SlackApiError) and classify(result).action is Action.RETRY_AFTER
    assert fake.calls == 1 + RateLimitRetry().max_retry_count  # the call and every retry allowed
    assert [e["retrying"] for e in lines] == [True] * (fake.calls - 1) + [False]


async def test_the_total_wait_for_rate_limits_is_bounded() -> None:
    """Retries are bounded by the time waited in all, not only by their count: a burst of replies
    in one channel (about one post a second allowed) is late, never waiting without end."""
    handler = RateLimitRetry(budget=10.0)
    request = HttpRequest(method="POST", url="https://slack.test/api/chat.postMessage", headers={})
    response = HttpResponse(status_code=429, headers={"retry-after": ["2"]}, data=b"")
    assert await handler.can_retry_async(
        state=RetryState(custom_values={"waited": 8.0}), request=request, response=response
    )
    assert not await handler.can_retry_async(
        state=RetryState(custom_values={"waited": 8.5}), request=request, response=response
    )


async def test_a_retry_after_beyond_the_bound_is_not_waited() -> None:
    fake = LimitedSlack(limited=1, retry_after="3600")
    started = time.monotonic()
    result, lines = await post_through(fake)
    assert time.monotonic() - started < 5
    assert isinstance(result, SlackApiError) and classify(result).retry_after == 3600
    assert fake.calls == 1 and [e["retrying"] for e in lines] == [False]


def test_retry_after_is_read_leniently() -> None:
    assert retry_after({"Retry-After": ["7"]}) == 7.0
    assert retry_after({"retry-after": ["1.5"]}) == 1.5
    assert retry_after({"Retry-After": ["soon"]}) == 1.0
    assert retry_after({"Retry-After": ["-3"]}) == 0.0
    assert retry_after({}) == 1.0
