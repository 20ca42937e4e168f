from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability.redis_servers import RedisServers


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[RedisServers]:
    servers = RedisServers(tmp_path)
    try:
        yield servers
    finally:
        servers.close()
