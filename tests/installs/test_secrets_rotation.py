"""Secrets under rotation: the redaction registry stays bounded, and slack_sdk's own debug logging
never prints a token, a refresh token or the client secret (platform-2026.md, "OAuth and token
rotation": tokens rotate every 12 hours)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator

import pytest
from installs.livekit import APP, oauth_config, oauth_install

from gridbot import secrets
from gridbot.config import TeamConfig
from gridbot.installs import Install, MemoryInstallStore
from gridbot.installs.live import LiveInstalls
from gridbot.installs.rotation import Rotator, oauth_client
from gridbot.secrets import Secret
from gridbot.team import Team
from gridbot.testing import GridSimulator, RateLimits


class Nothing:
    def configure(self, config: TeamConfig, index: int) -> None: ...
    def retoken(self, old: TeamConfig, new: TeamConfig) -> None: ...
    async def unconfigure(self, config: TeamConfig) -> None: ...
    def teams_of(self, config: TeamConfig) -> list[Team]:
        return []


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def test_a_thousand_rotations_leave_the_redaction_registry_where_it_was(sim: GridSimulator) -> None:
    client = sim.oauth.register(APP, token_rotation=True)
    oauth = oauth_config(sim, client, "redis://unused", "p").oauth
    assert oauth is not None
    store = MemoryInstallStore()
    live = LiveInstalls(store, oauth, Nothing())
    install = Install(
        None, "T0TEAM003", False, Secret("xoxe.xoxb-1-start"), refresh_token=Secret("xoxe-1-r0")
    )
    await store.put(install)
    await live.tick()
    before = secrets.registered()
    for n in range(1000):
        found = await store.get("team:T0TEAM003")
        assert found is not None and found.refresh_token is not None
        await store.commit_refresh(
            found.id,
            found.refresh_token,
            Secret(f"xoxe.xoxb-1-tok{n:04d}"),
            Secret(f"xoxe-1-ref{n:04d}"),
            2_000_000_000,
        )
        await live.tick()
    assert secrets.registered() <= before + 2
    # and what it forgot is still masked, by the token pattern
    assert "tok0999" not in secrets.redact("token=xoxe.xoxb-1-tok0999 refresh=xoxe-1-ref0999")
    assert "ref0999" not in secrets.redact("token=xoxe.xoxb-1-tok0999 refresh=xoxe-1-ref0999")


def test_a_password_is_never_forgotten() -> None:
    Secret("hunter2-the-password")
    secrets.forget("hunter2-the-password")
    assert "hunter2" not in secrets.redact("connect with hunter2-the-password")


async def test_slack_sdks_debug_lines_never_carry_the_tokens(sim: GridSimulator) -> None:
    client = sim.oauth.register(APP, token_rotation=True)
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # an operator debugging with basicConfig(level=DEBUG)
    try:
        store = MemoryInstallStore()
        await oauth_install(sim, client, "T0TEAM003", store)
        rotator = Rotator(
            store,
            client_id=client.client_id,
            client_secret=Secret(client.client_secret),
            client=oauth_client(sim.api_url),
            ahead=10**9,
        )
        first = await store.get("team:T0TEAM003")
        assert await rotator.sweep() == ["team:T0TEAM003"]
        second = await store.get("team:T0TEAM003")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert first is not None and second is not None and first.refresh_token and second.refresh_token
    text = captured.getvalue()
    for value in (first.refresh_token, second.bot_token, second.refresh_token, Secret(client.client_secret)):
        assert value.get() not in text
