"""An installation store per test: the same contract on memory and on the real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from rediskit import REDIS_URL, delete_prefix, require_redis

from gridbot.installs import InstallStore, MemoryInstallStore, RedisInstallStore


@pytest.fixture(params=["memory", "redis"])
async def installs(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[InstallStore]:
    if request.param == "memory":
        yield MemoryInstallStore()
        return
    require_redis()
    store = RedisInstallStore.from_url(REDIS_URL, key_prefix=redis_prefix)
    yield store
    await delete_prefix(redis_prefix)
    await store.close()
