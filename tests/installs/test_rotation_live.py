"""Token rotation while gridbot serves: three Runtimes on one real Redis, the simulator's expiring
tokens and single-use refresh tokens (platform-2026.md, "OAuth and token rotation"), an hour of
simulated time run 120 times faster on both sides (Slack's token lifetimes, gridbot's clock).

Run with ``-s`` to see the figures (refreshes, spenders, failures)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from gridtest import T1, T2, wait_until
from installs.livekit import (
    APP,
    T3_ONLY,
    free_port,
    install_through_browser,
    oauth_config,
    serving,
    t3_channel,
)

from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator, RateLimits

T3 = "T0TEAM003"
SCALE = 120.0  # simulated seconds per real second
HOUR = 3600.0
EXPIRES_IN = 600  # a token lives 10 simulated minutes (Slack: 12 h; short to rotate often)
AHEAD = 120.0  # refreshed when it has less than 2 simulated minutes left
# Where each team's bot reads: (channel, a user there)
CHANNELS = {T1: ("C0ONE0001", "W0ALICE01"), T2: ("G0TWOPRIV", "W0BOB0001"), T3: (T3_ONLY, "W0CAROL01")}


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(seed=7, time_scale=SCALE, rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


def scaled_clock() -> tuple[float, object]:
    start = time.time()
    return start, lambda: start + (time.time() - start) * SCALE


async def test_an_hour_of_rotation_under_three_processes_spends_each_refresh_token_once(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    client = sim.oauth.register(APP, token_rotation=True, expires_in=EXPIRES_IN)
    port = free_port()
    kwargs = {"rotation": True, "ahead": AHEAD, "static": False}
    configs = [
        oauth_config(sim, client, redis_url, redis_prefix, port=port if n == 0 else None, **kwargs)  # type: ignore[arg-type]
        for n in range(3)
    ]
    _, clock = scaled_clock()
    async with contextlib.AsyncExitStack() as stack:
        runtimes = [
            await stack.enter_async_context(
                Runtime(c, instance_id=f"proc-{n}", install_clock=clock, install_clock_rate=SCALE)  # type: ignore[arg-type]
            )
            for n, c in enumerate(configs)
        ]
        for team in (T1, T2, T3):
            sim.oauth.next_team = team
            assert "installed in the workspace" in await install_through_browser(port)
        await wait_until(lambda: all(len(serving(runtimes, t)) == 1 for t in CHANNELS), 15, "all served")
        await t3_channel(sim)

        expected: list[str] = []
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < HOUR / SCALE:  # one simulated hour
            for team, (channel, user) in CHANNELS.items():
                text = f"{team}-{n}"
                expected.append(text)
                await sim.post_message(user=user, channel=channel, text=f"echo {text}")
            n += 1
            await asyncio.sleep(60 / SCALE)  # a message per team every simulated minute
        await wait_until(lambda: len(sim.posted) >= len(expected), 20, "every message answered")

        # Then the race of bolt-python #663 on purpose: every token due on all three at once.
        rotators = [rt.installs.live.rotator for rt in runtimes if rt.installs and rt.installs.live.rotator]
        for rotator in rotators:
            rotator.ahead = 10**9
        await asyncio.gather(*(r.sweep() for r in rotators))
        for rotator in rotators:
            rotator.ahead = AHEAD

        refreshes = sim.oauth.counts["refreshes"]
        spent = {
            rt.instance_id: rt.installs.live.rotator.spent
            for rt in runtimes
            if rt.installs and rt.installs.live.rotator
        }
        deferred = {
            rt.instance_id: rt.installs.live.rotator.deferred
            for rt in runtimes
            if rt.installs and rt.installs.live.rotator
        }
        failed = sum(
            rt.installs.live.rotator.failed for rt in runtimes if rt.installs and rt.installs.live.rotator
        )
        refused = {k: v for k, v in sim.oauth.counts.items() if k.startswith("refused:")}
        expired = len([c for c in sim.calls if c.error == "token_expired"])
        print(
            f"\nrotation, 1 simulated hour x{SCALE:.0f}, 3 processes, 3 installs, tokens of {EXPIRES_IN}s:"
            f"\n  refreshes={refreshes} spent_by_process={spent} failures={failed} refused={refused}"
            f"\n  due but already claimed or spent by another process={deferred}"
            f"\n  calls answered token_expired={expired} messages={len(expected)} answered={len(sim.posted)}"
        )
        assert sorted(p.text for p in sim.posted) == sorted(expected)  # each exactly once
        assert refused == {}  # never invalid_refresh_token: no refresh token spent twice
        assert failed == 0
        assert sum(spent.values()) == refreshes  # every refresh Slack saw, one process spent
        assert sum(deferred.values()) >= 1  # the race happened: someone found its token taken
        # 3 installs, each refreshed every ~(600 - 120) simulated seconds over the hour
        assert refreshes >= 3 * 6
