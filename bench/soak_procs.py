"""The soak's processes: a private ``redis-server`` and ``gridbot run`` subprocesses.

Both are killed (SIGKILL) and started again by the soak's faults; every start of a gridbot process
is a new incarnation with its own JSON log, read back when the soak classifies its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

APP_TOKEN = "xapp-sim-A0GRIDBOT1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A private ``redis-server`` on a free loopback port, killed and restarted at will.

    ``persistent`` keeps an append-only file fsynced on every write, so a SIGKILL loses nothing
    Redis acknowledged. ``password``, ``users`` (ACL lines such as ``"app on >pw ~* &* +@all"``)
    and ``tls`` (cert, key, CA files) configure access. Always ``stop()`` it (a finally block).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        persistent: bool = False,
        password: str | None = None,
        users: tuple[str, ...] = (),
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.persistent = persistent
        self.password = password
        self.users = users
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = workdir / f"redis-{self.port}.log"

    def args(self) -> list[str]:
        args = ["redis-server", "--bind", "127.0.0.1", "--dir", str(self.workdir), "--save", ""]
        args += ["--logfile", str(self.log_path)]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.tls is not None:
            cert, key, ca = self.tls
            args += ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca)]
            args += ["--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.password is not None:
            args += ["--requirepass", self.password]
        for user in self.users:
            args += ["--user", *user.split()]
        return args

    def start(self, timeout: float = 10.0) -> None:
        """Start (or start again, on the same port) and wait until it accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_path.exists():
                with self.log_path.open("rb") as f:
                    f.seek(mark)
                    if b"Ready to accept connections" in f.read():
                        return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: an outage with no goodbye. ``start()`` brings it back."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    stop = kill

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def url(self, *, user: str | None = None, password: str | None = None, db: int = 0) -> str:
        scheme = "rediss" if self.tls is not None else "redis"
        auth = ""
        secret = password if password is not None else self.password
        if user is not None or secret is not None:
            auth = f"{quote(user or '', safe='')}:{quote(secret or '', safe='')}@"
        query = f"?ssl_ca_certs={self.tls[2]}" if self.tls is not None else ""
        host = "localhost" if self.tls is not None else "127.0.0.1"  # the name the cert carries
        return f"{scheme}://{auth}{host}:{self.port}/{db}{query}"


def config_toml(
    api_url: str,
    redis_url: str,
    teams: dict[str, str],
    prefix: str,
    tokens: dict[str, str],
    runtime: dict[str, float],
) -> str:
    """One process's config: ``teams`` {team id: transport}, ``tokens`` {team id: bot token}."""
    lines = ["[slack]", f"api_url = {json.dumps(api_url)}", "", "[redis]"]
    lines += [f"url = {json.dumps(redis_url)}", f"key_prefix = {json.dumps(prefix)}", ""]
    for team, transport in teams.items():
        lines += ["[[teams]]", f"transport = {json.dumps(transport)}", f"name = {json.dumps(team)}"]
        lines.append(f"bot_token = {json.dumps(tokens[team])}")
        if transport == "socket_mode":
            lines.append(f"app_token = {json.dumps(APP_TOKEN)}")
        lines.append("")
    lines += ["[plugins]", 'enabled = ["echo"]', "", "[runtime]"]
    lines += [f"{k} = {v}" for k, v in runtime.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Incarnation:
    log_path: Path
    started: float
    killed: float | None = None  # wall clock of the SIGKILL


class GridbotProcess:
    """One ``gridbot run --config FILE``; every start is a new incarnation with its own log."""

    def __init__(self, name: str, config: Path, workdir: Path) -> None:
        self.name = name
        self.config = config
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.incarnations: list[Incarnation] = []

    async def start(self) -> None:
        path = self.workdir / f"{self.name}.{len(self.incarnations)}.log"
        with path.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gridbot.cli", "--log-json", "--log-level", "debug",
                "run", "--config", str(self.config),
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        self.incarnations.append(Incarnation(path, time.time()))

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.incarnations[-1].killed = time.time()
            self.proc.kill()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def reload(self) -> None:
        """SIGHUP: the process re-reads its config file (new ``[[teams]]`` apply live)."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGHUP)

    async def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); the exit status, None if it was killed."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.kill()
                await self.proc.wait()
                return None
        return self.proc.returncode

    async def reap(self) -> None:
        if self.proc is not None:
            await self.proc.wait()

    def log_events(self) -> Iterator[tuple[Incarnation, dict[str, Any]]]:
        for inc in self.incarnations:
            if not inc.log_path.exists():
                continue
            for line in inc.log_path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    item = json.loads(line)
                    if isinstance(item, dict):
                        yield inc, item
