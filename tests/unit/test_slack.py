"""The Slack error policy: one rule for what an error means, whether auth.test or a connect call met it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from gridtest import CollectingIntake, serving, wait_until

from gridbot.config import RuntimeConfig, TeamConfig
from gridbot.secrets import Secret
from gridbot.slack import SlackClients
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
