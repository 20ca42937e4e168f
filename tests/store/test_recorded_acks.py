"""Recorded acks (gridbot/store/acks.py): the winner of an interaction's claim records its ack,
and its copies wait for it. The same cases on the in-memory store and the real Redis."""

from __future__ import annotations

import asyncio
import time

import orjson
import redis.asyncio as aioredis
from gridtest import eventually
from rediskit import REDIS_URL

from gridbot.store import MemoryStore, RedisStore, Store
from gridbot.store.acks import WAITS
from gridbot.store.keys import Keys

ERRORS = orjson.dumps({"response_action": "errors", "errors": {"title": "A title, please"}}).decode()
KEY = "interaction:t:1337.42.abcdef"


async def blocked_in_redis() -> int:
    """Clients of the shared Redis blocked in BLMOVE (only recorded-ack waits issue it)."""
    client = aioredis.from_url(REDIS_URL)
    try:
        return sum(
            1 for c in await client.client_list() if c.get("cmd") == "blmove" and "b" in c.get("flags", "")
        )
    finally:
        await client.aclose()


async def waiting(store: Store, n: int) -> None:
    """Until ``n`` waits are blocked in the store (Redis: in BLMOVE; memory: on a future)."""

    async def blocked() -> bool | None:
        count = store._acks.waiting if isinstance(store, MemoryStore) else await blocked_in_redis()
        return True if count >= n else None

    await eventually(blocked, 5.0)


async def test_a_waiting_copy_gets_the_ack_recorded_after_it_started_waiting(store: Store) -> None:
    """Two copies block before the winner acks (one list element serves every waiter); one
    that arrives after the record gets it at once."""
    waiters = [asyncio.create_task(store.wait_ack(KEY, 5.0), name=f"copy-{n}") for n in range(2)]
    await waiting(store, 2)  # the record must wake them, not precede them
    assert not any(w.done() for w in waiters)
    started = time.monotonic()
    await store.record_ack(KEY, ERRORS, 5500)
    assert await asyncio.gather(*waiters) == [ERRORS, ERRORS]
    assert time.monotonic() - started < 1.0  # woken by the record, not by the timeout
    assert await store.wait_ack(KEY, 5.0) == ERRORS


async def test_the_first_record_stays(store: Store) -> None:
    await store.record_ack(KEY, ERRORS, 5500)
    await store.record_ack(KEY, "null", 5500)
    assert await store.wait_ack(KEY, 0.0) == ERRORS


async def test_an_empty_ack_is_recorded_as_null_and_told_apart_from_none(store: Store) -> None:
    await store.record_ack(KEY, "null", 5500)
    assert await store.wait_ack(KEY, 0.0) == "null"
    assert await store.wait_ack("interaction:t:other", 0.0) is None


async def test_nothing_recorded_answers_none_at_the_timeout(store: Store) -> None:
    started = time.monotonic()
    assert await store.wait_ack(KEY, 0.3) is None
    assert 0.2 <= time.monotonic() - started < 0.6


async def test_a_record_expires_after_its_ttl(store: Store) -> None:
    await store.record_ack(KEY, ERRORS, 150)
    assert await store.wait_ack(KEY, 0.0) == ERRORS

    async def gone() -> bool | None:
        return True if await store.wait_ack(KEY, 0.0) is None else None

    await eventually(gone, 3.0)


def test_the_record_shares_the_claims_hash_tag() -> None:
    """Under Redis Cluster the record and the claim of one interaction live in one slot."""
    keys = Keys("gb")
    tag = keys.loose_claim(KEY).split("}")[0]
    assert keys.ack(KEY).split("}")[0] == tag == "gb:{e:" + KEY


async def test_many_waiting_copies_leave_the_pool_to_everything_else(
    redis_url: str, redis_prefix: str
) -> None:
    """Each blocked wait holds a pooled connection: far more copies than the pool has
    connections (64) wait at once, and a plain read still answers at once."""
    store = RedisStore.from_url(REDIS_URL, key_prefix=redis_prefix)
    try:
        await store.ping()
        waiters = [
            asyncio.create_task(store.wait_ack(f"interaction:t:{n}", 1.5), name=f"copy-{n}")
            for n in range(80)
        ]
        await waiting(store, WAITS)
        started = time.monotonic()
        assert await store.kv_get("ns", "k") is None
        assert time.monotonic() - started < 0.5, "a read waited behind the blocked copies"
        assert await blocked_in_redis() == WAITS  # the others queue for a slot, holding nothing
        assert await asyncio.gather(*waiters) == [None] * 80
    finally:
        await store.close()


async def test_a_recorded_ack_is_found_while_every_slot_waits_on_winners_that_never_record(
    redis_url: str, redis_prefix: str
) -> None:
    """A replica died with requests in flight: the balancer's retries of them all wait for
    records that never come and hold every slot. A copy whose winner did record must still get
    its ack at once, not queue behind them until its deadline."""
    store = RedisStore.from_url(REDIS_URL, key_prefix=redis_prefix)
    try:
        await store.ping()
        orphans = [
            asyncio.create_task(store.wait_ack(f"interaction:t:dead{n}", 1.0), name=f"orphan-{n}")
            for n in range(WAITS)
        ]
        await waiting(store, WAITS)
        await store.record_ack(KEY, '{"response_action": "clear"}', 5_000)
        started = time.monotonic()
        assert await store.wait_ack(KEY, 1.0) == '{"response_action": "clear"}'
        assert time.monotonic() - started < 0.5
        assert await asyncio.gather(*orphans) == [None] * WAITS
    finally:
        await store.close()
