"""Helpers for tests that run the real runtime against the simulator (importable as `gridtest`)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from gridbot import logs
from gridbot.config import Config
from gridbot.dedup.outcomes import Outcomes
from gridbot.events import Event, normalise
from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for, to_toml

T = TypeVar("T")
T1, T2, T3 = "T0TEAM001", "T0TEAM002", "T0TEAM003"
SHARED = "C0SHARED1"
USERS = {T1: "W0ALICE01", T2: "W0BOB0001", T3: "W0CAROL01"}


def grid_config(sim: GridSimulator, transports: dict[str, str], **kwargs: Any) -> Config:
    """The runtime config for ``transports`` ({team id: "rtm" | "socket_mode"}) of the simulator."""
    return config_for(sim, transports, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def log_lines(level: str) -> Iterator[io.StringIO]:
    """Every log line of the block at ``level``, as JSON, through the real (redacting) pipeline;
    the process logs at info again afterwards."""
    stream = io.StringIO()
    logs.configure(level, stream=stream, json=True)
    try:
        yield stream
    finally:
        logs.configure("info")


async def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    try:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Await ``probe()`` until it returns something other than None."""
    try:
        async with asyncio.timeout(timeout):
            while (value := await probe()) is None:
                await asyncio.sleep(0.01)
            return value
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {probe}") from None


async def connected(rt: Runtime, sim: GridSimulator, teams: list[str], timeout: float = 10.0) -> None:
    assert rt.supervisor is not None
    sup = rt.supervisor
    await wait_until(
        lambda: all((t := sup.team(x)) is not None and t.state == "connected" for x in teams),
        timeout,
        f"teams {teams} connected",
    )


def texts(sim: GridSimulator) -> list[str]:
    """Every bot reply's text, sorted: compare with what was sent to check "each exactly once"."""
    return sorted(p.text for p in sim.posted)


async def converse(sim: GridSimulator, label: str, count: int, channel: str = SHARED) -> list[str]:
    """``count`` echo messages from users of all three teams; returns the replies expected."""
    authors = list(USERS.values())
    for n in range(count):
        await sim.post_message(user=authors[n % 3], channel=channel, text=f"echo {label}{n}")
    return [f"{label}{n}" for n in range(count)]


def replies(sim: GridSimulator, channel: str | None = None) -> list[Any]:
    return [p for p in sim.posted if channel is None or p.channel == channel]


def separate_apps_topology() -> Any:
    """The guide's org, but with one app per team (each app gets its own copy of every event)."""
    import tomllib
    from importlib.resources import files

    from gridbot.testing.simulator.model import topology_from_dict

    data = tomllib.loads(files("gridbot.testing").joinpath("topologies/three_teams.toml").read_text())
    installs = data["apps"][0]["installations"]
    data["apps"] = [
        {
            "id": f"A0APP{n}",
            "name": f"gridbot-{n}",
            "app_token": f"xapp-sim-A0APP{n}",
            "installations": [inst],
        }
        for n, inst in enumerate(installs, start=1)
    ]
    return topology_from_dict(data)


async def settled(rt: Runtime, timeout: float = 10.0) -> None:
    """Every delivery decided (standby copies included) and every handler finished."""
    assert rt.dedup is not None and rt.dispatcher is not None
    dedup, dispatcher = rt.dedup, rt.dispatcher
    await wait_until(lambda: dedup.backlog == 0 and dispatcher.running == 0, timeout, "runtime settled")


class GridbotProcess:
    """`gridbot run --config FILE` as a real subprocess; its JSON log lines land in a file."""

    def __init__(self, config: Config, workdir: Path, name: str) -> None:
        self.name = name
        self.config_path = workdir / f"{name}.toml"
        self.log_path = workdir / f"{name}.log"
        self.config_path.write_text(to_toml(config))
        self.config_path.chmod(0o600)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> GridbotProcess:
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gridbot.cli",
            "--log-json",
            "--log-level",
            "debug",
            "run",
            "--config",
            str(self.config_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> None:
        """Best effort for fixtures' finally blocks: SIGKILL if still running."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
        return found


class CollectingIntake:
    """An intake for a lone link: every delivery normalised, as the dedup stage does with the first
    copy of an event, and kept in ``events`` (a frame that is not an event raises FrameError)."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.open = asyncio.Event()
        self.open.set()
        self.outcomes = Outcomes()  # (interactive payloads register their claim's answer here)

    def offer(
        self,
        frame: dict[str, Any],
        team_id: str,
        enterprise_id: str | None,
        covers: tuple[str, ...],
        event_id: str | None = None,
    ) -> None:
        self.events.append(normalise(frame, team_id=team_id, enterprise_id=enterprise_id, event_id=event_id))

    def handed_over(self) -> None:
        """Nothing waits for a batch here."""


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port for the block; yields ``http://127.0.0.1:PORT``."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
