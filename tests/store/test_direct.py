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
