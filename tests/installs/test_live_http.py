"""OAuth installations whose events come over the Events API (``[oauth] transport = "http"``):
served by every replica as soon as they are stored, gone on ``app_uninstalled``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gridtest import eventually, wait_until
from installs.livekit import APP, T3_ONLY, oauth_install, t3_channel

from gridbot.config import EventsConfig, OAuthConfig, replace
from gridbot.installs import MemoryInstallStore
from gridbot.runtime import Runtime
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator, RateLimits
from gridbot.testing.harness import config_for

T3 = "T0TEAM003"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # a signing secret of Slack's shape
PATH = "/slack/events"


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def _empty(store: MemoryInstallStore) -> bool | None:
    return True if not await store.ids() else None


async def test_an_events_api_install_is_served_and_an_app_uninstalled_removes_it(sim: GridSimulator) -> None:
    client = sim.oauth.register(APP)
    oauth = OAuthConfig(
        client_id=client.client_id,
        client_secret=Secret(client.client_secret),
        scopes=("chat:write",),
        redirect_url="https://bot.example.com/slack/oauth_redirect",
        transport="http",
        signing_secret=Secret(SECRET),
        watch_interval=0.1,
    )
    config = replace(config_for(sim, {}), oauth=oauth, events=EventsConfig(port=0))
    store = MemoryInstallStore()
    async with Runtime(config, install_store=store) as rt:
        assert rt.supervisor is not None and rt.events is not None
        await oauth_install(sim, client, T3, store)
        await wait_until(lambda: T3 in rt.supervisor.connected(), 10, "T3 served over HTTP")
        await t3_channel(sim)
        url = f"http://127.0.0.1:{rt.events.port}{PATH}"
        await sim.http.subscribe(APP, url, SECRET)
        await sim.post_message(user="W0CAROL01", channel=T3_ONLY, text="echo over http")
        await wait_until(lambda: [p.text for p in sim.posted] == ["over http"], 10, "the answer")
        await sim.send_event({"type": "app_uninstalled"}, team=T3)
        await eventually(lambda: _empty(store), 10)
        await wait_until(lambda: all(t.team_id != T3 for t in rt.supervisor.teams), 10, "T3 forgotten")
