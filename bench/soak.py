"""The chaos soak: ``python -m bench.soak --minutes 10 --seed N`` prints exactly-once figures.

The simulator runs in this process; a private ``redis-server`` (append-only file, fsync always,
so a restart keeps what it acknowledged) and several ``gridbot run`` processes run beside it.
Their teams overlap on purpose: two processes can read the same team's copy of a message, and
the dedup stage must still answer once. A steady stream of user messages goes to shared
channels, single-team channels, a cross-team DM and an MPDM while faults fire at random
(seeded): sockets cut, ``goodbye``, Socket Mode ``refresh_requested``, connects refused with 429
and ``Retry-After``, Web API latency spikes, a gridbot process killed with SIGKILL and started
again, Redis killed and started again.

At the end every message is classified:

* ``answered``: exactly one reply (the send-to-reply time is measured);
* ``duplicate``: more than one reply: always a failure;
* ``lost``: delivered to a live connection and never answered: a failure;
* ``lost_in_crash``: the documented exception: the process that claimed it, or every process
  that read it, was SIGKILLed before the reply went out (gridbot runs a handler at most once);
* ``undelivered``: no connection was up to receive it (RTM does not replay; not gridbot's doing).

The suite runs a short version (``tests/reliability/test_soak.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gridbot.testing import GridSimulator, RateLimits

APP = "A0GRIDBOT1"
APP_TOKEN = "xapp-sim-A0GRIDBOT1"
T1, T2 = "T0TEAM001", "T0TEAM002"
BOT_TOKENS = {T1: "xoxb-sim-T0TEAM001", T2: "xoxb-sim-T0TEAM002"}

# Conversation -> authors who may write there (the default three-team topology).
CONVERSATIONS: dict[str, tuple[str, ...]] = {
    "C0SHARED1": ("W0ALICE01", "W0BOB0001", "W0CAROL01"),  # shared by three teams
    "C0ONE0001": ("W0ALICE01",),  # Team 1 only
    "G0TWOPRIV": ("W0BOB0001",),  # Team 2 only, private
    "D0CAROLDM": ("W0CAROL01",),  # a Team 3 user's DM with Team 1's bot
    "G0MPIM001": ("W0ALICE01", "W0BOB0001", "W0CAROL01"),  # MPDM across three teams
}

# Which teams each process serves, over which transport. p1 and p3 both read Team 2 over RTM;
# p2 reads both teams again over Socket Mode (one envelope per app).
PROCESSES: dict[str, dict[str, str]] = {
    "p1": {T1: "rtm", T2: "rtm"},
    "p2": {T1: "socket_mode", T2: "socket_mode"},
    "p3": {T2: "rtm"},
}

RUNTIME = {  # failover in seconds, not minutes
    "standby_grace": 0.5,
    # Liveness and ownership leases: a SIGKILLed process's installations move within this.
    "lease_ttl": 5.0,
    "ping_interval": 2.0,
    "pong_timeout": 1.0,
    "hello_timeout": 2.0,
    "shutdown_timeout": 5.0,
    "handler_timeout": 10.0,
}

FAULTS = ("drop", "goodbye", "refresh", "connect_429", "latency", "kill", "redis_restart")
DECIDED = ("handled", "rescued")


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


def config_toml(api_url: str, redis_url: str, teams: dict[str, str], prefix: str) -> str:
    lines = ["[slack]", f"api_url = {json.dumps(api_url)}", "", "[redis]"]
    lines += [f"url = {json.dumps(redis_url)}", f"key_prefix = {json.dumps(prefix)}", ""]
    for team, transport in teams.items():
        lines += ["[[teams]]", f"transport = {json.dumps(transport)}", f"name = {json.dumps(team)}"]
        lines.append(f"bot_token = {json.dumps(BOT_TOKENS[team])}")
        if transport == "socket_mode":
            lines.append(f"app_token = {json.dumps(APP_TOKEN)}")
        lines.append("")
    lines += ["[plugins]", 'enabled = ["echo"]', "", "[runtime]"]
    lines += [f"{k} = {v}" for k, v in RUNTIME.items()]
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


@dataclass
class Sent:
    n: int
    channel: str
    ts: str
    text: str
    at: float  # wall clock, the simulator's clock too
    rtm_teams: frozenset[str]  # teams whose RTM sockets got a copy


@dataclass
class SoakReport:
    seconds: float
    seed: int
    messages: int = 0
    answered: int = 0
    duplicates: int = 0
    lost: int = 0
    lost_in_crash: int = 0
    undelivered: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    worst_reply_s: float = 0.0
    median_reply_s: float = 0.0
    p99_reply_s: float = 0.0
    reconnects: int = 0
    takeovers: int = 0
    rescued: int = 0
    store_unavailable: int = 0
    events_dropped: int = 0
    clean_exits: int = 0
    processes: int = 0
    problems: list[str] = field(default_factory=list)  # the first few failures, for a reader

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and self.lost == 0 and self.events_dropped == 0

    def lines(self) -> list[str]:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        return [
            f"soak: {self.seconds:.0f} s, seed {self.seed}, {self.processes} gridbot processes",
            f"messages            {self.messages}",
            f"answered once       {self.answered}",
            f"duplicates          {self.duplicates}",
            f"lost                {self.lost}",
            f"lost in a crash     {self.lost_in_crash}  (claimed or read only by a SIGKILLed process)",
            f"undelivered         {self.undelivered}  (no socket was up to receive it)",
            f"faults              {sum(self.faults.values())}: {faults}",
            f"send-to-reply       median {self.median_reply_s:.3f} s, p99 {self.p99_reply_s:.3f} s, "
            f"worst {self.worst_reply_s:.3f} s",
            f"reconnects          {self.reconnects}",
            f"takeovers           {self.takeovers}",
            f"rescued by standby  {self.rescued}",
            f"store outages seen  {self.store_unavailable}  (store.unavailable, per process)",
            f"events dropped      {self.events_dropped}",
            f"verdict             {'OK' if self.ok else 'FAILED'}",
            *(f"  {p}" for p in self.problems[:10]),
        ]


def _wall(item: dict[str, Any]) -> float:
    stamp = item.get("timestamp")
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class Soak:
    def __init__(
        self,
        seconds: float,
        seed: int,
        workdir: Path,
        *,
        rate: float,
        fault_every: float,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.seconds = seconds
        self.rate_limits = rate_limits
        self.seed = seed
        self.workdir = workdir
        self.rate = rate
        self.fault_every = fault_every
        self.rng = random.Random(seed)
        self.report = SoakReport(seconds, seed)
        self.sent: list[Sent] = []
        self.redis = RedisServer(workdir, persistent=True)
        self.procs: dict[str, GridbotProcess] = {}
        self.restarts: list[asyncio.Task[None]] = []
        self.down: set[str] = set()  # processes killed and not yet started again

    # -- faults --------------------------------------------------------------------------------

    def schedule(self) -> list[str]:
        """Every kind at least once, the rest at random; in a seeded random order."""
        count = max(len(FAULTS), int(self.seconds / self.fault_every))
        kinds = list(FAULTS) + [self.rng.choice(FAULTS) for _ in range(count - len(FAULTS))]
        self.rng.shuffle(kinds)
        return kinds

    def applicable(self, kind: str) -> bool:
        """One outage of a kind at a time, and at least one gridbot process always runs."""
        if kind == "kill":
            return len(set(self.procs) - self.down) >= 2
        if kind == "redis_restart":
            return self.redis.running
        return True

    async def fire(self, sim: GridSimulator, kind: str) -> None:
        rng = self.rng
        team = rng.choice([T1, T2])
        alive = sorted(set(self.procs) - self.down)
        self.report.faults[kind] += 1
        if kind == "drop":
            await sim.drop_sockets(team=team)
        elif kind == "goodbye":
            await sim.send_goodbye(team)
        elif kind == "refresh":
            await sim.send_disconnect(APP, "refresh_requested")
        elif kind == "connect_429":
            target = rng.choice([team, APP])
            sim.fail_connect(target, "ratelimited", 429, retry_after=rng.uniform(0.3, 1.0), times=2)
            if target == APP:
                await sim.drop_sockets(app=APP)  # every socket reconnects into the refusal
            else:
                await sim.drop_sockets(team=target)
        elif kind == "latency":
            sim.set_latency(rng.uniform(0.2, 0.8))
            self._later(rng.uniform(1.0, 3.0), self._calm(sim), "soak:latency-end")
        elif kind == "kill":
            proc = self.procs[rng.choice(alive)]
            self.down.add(proc.name)
            proc.kill()
            self._later(rng.uniform(0.5, 2.0), self._restart(proc), f"soak:restart-{proc.name}")
        elif kind == "redis_restart":
            await asyncio.to_thread(self.redis.kill)
            self._later(rng.uniform(0.5, 2.0), asyncio.to_thread(self.redis.start), "soak:redis-back")

    def _later(self, delay: float, coro: Any, name: str) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await coro

        self.restarts.append(asyncio.create_task(run(), name=name))

    async def _calm(self, sim: GridSimulator) -> None:
        sim.set_latency(0.0)

    async def _restart(self, proc: GridbotProcess) -> None:
        await proc.reap()
        await proc.start()
        self.down.discard(proc.name)

    # -- traffic -------------------------------------------------------------------------------

    async def send(self, sim: GridSimulator, n: int) -> None:
        channel = self.rng.choice(sorted(CONVERSATIONS))
        author = self.rng.choice(CONVERSATIONS[channel])
        text = f"s{self.seed}-{n}"
        at = time.time()
        ts = await sim.post_message(user=author, channel=channel, text=f"echo {text}")
        # The fanout is written before post_message returns: its RTM copies are the newest.
        recent = list(sim.deliveries)[-64:]
        teams = frozenset(d.team for d in recent if d.ts == ts and d.channel == channel)
        self.sent.append(Sent(n, channel, ts, text, at, teams))

    async def traffic(self, sim: GridSimulator) -> None:
        kinds = self.schedule()
        start = time.monotonic()
        next_fault = start + self.fault_every
        n = 0
        while (now := time.monotonic()) < start + self.seconds:
            if now >= next_fault and kinds:
                # the next applicable kind; one that must wait (a restart pending) keeps its turn
                ready = [i for i in range(len(kinds) - 1, -1, -1) if self.applicable(kinds[i])]
                if ready:
                    await self.fire(sim, kinds.pop(ready[0]))
                next_fault = now + self.rng.uniform(0.5, 1.5) * self.fault_every
            await self.send(sim, n)
            n += 1
            await asyncio.sleep(max(0.0, start + n / self.rate - time.monotonic()))

    # -- the run -------------------------------------------------------------------------------

    async def run(self) -> SoakReport:
        self.redis.start()
        try:
            async with GridSimulator(seed=self.seed, rate_limits=self.rate_limits) as sim:
                await self._serve(sim)
        finally:
            for proc in self.procs.values():
                if proc.proc is not None and proc.proc.returncode is None:
                    proc.proc.kill()
                    await proc.proc.wait()
            self.redis.stop()
        return self.report

    async def _serve(self, sim: GridSimulator) -> None:
        url = self.redis.url()
        for name, teams in PROCESSES.items():
            path = self.workdir / f"{name}.toml"
            path.write_text(config_toml(sim.api_url, url, teams, f"soak{self.seed}"))
            path.chmod(0o600)
            self.procs[name] = GridbotProcess(name, path, self.workdir)
        for proc in self.procs.values():
            await proc.start()
        # Each installation connected by some process (with team ownership, by exactly one).
        await sim.wait_for(self._all_connected(sim), 60, what="every installation connected")
        try:
            await self.traffic(sim)
        finally:
            sim.set_latency(0.0)
            await asyncio.gather(*self.restarts, return_exceptions=True)
        if not self.redis.running:
            self.redis.start()
        await self._settle(sim)
        for proc in self.procs.values():
            if await proc.terminate() == 0:
                self.report.clean_exits += 1
        self.report.processes = len(self.procs)
        self._classify(sim)

    @staticmethod
    def _all_connected(sim: GridSimulator) -> Any:
        def check() -> bool:
            rtm = {T1: sim.socket_count(team=T1), T2: sim.socket_count(team=T2)}
            return all(rtm.values()) and sim.socket_count(app=APP) > sum(rtm.values())

        return check

    async def _settle(self, sim: GridSimulator, quiet: float = 4.0, limit: float = 30.0) -> None:
        """Wait for the last answers: until every message has one, or nothing new for ``quiet`` s."""
        wanted = len(self.sent)
        deadline = time.monotonic() + limit
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(sim.posted)
            if count >= wanted and count == seen and time.monotonic() - since > 1.0:
                return
            if count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since > quiet:
                return
            await asyncio.sleep(0.1)

    # -- verdicts ------------------------------------------------------------------------------

    def _classify(self, sim: GridSimulator) -> None:
        r = self.report
        replies: dict[tuple[str, str], list[float]] = {}
        for post in sim.posted:
            replies.setdefault((post.channel, post.text), []).append(post.time)
        acked_events = {a.event_id for a in sim.acks}
        sm_acked = {
            (str(e.payload.get("event", {}).get("channel")), str(e.payload.get("event", {}).get("ts")))
            for e in sim.envelopes_sent
            if e.event_id in acked_events
        }
        decided: dict[tuple[str, str], list[Incarnation]] = {}
        links: Counter[tuple[str, str]] = Counter()
        for proc in self.procs.values():
            for inc, item in proc.log_events():
                event = item.get("event")
                if event == "event.decided" and item.get("decision") in DECIDED:
                    decided.setdefault((str(item.get("channel")), str(item.get("ts"))), []).append(inc)
                    r.rescued += item.get("decision") == "rescued"
                elif event == "link.connected":
                    links[(str(inc.log_path), str(item.get("link")))] += 1
                elif event == "election.moved" and item.get("reason") == "heartbeat_lapsed":
                    r.takeovers += 1
                elif event == "store.unavailable":
                    r.store_unavailable += 1
                elif event == "event.dropped":
                    r.events_dropped += 1
        r.reconnects = sum(n - 1 for n in links.values())
        kills = [i.killed for p in self.procs.values() for i in p.incarnations if i.killed is not None]
        latencies: list[float] = []
        for m in self.sent:
            got = replies.get((m.channel, m.text), [])
            r.messages += 1
            if len(got) == 1:
                r.answered += 1
                latencies.append(got[0] - m.at)
                continue
            if len(got) > 1:
                r.duplicates += 1
                r.problems.append(f"duplicate: {m.channel} {m.ts} {m.text!r} answered {len(got)} times")
                continue
            deciders = decided.get((m.channel, m.ts), [])
            if any(i.killed is not None and i.killed >= m.at for i in deciders):
                r.lost_in_crash += 1
            elif not m.rtm_teams and (m.channel, m.ts) not in sm_acked:
                r.undelivered += 1
            elif not deciders and any(m.at - 0.2 <= k <= m.at + 5.0 for k in kills):
                r.lost_in_crash += 1  # read only by processes that died before deciding
            else:
                r.lost += 1
                who = "decided, never answered" if deciders else "delivered, never decided"
                r.problems.append(f"lost: {m.channel} {m.ts} {m.text!r} ({who}, sent at {m.at:.3f})")
        if latencies:
            latencies.sort()
            r.worst_reply_s = latencies[-1]
            r.median_reply_s = latencies[len(latencies) // 2]
            r.p99_reply_s = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


async def run_soak(
    seconds: float,
    seed: int,
    workdir: Path,
    *,
    rate: float = 8.0,
    fault_every: float = 2.5,
    rate_limits: RateLimits | None = None,
) -> SoakReport:
    """Run one soak; ``workdir`` receives the configs, the Redis AOF and every process log.
    ``rate_limits`` is the simulator's (None: Slack's, by tier)."""
    soak = Soak(seconds, seed, workdir, rate=rate, fault_every=fault_every, rate_limits=rate_limits)
    return await soak.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=8.0, help="user messages per second")
    parser.add_argument("--fault-every", type=float, default=3.0, help="mean seconds between faults")
    parser.add_argument("--keep", default=None, help="keep configs and logs in this folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gridbot-soak-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(
            run_soak(args.minutes * 60, args.seed, workdir, rate=args.rate, fault_every=args.fault_every)
        )
    print("\n".join(report.lines()), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
