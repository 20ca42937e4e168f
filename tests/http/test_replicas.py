"""Two `gridbot run` replicas behind a round-robin load balancer, one real Redis.

The simulator delivers each event to the request URL (the proxy) and retries what was not
acknowledged within 3 s (about at once, after 1 and 5 minutes; 100x faster here): the retry
usually lands on the other replica, which must find the claim the first one made (platform-2026.md, "Events API over HTTP":
a dedup memory must outlive the retry horizon).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from gridtest import SHARED, T1, T2, GridbotProcess, wait_until
from httpkit import (
    APP,
    FAST,
    Proxy,
    delivered,
    delivery_of,
    event_callback,
    http_config,
    http_runtime,
    listening_port,
    message,
    signed_post,
    subscribe,
)

from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator, RateLimits

USERS = {T1: "W0ALICE01", T2: "W0BOB0001"}
UNLIMITED = pytest.mark.parametrize(
    "sim", [{"rate_limits": RateLimits(enabled=False)}], indirect=True, ids=["unlimited"]
)


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[GridSimulator]:
    """Slack's rate limits, unless parametrized indirectly with GridSimulator keywords."""
    options = getattr(request, "param", {})
    async with GridSimulator(seed=17, time_scale=FAST, **options) as simulator:
        yield simulator


async def replicas(sim: GridSimulator, tmp_path: Path, redis_url: str, prefix: str) -> list[GridbotProcess]:
    """Two replicas of one deployment (same config: both serve every HTTP team), listening."""
    config = http_config(sim, redis_url=redis_url, key_prefix=prefix)
    procs = [await GridbotProcess(config, tmp_path, name).start() for name in ("replica-a", "replica-b")]

    def ready(proc: GridbotProcess) -> bool:
        connected = {
            e.get("team_id")
            for e in proc.events()
            if e.get("event") == "team.state" and e.get("state") == "connected"
        }
        return listening_port(proc) is not None and connected >= {T1, T2}

    await wait_until(lambda: all(ready(p) for p in procs), 30, "both replicas listening, teams connected")
    return procs


def backend(proc: GridbotProcess) -> str:
    return f"http://127.0.0.1:{listening_port(proc)}"


async def say(sim: GridSimulator, n: int, label: str) -> str:
    """A user of Team One or Team Two writes in the shared channel; returns the message ts."""
    return await sim.post_message(user=USERS[(T1, T2)[n % 2]], channel=SHARED, text=f"echo {label}{n}")


def replies(sim: GridSimulator) -> list[str]:
    return sorted(p.text for p in sim.posted)


@UNLIMITED  # about retries landing on the other replica, not Slack's posting limit (24 answers, one channel)
async def test_every_event_answered_once_while_slack_retries_on_the_other_replica(
    sim: GridSimulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    procs = await replicas(sim, tmp_path, redis_url, redis_prefix)
    try:
        # The first answer to every third message is lost on its way back to Slack.
        lose = {f"echo rr{n}" for n in range(24) if n % 3 == 1}
        proxy = Proxy([backend(p) for p in procs], lose=lose, retry_elsewhere=True)
        async with proxy.serving() as url:
            await subscribe(sim, url)
            # One after the other: each reply is in before the next message.
            deliveries = [await delivery_of(sim, await say(sim, n, "rr")) for n in range(24)]
            expected = sorted(f"rr{n}" for n in range(24))
            await wait_until(lambda: len(sim.posted) >= 24, 15, "24 replies")
            assert (await delivery_of(sim, await say(sim, 99, "marker"))).acked  # no more replies after it
            await wait_until(lambda: "marker99" in replies(sim), 10, "the marker's reply")
        assert all(d.acked for d in deliveries)
        assert replies(sim) == sorted([*expected, "marker99"])  # each exactly once
        retried = [d for d in deliveries if d.retries]
        assert len(retried) == 8  # every third message's first answer was lost
        assert all(a.retry_reason == "http_error" for d in retried for a in d.attempts[1:])  # the proxy's 502
        by_event: dict[str | None, list[str]] = {}
        for _, where, status, event_id in proxy.served:
            assert status == 200
            by_event.setdefault(event_id, []).append(where)
        for d in retried:  # the retry was taken by the other replica, and answered 200 there
            first, second = by_event[d.event_id][:2]
            assert first != second
        assert sim.http.counts(APP).non_2xx == len(retried)
        assert sim.calls_to("chat.postMessage") and len(sim.posted) == 25
    finally:
        for p in procs:
            await p.stop()


@UNLIMITED  # about a replica killed mid-stream, not Slack's posting limit (40 answers, one channel)
async def test_a_replica_killed_with_events_in_flight_loses_none_it_had_not_claimed(
    sim: GridSimulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """SIGKILL one replica mid-stream: Slack's retries of its unanswered deliveries reach the
    other. An event is answered once, or (the documented at-most-once window) was claimed by
    the killed replica before it died, as its own log shows."""
    procs = await replicas(sim, tmp_path, redis_url, redis_prefix)
    victim, survivor = procs
    try:
        # Random picks: with round robin, each user's message and the bot's reply to the one
        # before would take turns, and the victim would only ever hold replies.
        proxy = Proxy([backend(p) for p in procs], seed=17)
        ts_of: dict[str, str] = {}
        async with proxy.serving() as url:
            await subscribe(sim, url)

            async def stream() -> None:
                for n in range(40):
                    ts_of[f"k{n}"] = await say(sim, n, "k")
                    await asyncio.sleep(0.05)  # the users' pace: still talking when the victim stops

            streaming = asyncio.create_task(stream())
            await wait_until(lambda: len(sim.posted) >= 8, 10, "the stream under way")
            # Stopped first, so that deliveries are surely in flight at it when it is killed.
            victim.signal(signal.SIGSTOP)
            held = backend(victim)
            await wait_until(
                lambda: any(t.startswith("echo k") for t in proxy.holding.get(held, ())),
                10,
                "a user's message held by the victim",
            )
            victim.signal(signal.SIGKILL)
            await streaming
            await wait_until(
                lambda: len(ts_of) == 40 and all(d.outcome for d in delivered(sim)), 30, "all done"
            )
            deliveries = [d for d in delivered(sim) if d.ts in ts_of.values()]  # not the bot's own replies
            await wait_until(lambda: len(sim.posted) >= 30, 15, "most replies")
            assert (await delivery_of(sim, await say(sim, 99, "marker"))).acked
            await wait_until(lambda: "marker99" in replies(sim), 10, "the marker's reply")
        assert len(deliveries) == 40 and all(d.acked for d in deliveries)
        assert any(d.retries for d in deliveries)  # some were in flight at the victim
        got = replies(sim)
        assert len(got) == len(set(got))  # never twice
        missing = {f"k{n}" for n in range(40)} - set(got)
        claimed_by_victim = {
            e["ts"]
            for e in victim.events()
            if e.get("event") == "event.decided" and e.get("decision") == "handled"
        }
        # each missing one was claimed by the victim, which died before its handler replied
        assert {ts_of[text] for text in missing} <= claimed_by_victim
        assert survivor.proc is not None and survivor.proc.returncode is None
    finally:
        for p in procs:
            await p.stop()


async def test_a_retry_minutes_later_on_the_other_replica_is_still_a_duplicate(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    """Slack's last retry comes about 6 minutes after the first delivery: the claim in Redis
    (not any replica's memory) must still be there. Its TTL is checked, then the retry is sent
    to the replica that never saw the event. Both kinds of claim: in a conversation, and keyed
    on the event_id (an event with no channel)."""
    config = http_config(sim, redis_url=redis_url, key_prefix=redis_prefix)
    async with http_runtime(config) as (_, url_a), http_runtime(config) as (_, url_b):
        said_once = event_callback(message(SHARED, USERS[T1], "echo late retry", team=T1), team_id=T1)
        joined = event_callback({"type": "team_join", "user": {"id": "W0NEW0001", "team_id": T1}}, team_id=T1)
        await subscribe(sim, url_a)
        assert all(
            [(await sim.http.deliver(APP, said_once)).acked, (await sim.http.deliver(APP, joined)).acked]
        )
        async with aioredis.Redis.from_url(redis_url) as redis:  # the claims, as Redis holds them
            claims = [k async for k in redis.scan_iter(match=f"{redis_prefix}:*:ev*")]
            assert len(claims) == 2
            for key in claims:
                assert await redis.ttl(key) > 6 * 60 + 30
        retry = {"X-Slack-Retry-Num": "3", "X-Slack-Retry-Reason": "http_timeout"}
        for payload in (said_once, joined):  # Slack's last retry, as it reaches the other replica
            status, _ = await signed_post(url_b, orjson.dumps(payload), headers=retry)
            assert status == 200
        await subscribe(sim, url_b)
        assert (await delivery_of(sim, await say(sim, 98, "marker"))).acked
        await wait_until(lambda: "marker98" in replies(sim), 10, "the marker's reply")
        assert replies(sim) == ["late retry", "marker98"]


async def test_a_replica_stopping_leaves_the_teams_heartbeats_to_the_others(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    """Every replica renews an HTTP team's heartbeat in common: one stopping (or dying) does not
    make the team look down, so no standby team takes its conversations over meanwhile."""
    config = http_config(sim, redis_url=redis_url, key_prefix=redis_prefix)
    first = Runtime(config)
    await first.start()
    try:
        await wait_until(lambda: first.supervisor is not None and len(first.supervisor.connected()) == 2, 10)
        async with http_runtime(config) as (second, _):
            assert await second.store.alive([T1, T2]) == {T1, T2}
            await first.stop()
            assert await second.store.alive([T1, T2]) == {T1, T2}  # at once, not a renewal later
    finally:
        await first.stop()
