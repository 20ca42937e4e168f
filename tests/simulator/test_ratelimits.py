"""Rate limits on every Web API method: Slack's tiers, 429 with Retry-After.

slack-protocol-notes.md E (docs.slack.dev/apis/web-api/rate-limits): per method x workspace x app,
Tier 1 1+/min, Tier 2 20+/min, Tier 3 50+/min, Tier 4 100+/min; chat.postMessage about 1 per second
per channel (short bursts OK) plus a workspace cap; HTTP 429, ``Retry-After``, ``ratelimited``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from simulator.sim_helpers import ALICE, APP_TOKEN, BOT1, BOT2, SHARED
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator
from gridbot.testing.simulator import Limit, RateLimits
from gridbot.testing.simulator.ratelimits import METHOD_LIMITS, TIER_1, TIER_2, TIER_3, TIER_4

Web = Callable[[str], AsyncWebClient]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_tier_allows_its_budget_then_answers_the_wait() -> None:
    clock = Clock()
    limits = RateLimits(clock=clock)
    assert all(limits.check("conversations.list", "T1", "A1") is None for _ in range(20))  # Tier 2
    assert limits.check("conversations.list", "T1", "A1") == pytest.approx(3.0)  # 60 s / 20
    assert limits.check("conversations.list", "T2", "A1") is None  # per workspace
    assert limits.check("conversations.list", "T1", "A2") is None  # per app
    assert limits.check("users.list", "T1", "A1") is None  # per method
    clock.now += 3.0
    assert limits.check("conversations.list", "T1", "A1") is None
    assert limits.check("conversations.list", "T1", "A1") is not None
    assert limits.limited == 2


def test_tier_one_is_one_a_minute_after_a_small_burst() -> None:
    clock = Clock()
    limits = RateLimits(clock=clock)
    assert all(limits.check("rtm.connect", "T1", "A1") is None for _ in range(3))
    assert limits.check("rtm.connect", "T1", "A1") == pytest.approx(60.0)
    clock.now += 30
    assert limits.check("rtm.connect", "T1", "A1") == pytest.approx(30.0)
    clock.now += 30
    assert limits.check("rtm.connect", "T1", "A1") is None
    assert limits.check("rtm.connect", "T1", "A1") == pytest.approx(60.0)


def test_posting_is_about_one_message_a_second_per_channel() -> None:
    clock = Clock()
    limits = RateLimits(clock=clock)
    assert limits.check("chat.postMessage", "T1", "A1", "C1") is None
    assert limits.check("chat.postMessage", "T1", "A1", "C1") is None  # a short burst
    assert limits.check("chat.postMessage", "T1", "A1", "C1") == pytest.approx(1.0)
    assert limits.check("chat.postMessage", "T1", "A1", "C2") is None  # another channel
    clock.now += 1.0
    assert limits.check("chat.postMessage", "T1", "A1", "C1") is None


def test_the_workspace_cap_on_posting() -> None:
    clock = Clock()
    limits = RateLimits(clock=clock)
    allowed = sum(limits.check("chat.postMessage", "T1", "A1", f"C{n}") is None for n in range(400))
    assert allowed == 300  # "several hundred per minute"


def test_the_clock_can_run_fast_and_limits_can_be_overridden() -> None:
    clock = Clock()
    limits = RateLimits(clock=clock, scale=60, overrides={"users.info": Limit(2, 1)})
    assert all(limits.check("rtm.connect", "T1", "A1") is None for _ in range(3))
    assert limits.check("rtm.connect", "T1", "A1") == pytest.approx(1.0)  # a Slack minute, one real second
    assert limits.check("users.info", "T1", "A1") is None
    assert limits.check("users.info", "T1", "A1") == pytest.approx(0.5)
    assert RateLimits(enabled=False, clock=clock).check("rtm.connect", "T1", "A1") is None


def test_every_method_the_simulator_answers_has_a_tier(sim: GridSimulator) -> None:
    assert sim.methods and all(m in METHOD_LIMITS for m in sim.methods)
    assert METHOD_LIMITS["users.info"] == TIER_4 and METHOD_LIMITS["conversations.info"] == TIER_3
    assert METHOD_LIMITS["users.list"] == TIER_2 and METHOD_LIMITS["apps.connections.open"] == TIER_1


async def test_a_limited_call_is_a_429_with_retry_after(sim: GridSimulator, web: Web) -> None:
    for _ in range(100):
        await web(BOT1).users_info(user=ALICE)
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).users_info(user=ALICE)
    assert e.value.response.status_code == 429
    assert e.value.response.headers["Retry-After"] == "1"  # 0.6 s, rounded up
    assert e.value.response["error"] == "ratelimited"
    assert (await web(BOT2).users_info(user=ALICE))["ok"]  # another workspace's budget
    assert [c.status for c in sim.calls_to("users.info")][-2:] == [429, 200]


async def test_posting_twice_a_second_in_one_channel_is_limited(sim: GridSimulator, web: Web) -> None:
    for n in range(2):
        await web(BOT1).chat_postMessage(channel=SHARED, text=f"burst {n}")
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).chat_postMessage(channel=SHARED, text="one too many")
    assert e.value.response.status_code == 429
    assert [p.text for p in sim.posted] == ["burst 0", "burst 1"]  # the limited post did not land
    assert (await web(BOT1).chat_postMessage(channel="C0ONE0001", text="elsewhere"))["ok"]


async def test_a_client_that_honours_retry_after_is_late_not_refused() -> None:
    async with GridSimulator(time_scale=60) as fast:  # a Tier 1 minute in one second
        client = AsyncWebClient(token=APP_TOKEN, base_url=fast.api_url)
        for _ in range(3):
            await client.apps_connections_open(app_token=APP_TOKEN)
        with pytest.raises(SlackApiError) as e:
            await client.apps_connections_open(app_token=APP_TOKEN)
        assert e.value.response.headers["Retry-After"] == "1"
        patient = AsyncWebClient(
            token=APP_TOKEN,
            base_url=fast.api_url,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
        )
        assert (await patient.apps_connections_open(app_token=APP_TOKEN))["ok"]
        statuses = [c.status for c in fast.calls_to("apps.connections.open")]
        assert statuses[:5] == [200, 200, 200, 429, 429] and statuses[-1] == 200
