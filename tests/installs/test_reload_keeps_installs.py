"""SIGHUP and the installation store: a reload that removes (or restarts) the static team whose
app token an OAuth installation shares stops that team, not the installation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gridtest import T1, wait_until
from installs.livekit import APP, oauth_config, oauth_install, serving

from gridbot.config import load, replace
from gridbot.installs import RedisInstallStore
from gridbot.reload import Reloader
from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator, RateLimits
from gridbot.testing.harness import to_toml

T3 = "T0TEAM003"


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


def write(path: Path, text: str, oauth_section: str) -> Path:
    path.write_text(text + "\n" + oauth_section)
    path.chmod(0o600)
    return path


async def test_removing_the_static_team_on_the_app_token_keeps_the_oauth_install_served(
    sim: GridSimulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    client = sim.oauth.register(APP)
    config = oauth_config(sim, client, redis_url, redis_prefix)
    assert config.oauth is not None and config.oauth.app_token is not None
    section = "\n".join(
        [
            "[oauth]",
            f'client_id = "{client.client_id}"',
            f'client_secret = "{client.client_secret}"',
            'scopes = ["chat:write"]',
            'redirect_url = "https://bot.example.com/slack/oauth_redirect"',
            f'app_token = "{config.oauth.app_token.get()}"',
            "watch_interval = 0.1",
        ]
    )
    path = write(tmp_path / "gridbot.toml", to_toml(config), section)
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    async with Runtime(load(path)) as rt:
        await oauth_install(sim, client, T3, store)
        await wait_until(lambda: serving([rt], T1) and serving([rt], T3), 15, "T1 and T3 served")

        write(path, to_toml(replace(config, teams=())), section)  # T1 leaves the file
        assert await Reloader(rt, path).reload() is not None

        assert rt.supervisor is not None
        await wait_until(lambda: T1 not in rt.supervisor.installed(), 10, "T1 stopped")
        await wait_until(lambda: bool(serving([rt], T3)), 10, "T3 served again")
    await store.close()
