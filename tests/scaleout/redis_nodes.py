"""Private Redis deployments for scale-out tests: a six-node Cluster and a Sentinel trio.

Every server runs on a free loopback port in a temp dir with persistence off, and is killed by
:meth:`Deployment.stop` (fixtures call it in ``finally``). Nothing touches the shared 6379.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def require_binaries() -> None:
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server / redis-cli not installed")


def free_ports(count: int) -> list[int]:
    """Ports free now; a Redis Cluster bus also needs port + 10000, so keep both free."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def cli(port: int, *args: str, check: bool = True) -> str:
    assert REDIS_CLI is not None
    done = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True, timeout=30
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"redis-cli {' '.join(args)}: {done.stderr or done.stdout}")
    return done.stdout


def wait_for(pred: object, timeout: float, what: str) -> None:
    """Blocking poll with a deadline, for fixture setup outside the event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if pred():  # type: ignore[operator]
                return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Deployment:
    workdir: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, port: int, *args: str, sentinel: bool = False) -> None:
        assert REDIS_SERVER is not None
        log = (self.workdir / f"{port}.log").open("ab")
        cmd = [REDIS_SERVER]
        if sentinel:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text("\n".join(args) + "\n")
            cmd += [str(conf), "--sentinel"]
            args = ()
        cmd += [
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            *args,
        ]
        self.procs[port] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        wait_for(lambda: cli(port, "PING").strip() == "PONG", 10, f"redis on {port}")

    def restart(self, port: int) -> None:
        """Start a killed node again with its original arguments (a Cluster node rejoins)."""
        proc = self.procs[port]
        assert proc.poll() is not None, "still running"
        log = (self.workdir / f"{port}.log").open("ab")
        self.procs[port] = subprocess.Popen(proc.args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        wait_for(lambda: cli(port, "PING").strip() == "PONG", 10, f"redis on {port}")

    def kill(self, port: int) -> None:
        proc = self.procs.get(port)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        for port in list(self.procs):
            self.kill(port)


@dataclass
class Cluster(Deployment):
    ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self) -> Cluster:
        self.ports = free_ports(6)
        for port in self.ports:
            self.spawn(
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "1500",
                # a replica may take over however long ago it last heard its master
                "--cluster-replica-validity-factor",
                "0",
            )
        cli(
            self.ports[0],
            "--cluster",
            "create",
            *(f"127.0.0.1:{p}" for p in self.ports),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
        )
        wait_for(
            lambda: all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in self.ports),
            30,
            "cluster_state:ok",
        )
        replicas = [p for p in self.ports if "role:slave" in cli(p, "INFO", "replication")]
        wait_for(
            lambda: all("master_link_status:up" in cli(p, "INFO", "replication") for p in replicas),
            30,
            "replicas in sync",
        )
        return self

    def masters(self) -> dict[int, tuple[int, int]]:
        """port -> first slot range of each live master."""
        found = {}
        for line in cli(self.alive_port(), "CLUSTER", "NODES").splitlines():
            parts = line.split()
            if "master" in parts[2] and "fail" not in parts[2] and len(parts) > 8:
                port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
                lo, _, hi = parts[8].partition("-")
                found[port] = (int(lo), int(hi or lo))
        return found

    def master_of(self, key: str) -> int:
        slot = int(cli(self.alive_port(), "CLUSTER", "KEYSLOT", key).strip())
        for port, (lo, hi) in self.masters().items():
            if lo <= slot <= hi:
                return port
        raise LookupError(f"no live master serves slot {slot}")

    def alive_port(self) -> int:
        return next(p for p in self.ports if self.procs[p].poll() is None)

    def healthy(self) -> bool:
        live = [p for p in self.ports if self.procs[p].poll() is None]
        return all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in live)


@dataclass
class SentinelSet(Deployment):
    master: int = 0
    replica: int = 0
    sentinels: list[int] = field(default_factory=list)
    service: str = "gridbot"

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
        return f"redis+sentinel://{nodes}/{self.service}"

    def start(self) -> SentinelSet:
        self.master, self.replica, *self.sentinels = free_ports(5)
        self.spawn(self.master)
        self.spawn(self.replica, "--replicaof", "127.0.0.1", str(self.master))
        for port in self.sentinels:
            self.spawn(
                port,
                f"sentinel monitor {self.service} 127.0.0.1 {self.master} 2",
                f"sentinel down-after-milliseconds {self.service} 1000",
                f"sentinel failover-timeout {self.service} 5000",
                f"sentinel parallel-syncs {self.service} 1",
                sentinel=True,
            )
        wait_for(
            lambda: "master_link_status:up" in cli(self.replica, "INFO", "replication"), 15, "replica in sync"
        )
        wait_for(
            lambda: all(
                "num-other-sentinels" in cli(p, "SENTINEL", "MASTER", self.service)
                and _other_sentinels(p, self.service) == 2
                for p in self.sentinels
            ),
            20,
            "sentinels see each other",
        )
        return self

    def current_master(self) -> int:
        out = cli(self.sentinels[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service).split()
        return int(out[1])


def _other_sentinels(port: int, service: str) -> int:
    lines = cli(port, "SENTINEL", "MASTER", service).split()
    return int(lines[lines.index("num-other-sentinels") + 1])
