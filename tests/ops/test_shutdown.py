"""SIGTERM while a slow handler runs and while a Redis outage has buffered events: the daemon
drains what it can within ``runtime.shutdown_timeout`` (one budget), counts and logs what it could
not, and exits 0. A real ``gridbot run`` process against the simulator and a private Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from gridtest import SHARED, T1, USERS, wait_until
from reliability.redis_servers import RedisServers

from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for, to_toml

TESTS = Path(__file__).parents[1]


def stamp(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()


class Daemon:
    """``gridbot run`` with the tests' sample plugins importable; JSON log lines in a file."""

    def __init__(self, workdir: Path, config: Any) -> None:
        self.config_path = workdir / "gridbot.toml"
        self.config_path.write_text(to_toml(config))
        self.config_path.chmod(0o600)
        self.log_path = workdir / "gridbot.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gridbot.cli", "--log-json", "--log-level", "debug",
                "run", "--config", str(self.config_path),
                stdout=log, stderr=asyncio.subprocess.STDOUT, env=env,
            )  # fmt: skip

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if name is None or item.get("event") == name:
                found.append(item)
        return found

    def decided(self, ts: str, decision: str) -> bool:
        return any(e.get("ts") == ts and e.get("decision") == decision for e in self.events("event.decided"))

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.mark.parametrize(
    "redis_returns", [False, True], ids=["redis-stays-down", "redis-returns-in-the-drain"]
)
async def test_sigterm_drains_a_slow_handler_and_counts_the_buffered_backlog(
    tmp_path: Path, redis_servers: RedisServers, redis_returns: bool
) -> None:
    redis = redis_servers.start(persistent=True)
    async with GridSimulator(seed=41) as sim:
        config = config_for(
            sim,
            {T1: "rtm"},
            redis_url=redis.url(),
            plugins=("echo", "fixtures.sample_plugins.slow"),
            shutdown_timeout=6.0,
            lease_ttl=6.0,
        )
        daemon = Daemon(tmp_path, config)
        await daemon.start()
        try:
            await wait_until(lambda: sim.socket_count(team=T1) == 1, 30, "the daemon connected")
            slow_ts = await sim.post_message(user=USERS[T1], channel=SHARED, text="slow 2")
            await wait_until(lambda: daemon.decided(slow_ts, "handled"), 10, "the slow handler started")

            await asyncio.to_thread(redis.kill)
            buffered = [
                await sim.post_message(user=USERS[T1], channel=SHARED, text=f"echo b{n}") for n in (1, 2)
            ]
            await wait_until(lambda: bool(daemon.events("store.unavailable")), 10, "the outage noticed")
            assert daemon.proc is not None
            daemon.proc.send_signal(signal.SIGTERM)
            await wait_until(lambda: bool(daemon.events("gridbot.stopping")), 10, "the drain began")
            if redis_returns:
                await asyncio.to_thread(redis.start)
            assert await asyncio.wait_for(daemon.proc.wait(), 30) == 0

            [stopping] = daemon.events("gridbot.stopping")
            assert stopping["in_flight"] == 1 and stopping["backlog"] == 2 and stopping["store_ok"] is False
            [stopped] = daemon.events("gridbot.stopped")
            answers = sorted(p.text for p in sim.posted)
            if redis_returns:  # drained: each buffered event answered once, within the budget
                assert answers == ["b1", "b2", "slow done"]
                assert daemon.events("gridbot.backlog_abandoned") == []
                assert (stopped["handlers_finished"], stopped["backlog_abandoned"]) == (3, 0)
            else:  # counted: nothing decided without the store, and said so
                assert answers == ["slow done"]
                [abandoned] = daemon.events("gridbot.backlog_abandoned")
                assert abandoned["backlog"] == 2 and abandoned["store_ok"] is False
                assert (stopped["handlers_finished"], stopped["backlog_abandoned"]) == (1, 2)
                assert not any(daemon.decided(ts, "handled") for ts in buffered)
                took = stamp(stopped) - stamp(stopping)
                assert took < 6.0 + 2.0, f"the drain took {took:.1f}s of a 6 s budget"
            assert stopped["handlers_cancelled"] == 0
        finally:
            await daemon.kill()


async def test_sigterm_cancels_what_outlives_the_budget_counts_it_and_exits_0(
    tmp_path: Path, redis_servers: RedisServers
) -> None:
    redis = redis_servers.start(persistent=True)
    async with GridSimulator(seed=42) as sim:
        config = config_for(
            sim,
            {T1: "rtm"},
            redis_url=redis.url(),
            plugins=("echo", "fixtures.sample_plugins.slow"),
            shutdown_timeout=1.0,
        )
        daemon = Daemon(tmp_path, config)
        await daemon.start()
        try:
            await wait_until(lambda: sim.socket_count(team=T1) == 1, 30, "the daemon connected")
            slow_ts = await sim.post_message(user=USERS[T1], channel=SHARED, text="slow 20")
            await wait_until(lambda: daemon.decided(slow_ts, "handled"), 10, "the slow handler started")
            assert daemon.proc is not None
            daemon.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(daemon.proc.wait(), 15) == 0
            [stopped] = daemon.events("gridbot.stopped")
            assert (stopped["handlers_finished"], stopped["handlers_cancelled"]) == (0, 1)
            assert [e["handler"] for e in daemon.events("handler.cancelled")] == ["slow"]
            assert sim.posted == []
        finally:
            await daemon.kill()
