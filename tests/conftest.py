"""Shared fixtures. Real-Redis tests use 127.0.0.1:6379 with a unique key prefix per test.

Where no Redis answers, those tests are skipped with a loud warning, except under
GRIDBOT_REQUIRE_REDIS=1 (set by .ci/run), where they fail instead.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import gridbot_plugins
import pytest
from rediskit import REDIS_UP, REDIS_URL, delete_prefix, require_redis
from reliability.redis_servers import RedisServers

from gridbot.store import MemoryStore, RedisStore, Store

# The bundled plugins under test are this checkout's: the environment's editable install maps
# gridbot_plugins to the checkout it was made from, which a git worktree is not.
gridbot_plugins.__path__[:] = [str(Path(__file__).resolve().parents[1] / "plugins")]


def pytest_report_header(config: pytest.Config) -> str:
    if REDIS_UP:
        return f"redis: {REDIS_URL} answers; real-Redis tests run"
    return "redis: NOT REACHABLE on 127.0.0.1:6379 -- real-Redis tests will be SKIPPED (CI fails instead)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REDIS_UP:
        terminalreporter.write_line(
            "WARNING: no Redis on 127.0.0.1:6379: the store, election and multi-process tests were skipped.",
            red=True,
            bold=True,
        )


@pytest.fixture
def redis_available() -> None:
    """For a test that needs the shared Redis but none of its keys (a subprocess uses it)."""
    require_redis()


@pytest.fixture
def redis_prefix() -> str:
    return f"gbtest:{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis_url(redis_prefix: str) -> AsyncIterator[str]:
    """The real Redis URL; every key under this test's prefix is deleted afterwards."""
    require_redis()
    yield REDIS_URL
    await delete_prefix(redis_prefix)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Store]:
    """The same contract, run against the in-memory store and the real Redis."""
    if request.param == "memory":
        yield MemoryStore()
        return
    require_redis()
    redis_store = RedisStore.from_url(REDIS_URL, key_prefix=redis_prefix)
    yield redis_store
    await delete_prefix(redis_prefix)
    await redis_store.close()


@pytest.fixture(params=["memory", "redis"])
async def store_url(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[str | None]:
    """None (the in-memory store) or the real Redis URL, keys under this test's prefix cleaned."""
    if request.param == "memory":
        yield None
        return
    require_redis()
    yield REDIS_URL
    await delete_prefix(redis_prefix)


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[RedisServers]:
    """Private redis-server processes a test may kill, restart or lock down; always killed after."""
    servers = RedisServers(tmp_path)
    try:
        yield servers
    finally:
        servers.close()
