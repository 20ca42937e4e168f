"""A Web API call answered ``token_expired`` (platform-2026.md, "OAuth and token rotation": "A call
with an expired token answers ``token_expired``") refreshes the installation's token and is sent
once more; a refresh Slack refuses stops the installation with one error, never a loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gridtest import eventually
from installs.livekit import APP, oauth_config, oauth_install
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.config import TeamConfig
from gridbot.installs import MemoryInstallStore
from gridbot.installs.live import LiveInstalls
from gridbot.installs.rotation import Rotator, oauth_client
from gridbot.secrets import Secret
from gridbot.team import Team
from gridbot.testing import GridSimulator, RateLimits

T3 = "T0TEAM003"
INSTALL = f"team:{T3}"


class NoTeams:
    """The supervisor's side, serving nothing: these tests call the team's client themselves."""

    def __init__(self) -> None:
        self.configured: list[TeamConfig] = []

    def configure(self, config: TeamConfig, index: int) -> None:
        self.configured.append(config)

    def retoken(self, old: TeamConfig, new: TeamConfig) -> None: ...
    async def unconfigure(self, config: TeamConfig) -> None: ...
    def teams_of(self, config: TeamConfig) -> list[Team]:
        return []


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    # Slack's clock 1,000 times faster: a 1,000-second token (simulated) is dead within a second.
    async with GridSimulator(time_scale=1000, rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def _expired(client: AsyncWebClient) -> bool | None:
    try:
        await client.auth_test()
    except SlackApiError as exc:
        return True if exc.response["error"] == "token_expired" else None
    return None


async def _setup(sim: GridSimulator) -> tuple[MemoryInstallStore, LiveInstalls, AsyncWebClient]:
    client = sim.oauth.register(APP, token_rotation=True, expires_in=1000)
    store = MemoryInstallStore()
    await oauth_install(sim, client, T3, store)
    config = oauth_config(sim, client, "redis://unused", "p", rotation=True).oauth
    assert config is not None
    rotator = Rotator(
        store,
        client_id=client.client_id,
        client_secret=Secret(client.client_secret),
        client=oauth_client(sim.api_url),
    )
    served = NoTeams()
    live = LiveInstalls(store, config, served, rotator=rotator)
    await live.tick()
    install = await store.get(INSTALL)
    assert install is not None
    web = live.client(
        served.configured[0], AsyncWebClient(token=install.bot_token.get(), base_url=sim.api_url)
    )
    plain = AsyncWebClient(token=install.bot_token.get(), base_url=sim.api_url)
    await eventually(lambda: _expired(plain), 5)
    return store, live, web


async def test_a_call_answered_token_expired_is_refreshed_and_sent_once_more(sim: GridSimulator) -> None:
    store, _, web = await _setup(sim)
    old = await store.get(INSTALL)
    answer = await web.users_info(user="W0CAROL01")
    assert answer["ok"]
    assert sim.oauth.counts["refreshes"] == 1
    new = await store.get(INSTALL)
    assert new is not None and old is not None and new.bot_token != old.bot_token  # stored first
    calls = [c.error for c in sim.calls if c.method == "users.info"]
    assert calls == ["token_expired", None]


async def test_a_refused_refresh_stops_the_installation_with_one_error_not_a_loop(sim: GridSimulator) -> None:
    store, _, web = await _setup(sim)
    sim.oauth.drop_refresh_tokens()  # Slack no longer knows the refresh token (spent elsewhere)
    with pytest.raises(SlackApiError) as refused:
        await web.users_info(user="W0CAROL01")
    assert refused.value.response["error"] == "token_expired"
    assert [c.error for c in sim.calls if c.method == "oauth.v2.access"] == [None, "invalid_refresh_token"]
    stopped = await store.get(INSTALL)
    assert stopped is not None and stopped.failed == "invalid_refresh_token"
    with pytest.raises(SlackApiError):
        await web.users_info(user="W0CAROL01")
    # the failed installation is not refreshed again: still the code exchange and one refusal
    assert len([c for c in sim.calls if c.method == "oauth.v2.access"]) == 2
