"""Installations that come and go while gridbot runs: two Runtimes on one real Redis, the simulator
as Slack. Installed through the OAuth flow -> served within seconds by exactly one process;
uninstalled -> gone from every process and from the store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable

import pytest
from gridtest import T1, eventually, wait_until
from installs.livekit import (
    APP,
    T3_ONLY,
    free_port,
    install_through_browser,
    oauth_config,
    serving,
    t3_channel,
)

from gridbot.installs import RedisInstallStore
from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator, RateLimits

T3 = "T0TEAM003"


async def _none(listing: Awaitable[list[str]]) -> bool | None:
    return True if not await listing else None


def _teams(rt: Runtime) -> list[str]:
    assert rt.supervisor is not None
    return [t.team_id for t in rt.supervisor.teams]


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(seed=19, rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def test_an_oauth_install_is_served_by_exactly_one_process_and_an_uninstall_removes_it_everywhere(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    client = sim.oauth.register(APP)
    sim.oauth.next_team = T3
    port = free_port()
    config = oauth_config(sim, client, redis_url, redis_prefix, port=port)
    other = oauth_config(sim, client, redis_url, redis_prefix)  # no install routes on this one
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    async with contextlib.AsyncExitStack() as stack:
        runtimes = [
            await stack.enter_async_context(Runtime(config, instance_id="proc-a")),
            await stack.enter_async_context(Runtime(other, instance_id="proc-b")),
        ]
        await wait_until(lambda: len(serving(runtimes, T1)) == 1, 15, "T1 served")

        page = await install_through_browser(port)
        assert "installed in the workspace Team Three" in page
        assert await store.ids() == [f"team:{T3}"]
        # No SIGHUP, no restart: the process holding the app's connection serves it, alone.
        await wait_until(lambda: len(serving(runtimes, T3)) == 1, 10, "T3 served by one process")
        assert serving(runtimes, T3) == serving(runtimes, T1)
        await t3_channel(sim)
        await sim.post_message(user="W0CAROL01", channel=T3_ONLY, text="echo fresh install")
        await wait_until(lambda: [p.text for p in sim.posted] == ["fresh install"], 10, "T3 answers")

        await sim.uninstall(APP, T3)  # app_uninstalled, tokens_revoked, the token dead
        await eventually(lambda: _none(store.ids()), 10)
        # Forgotten by every process (not merely stopped): it will not come back on a handover.
        await wait_until(lambda: all(T3 not in _teams(rt) for rt in runtimes), 10, "T3 gone everywhere")
        # T1, on the same app token, was not touched.
        assert len(serving(runtimes, T1)) == 1
        await sim.post_message(user="W0ALICE01", channel="C0ONE0001", text="echo still here")
        await wait_until(lambda: "still here" in [p.text for p in sim.posted], 10, "T1 answers")
    await store.close()
