"""The store's own connection writes what redis-py would write, and gives way to redis-py when
anything is unusual (store/direct.py)."""

from __future__ import annotations

from typing import Any

from redis.asyncio.connection import Connection

from gridbot.store.direct import pack


def test_a_packed_batch_is_byte_for_byte_redis_pys() -> None:
    calls: list[tuple[list[str], list[Any]]] = [
        (["gridbot:e:{C1}", "gridbot:c:{C1}:m:1.000100"], [900, "T1,T2;T3"]),
        (["k\u00e9y"], ["", b"raw\r\nbytes", -5, 0]),
        ([], []),
    ]
    expected = Connection().pack_commands([("EVALSHA", "f00d", len(k), *k, *a) for k, a in calls])
    assert pack("f00d", calls) == b"".join(expected)


async def test_a_broken_direct_connection_hands_the_batch_to_redis_py(
    redis_url: str, redis_prefix: str
) -> None:
    """The store's own connection is killed between two batches (as a Redis restart or a
    failover would): the next batch is still decided, correctly, and no error reaches the caller."""
    import uuid

    import redis.asyncio as aioredis

    from gridbot.store import Outcome, RedisStore

    name = f"gbtest-direct-{uuid.uuid4().hex[:8]}"
    store = RedisStore.from_url(f"{redis_url}?client_name={name}", key_prefix=redis_prefix)
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await store.elect("C1", "T1", ["T1"])
        first = await store.decide_many([("C1", "1.000100", ["T1"])])
        assert [d.outcome for d in first] == [Outcome.HANDLED]
        killed = 0
        for client in await admin.client_list():
            if client.get("name") == name:
                killed += await admin.client_kill_filter(_id=client["id"])
        assert killed >= 1
        again = await store.decide_many([("C1", "1.000100", ["T1"]), ("C1", "1.000200", ["T1"])])
        assert [d.outcome for d in again] == [Outcome.DUPLICATE, Outcome.HANDLED]
        later = await store.decide_many([("C1", "1.000300", ["T1"])])  # and the fast path is back
        assert [d.outcome for d in later] == [Outcome.HANDLED]
    finally:
        await admin.aclose()
        await store.close()
