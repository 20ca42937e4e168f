"""When the 200 leaves, and what a replica answers when it cannot decide.

The policy (gridbot/transport/http.py): 200 once the store has decided the event (claimed here,
or a duplicate of a claim elsewhere, or our own bot's message); 503 while the store is
unreachable, when the decision did not come within ``ack_timeout``, when the intake is above its
high-water mark, or while the team is still authenticating. Slack retries a delivery that did
not get a 2xx within 3 s, about at once, after 1 and after 5 minutes (platform-2026.md, "Events
API over HTTP"; the simulator runs that schedule 100x faster, or on a schedule a test sets): a
503 is never a loss.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from gridtest import SHARED, T1, T2, wait_until
from httpkit import (
    APP,
    FAST,
    delivered,
    event_callback,
    http_config,
    http_runtime,
    message,
    signed_post,
    subscribe,
)
from reliability.redis_servers import RedisServers

from gridbot.events import event_key
from gridbot.runtime import Runtime
from gridbot.store import Decision, MemoryStore, Outcome
from gridbot.testing import GridSimulator
from gridbot.testing.simulator import HttpPolicy

ALICE = "W0ALICE01"


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[GridSimulator]:
    """Slack's clock 100x faster, unless parametrized indirectly with GridSimulator keywords."""
    async with GridSimulator(**getattr(request, "param", {"time_scale": FAST})) as simulator:
        yield simulator


def retrying(*delays: float) -> pytest.MarkDecorator:
    """Slack's retries after ``delays`` real seconds (the test's own schedule)."""
    policy = HttpPolicy(retry_delays=delays)
    return pytest.mark.parametrize("sim", [{"http": policy}], indirect=True, ids=["retries"])


def said(text: str, team: str = T1, channel: str = SHARED, **fields: Any) -> dict[str, Any]:
    return event_callback({**message(channel, ALICE, text, team=team), **fields}, team_id=team)


def replies(sim: GridSimulator, text: str) -> int:
    return sum(1 for p in sim.posted if p.text == text)


async def marker(sim: GridSimulator, text: str = "marker") -> None:
    """A later event's reply: every earlier reply would have come before it."""
    assert (await sim.http.deliver(APP, said(f"echo {text}"))).acked
    await wait_until(lambda: replies(sim, text) == 1, 5, "the marker's reply")


@pytest.mark.parametrize("window", [0.0, 0.002], ids=["offered-alone", "offered-in-a-window"])
async def test_the_200_leaves_after_the_claim_and_a_retry_is_a_duplicate(
    sim: GridSimulator, window: float
) -> None:
    async with http_runtime(http_config(sim, events={"batch_window": window})) as (rt, url):
        payload = said("echo once")
        await subscribe(sim, url)
        first = await sim.http.deliver(APP, payload)
        # The ack means the claim is in the store already: asking again is a duplicate.
        event = payload["event"]
        decision = await rt.store.decide(SHARED, event_key("message", None, event["ts"]), (T1, T2))
        assert decision.outcome is Outcome.DUPLICATE
        # Slack retries (its ack was lost on the way, say): answered 200, handled no more.
        status, _ = await signed_post(
            url,
            orjson.dumps(payload),
            headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
        )
        assert first.acked and first.retries == 0 and status == 200
        await marker(sim)
        assert replies(sim, "once") == 1
        assert rt.events is not None
        answers = rt.events.counts.answers
        assert answers[(200, "handled")] == 2 and answers[(200, "duplicate")] == 1  # (marker: handled)
        assert rt.events.counts.retries == {"http_timeout": 1}


async def test_our_own_bots_messages_are_acked_and_not_handled(sim: GridSimulator) -> None:
    async with http_runtime(http_config(sim)) as (rt, url):
        own = said("echo from myself", bot_id="B0BOT0002", user="U0BOT0002")
        await subscribe(sim, url)
        delivery = await sim.http.deliver(APP, own)
        assert delivery.acked and delivery.retries == 0
        await marker(sim)
        assert replies(sim, "from myself") == 0
        # and the bot's reply to the marker: Slack delivers an app's own messages to it too
        assert rt.events is not None and rt.events.counts.answers[(200, "own_message")] == 2


class GatedStore(MemoryStore):
    """The store's decisions wait for ``gate`` (a slow store, as seen from the receiver)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def decide_many(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[Decision]:
        await self.gate.wait()
        return await super().decide_many(asks)


@retrying(0.5, 60, 300)
async def test_no_decision_within_ack_timeout_is_a_503_and_the_retry_finds_the_claim(
    sim: GridSimulator,
) -> None:
    store = GatedStore()
    config = http_config(sim, events={"ack_timeout": 0.3})
    async with http_runtime(config, store=store) as (rt, url):
        await subscribe(sim, url)
        delivering = asyncio.create_task(sim.http.deliver(APP, said("echo slow store")))
        await wait_until(
            lambda: bool(delivered(sim)) and len(delivered(sim)[0].attempts) == 1,
            5,
            "the first attempt answered",
        )
        first = delivered(sim)[0].attempts[0]
        assert (first.status, first.result) == (503, "http_error")
        assert 0.3 <= first.seconds < 1.0
        store.gate.set()  # the store answers: the queued delivery is decided and handled
        delivery = await delivering
        assert delivery.acked and delivery.retries == 1
        assert delivery.attempts[1].retry_reason == "http_error"
        await marker(sim)
        assert replies(sim, "slow store") == 1
        assert rt.events is not None
        assert rt.events.counts.answers[(503, "ack_timeout")] == 1
        assert rt.events.counts.answers[(200, "duplicate")] == 1


@retrying(0.2, 0.2, 30)
async def test_store_unreachable_503_at_once_then_handled_once_when_it_returns(
    sim: GridSimulator, redis_servers: RedisServers
) -> None:
    """Redis killed: each delivery is answered 503 (not acknowledged: Slack keeps it) and stays
    buffered here; Redis back: it is handled once, and Slack's next retry is a duplicate."""
    redis = redis_servers.start(persistent=True)
    config = http_config(sim, redis_url=redis.url(), lease_ttl=30.0)
    async with http_runtime(config) as (rt, url):
        await subscribe(sim, url)
        await marker(sim, "before")
        redis.kill()
        outage = said("echo during outage")
        delivering = asyncio.create_task(sim.http.deliver(APP, outage))
        ts = outage["event"]["ts"]
        await wait_until(
            lambda: bool(delivered(sim, ts)) and len(delivered(sim, ts)[0].attempts) >= 2,
            10,
            "two attempts in the outage",
        )
        attempts = delivered(sim, ts)[0].attempts
        assert [a.status for a in attempts][:2] == [503, 503]
        assert all(a.seconds < 3 for a in attempts)  # never late
        redis.start()
        await wait_until(lambda: replies(sim, "during outage") == 1, 15, "handled once Redis is back")
        delivery = await delivering
        assert delivery.acked
        await marker(sim, "after")
        assert replies(sim, "during outage") == 1
        assert rt.events is not None and rt.events.counts.answers[(503, "unavailable")] >= 2


@retrying(2.0, 60, 300)
async def test_a_team_still_authenticating_gets_503(sim: GridSimulator) -> None:
    """auth.test slow: the app's requests verify (not 401) and are retried later (503)."""
    sim.set_latency(1.5, ["auth.test"])
    async with Runtime(http_config(sim)) as rt:
        assert rt.events is not None
        url = f"http://127.0.0.1:{rt.events.port}/slack/events"
        await subscribe(sim, url)  # verified at once: a challenge needs no team
        delivery = await sim.http.deliver(APP, said("echo early"))
        assert [a.status for a in delivery.attempts] == [503, 200]
        assert rt.events.counts.answers[(503, "starting")] == 1
        await wait_until(lambda: replies(sim, "early") == 1, 5, "handled after the retry")
