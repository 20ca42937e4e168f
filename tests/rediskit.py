"""The shared real Redis of the suite (127.0.0.1:6379): whether it answers, and cleaning up after
a test's own key prefix. Imported by conftest.py and by tests that need it outside a fixture."""

from __future__ import annotations

import os
import socket

import pytest
import redis.asyncio as aioredis

REDIS_URL = os.environ.get("GRIDBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(7).startswith(b"+PONG")
    except OSError:
        return False


REDIS_UP = _redis_up()


async def delete_prefix(prefix: str) -> None:
    """Delete every key a test wrote under its own prefix (never anything else)."""
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def require_redis() -> None:
    if REDIS_UP:
        return
    if os.environ.get("GRIDBOT_REQUIRE_REDIS") == "1":
        pytest.fail("Redis is required (GRIDBOT_REQUIRE_REDIS=1) but 127.0.0.1:6379 does not answer")
    pytest.skip("no Redis on 127.0.0.1:6379")


