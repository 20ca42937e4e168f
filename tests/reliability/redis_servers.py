"""Private ``redis-server`` processes for tests that stop, restart or lock down their Redis.

The shared Redis on 6379 is never touched: each server here gets a free port and is killed when
the test ends, whatever happened. The server class itself lives in ``bench/soak.py`` (the soak
needs it outside pytest too), so the repo root is made importable here.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.soak import RedisServer  # the repo root is on pytest's pythonpath (pyproject.toml)

__all__ = ["RedisServer", "RedisServers"]


class RedisServers:
    """Starts private servers on demand; :meth:`close` kills every one of them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[RedisServer] = []

    def start(self, **options: Any) -> RedisServer:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed: these tests start private Redis servers")
        folder = self.workdir / f"redis{len(self.started)}"
        folder.mkdir()
        server = RedisServer(folder, **options)
        self.started.append(server)
        server.start()
        return server

    def close(self) -> None:
        for server in self.started:
            server.stop()
