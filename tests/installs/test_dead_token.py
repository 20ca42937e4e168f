"""An installation whose token Slack answers ``token_revoked`` for (slack-protocol-notes.md, H:
"stop the team") leaves the store, so no process keeps retrying it; a reinstall made afterwards,
with a new token, is served again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gridtest import eventually, wait_until
from installs.livekit import APP, oauth_config, oauth_install, serving

from gridbot.installs import RedisInstallStore
from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator, RateLimits

T3 = "T0TEAM003"


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def _gone(store: RedisInstallStore) -> bool | None:
    return True if not await store.ids() else None


async def test_a_revoked_token_found_by_auth_test_removes_the_installation(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    client = sim.oauth.register(APP)
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    await oauth_install(sim, client, T3, store)
    install = await store.get(f"team:{T3}")
    assert install is not None
    await sim.revoke_token(install.bot_token.get())  # revoked while no gridbot ran: no event seen
    async with Runtime(oauth_config(sim, client, redis_url, redis_prefix)) as rt:
        await eventually(lambda: _gone(store), 10)
        assert rt.supervisor is not None
        await wait_until(lambda: all(t.team_id != T3 for t in rt.supervisor.teams), 5, "T3 forgotten")

        await oauth_install(sim, client, T3, store)  # reinstalled: a new token
        await wait_until(lambda: bool(serving([rt], T3)), 10, "the reinstall served")
    await store.close()
