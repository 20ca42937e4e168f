"""The chaos soak: ``python -m bench.soak --minutes 10 --seed N`` prints exactly-once figures.

The simulator runs in this process; a private ``redis-server`` (append-only file, fsync always,
so a restart keeps what it acknowledged) and several ``gridbot run`` processes run beside it.
Their teams overlap on purpose: two processes can read the same team's copy of a message, and
the dedup stage must still answer once. A steady stream of user messages goes to shared
channels, single-team channels, a cross-team DM and an MPDM while faults fire at random
(seeded, :mod:`bench.soak_faults`): sockets cut, ``goodbye``, ``refresh_requested``, connects
refused with 429, Web API latency, a process SIGKILLed, Redis SIGKILLed, late / reordered /
doubled copies, membership churn, posting limits with a burst, an uninstall and reinstall.

At the end every message is classified (:mod:`bench.soak_verdict`): answered once, duplicate
(a failure), lost (a failure), or excused by a fault inside its documented window.

The suite runs a short version (``tests/reliability/test_soak.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.soak_faults import APP, FAULTS, T1, T2, TRIO, Chaos, posting_limits
from bench.soak_procs import APP_TOKEN, GridbotProcess, RedisServer, config_toml
from bench.soak_verdict import Decided, Kill, Observed, Reinstall, Sent, Verdict, Windows, classify
from gridbot.testing import GridSimulator
from gridbot.testing.simulator import Conversation

__all__ = ["APP_TOKEN", "FAULTS", "WINDOWS", "RedisServer", "SoakReport", "run_soak"]

# Conversation -> authors who may write there (when they are members: churn removes some).
CONVERSATIONS: dict[str, tuple[str, ...]] = {
    "C0SHARED1": ("W0ALICE01", "W0BOB0001", "W0CAROL01"),  # shared by three teams, hosted by Team 1
    TRIO: ("W0ALICE01", "W0BOB0001", "W0CAROL01"),  # shared by three, hosted by Team 3 (no app)
    "C0ONE0001": ("W0ALICE01",),  # Team 1 only
    "G0TWOPRIV": ("W0BOB0001",),  # Team 2 only, private
    "D0CAROLDM": ("W0CAROL01",),  # a Team 3 user's DM with Team 1's bot
    "G0MPIM001": ("W0ALICE01", "W0BOB0001", "W0CAROL01"),  # MPDM across three teams
}
TRIO_CHANNEL = Conversation(
    id=TRIO,
    name="trio",
    kind="channel",
    teams=(T1, T2, "T0TEAM003"),
    host_team="T0TEAM003",
    members=CONVERSATIONS[TRIO],
    bot_teams=(T1, T2),
)

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
    # A reply in a posting burst waits out 429s (Retry-After) inside its handler's time.
    "handler_timeout": 30.0,
}

ACK_TIMEOUT = 3.0  # the simulator's (Slack redelivers an unacked envelope after a few seconds)
#: The excuse windows (README "The chaos soak"): the grace (0.5 s) + a lagged copy (<= 1.5 s) +
#: 0.5 s to decide; a decided reply goes out within 2.5 s, or within the handler timeout when
#: it is waiting out a 429.
WINDOWS = Windows(read=2.5, reply=2.5, reply_429=RUNTIME["handler_timeout"], redeliver=ACK_TIMEOUT)
DECIDED = ("handled", "rescued")


@dataclass
class SoakReport:
    seconds: float
    seed: int
    verdict: Verdict = field(default_factory=Verdict)
    faults: Counter[str] = field(default_factory=Counter)
    processes: int = 0
    clean_exits: int = 0
    reconnects: int = 0
    moves: Counter[str] = field(default_factory=Counter)  # election.moved, by reason
    rescued: int = 0
    store_unavailable: int = 0
    events_dropped: int = 0
    limited: int = 0  # 429s the simulator answered
    lagged: int = 0  # copies the simulator wrote late
    doubled: int = 0  # copies it wrote twice
    problems: list[str] = field(default_factory=list)
    explain: int = 0  # how many excuses lines() lists, each with what explains it

    @property
    def ok(self) -> bool:
        v = self.verdict
        return v.duplicates == 0 and v.lost == 0 and self.events_dropped == 0 and not self.problems

    def lines(self) -> list[str]:
        v = self.verdict
        lat = v.latencies or [0.0]
        faults = ", ".join(f"{k} {n}" for k, n in sorted(self.faults.items()))
        moves = ", ".join(f"{k} {n}" for k, n in sorted(self.moves.items())) or "none"
        return [
            f"soak: {self.seconds:.0f} s, seed {self.seed}, {self.processes} gridbot processes",
            f"messages            {v.messages}",
            f"answered once       {v.answered}",
            f"duplicates          {v.duplicates}",
            f"lost                {v.lost}",
            f"excused: no reader  {v.excused['no_reader']}  (no installed bot a member: churn, uninstall)",
            f"excused: undelivered {v.excused['undelivered']}  (no socket was up to receive it)",
            f"excused: crash      {v.excused['lost_in_crash']}  (its reader or decider SIGKILLed "
            f"{v.crash_gap_s:.2f} s after it at most; windows {WINDOWS.read:.1f} / {WINDOWS.reply:.1f} s, "
            f"widest used {v.crash_bound_s:.2f} s)",
            f"excused: uninstall  {v.excused['uninstalled']}  (its team uninstalled before its reply, "
            "within the reply window)",
            f"excused: bot left   {v.excused['left']}  (decided for a team whose bot then left the "
            "conversation, within the reply window)",
            f"excused: reinstall  {v.excused['reinstall_gap']}  (sent before the reinstalled team was "
            f"served again; longest gap {v.reinstall_gap_s:.2f} s)",
            f"faults              {sum(self.faults.values())}: {faults}",
            f"429s on posts       {self.limited} answered; {v.late_by_429} replies late by one, "
            f"worst {v.worst_429_reply_s:.2f} s, none lost or doubled",
            f"timing faults       {self.lagged} copies late, {self.doubled} written twice",
            f"election moves      {moves}",
            f"send-to-reply       median {lat[len(lat) // 2]:.3f} s, "
            f"p99 {lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.3f} s, worst {lat[-1]:.3f} s",
            f"reconnects          {self.reconnects}",
            f"rescued by standby  {self.rescued}",
            f"store outages seen  {self.store_unavailable}  (store.unavailable, per process)",
            f"events dropped      {self.events_dropped}",
            f"clean exits         {self.clean_exits} of {self.processes}",
            f"verdict             {'OK' if self.ok else 'FAILED'}",
            *(f"  {p}" for p in [*self.problems, *v.problems][:12]),
            *(f"  excused {e}" for e in v.explained[: self.explain]),
        ]


def _wall(item: dict[str, Any]) -> float:
    stamp = item.get("timestamp")
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class Soak:
    def __init__(
        self, seconds: float, seed: int, workdir: Path, *, rate: float, fault_every: float
    ) -> None:
        self.seconds = seconds
        self.seed = seed
        self.workdir = workdir
        self.rate = rate
        self.fault_every = fault_every
        self.rng = random.Random(seed)
        self.report = SoakReport(seconds, seed)
        self.sent: list[Sent] = []
        self.redis = RedisServer(workdir, persistent=True)
        self.procs: dict[str, GridbotProcess] = {}
        self.tokens = {T1: "xoxb-sim-T0TEAM001", T2: "xoxb-sim-T0TEAM002"}
        self.limits = posting_limits()
        self.chaos: Chaos | None = None

    async def run(self) -> SoakReport:
        self.redis.start()
        try:
            async with GridSimulator(seed=self.seed, rate_limits=self.limits, ack_timeout=ACK_TIMEOUT) as sim:
                await sim.org.create_channel(TRIO_CHANNEL)
                await self._serve(sim)
        finally:
            for proc in self.procs.values():
                if proc.running:
                    proc.kill()
                await proc.reap()
            self.redis.stop()
        return self.report

    def _write_configs(self, sim: GridSimulator) -> None:
        for name, teams in PROCESSES.items():
            path = self.workdir / f"{name}.toml"
            path.write_text(
                config_toml(sim.api_url, self.redis.url(), teams, f"soak{self.seed}", self.tokens, RUNTIME)
            )
            path.chmod(0o600)

    async def _serve(self, sim: GridSimulator) -> None:
        self._write_configs(sim)
        for name in PROCESSES:
            self.procs[name] = GridbotProcess(name, self.workdir / f"{name}.toml", self.workdir)
            await self.procs[name].start()
        self.chaos = chaos = Chaos(
            sim,
            self.rng,
            self.procs,
            self.redis,
            self.tokens,
            rewrite=lambda: self._write_configs(sim),
            burst=lambda channel, count: self._burst(sim, channel, count),
            limits=self.limits,
        )
        await sim.wait_for(self._all_connected(sim), 60, what="every installation connected")
        try:
            await self.traffic(sim, chaos)
        finally:
            await chaos.finish()
        await self._settle(sim)
        for proc in self.procs.values():
            if await proc.terminate() == 0:
                self.report.clean_exits += 1
        self.report.processes = len(self.procs)
        self.report.faults.update(chaos.fired)
        self._judge(sim, chaos)

    @staticmethod
    def _all_connected(sim: GridSimulator) -> Any:
        def check() -> bool:
            rtm = {T1: sim.socket_count(team=T1), T2: sim.socket_count(team=T2)}
            return all(rtm.values()) and sim.socket_count(app=APP) > sum(rtm.values())

        return check

    # -- traffic -------------------------------------------------------------------------------

    async def traffic(self, sim: GridSimulator, chaos: Chaos) -> None:
        kinds = chaos.schedule(int(self.seconds / self.fault_every))
        start = time.monotonic()
        next_fault = start + self.fault_every
        n = 0
        while (now := time.monotonic()) < start + self.seconds:
            if now >= next_fault and kinds:
                # the next applicable kind; one that must wait (a restart pending) keeps its turn
                ready = [i for i in range(len(kinds) - 1, -1, -1) if chaos.applicable(kinds[i])]
                if ready:
                    await chaos.fire(kinds.pop(ready[0]))
                next_fault = now + self.rng.uniform(0.5, 1.5) * self.fault_every
            await self.send(sim, self.rng.choice(sorted(CONVERSATIONS)))
            n += 1
            await asyncio.sleep(max(0.0, start + n / self.rate - time.monotonic()))

    async def send(self, sim: GridSimulator, channel: str) -> None:
        conv = sim.topology.conversation_by_id[channel]
        authors = [u for u in CONVERSATIONS[channel] if u in conv.members]
        if not authors:  # churn took them all out for now: write elsewhere
            channel, conv = "C0ONE0001", sim.topology.conversation_by_id["C0ONE0001"]
            authors = list(CONVERSATIONS[channel])
        uninstalled = self.chaos.uninstalled if self.chaos is not None else set()
        readers = frozenset(t for t in conv.bot_teams if t in conv.teams and t not in uninstalled)
        n = len(self.sent)
        text = f"s{self.seed}-{n}"
        at = time.time()
        ts = await sim.post_message(user=self.rng.choice(authors), channel=channel, text=f"echo {text}")
        self.sent.append(Sent(n, channel, ts, text, at, readers))

    async def _burst(self, sim: GridSimulator, channel: str, count: int) -> None:
        for _ in range(count):
            await self.send(sim, channel)

    async def _settle(self, sim: GridSimulator, quiet: float = 5.0, limit: float = 60.0) -> None:
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

    # -- the verdict ---------------------------------------------------------------------------

    def _judge(self, sim: GridSimulator, chaos: Chaos) -> None:
        r = self.report
        seen = Observed(
            replies={},
            copies={},
            unacked={},
            decided={},
            kills=list(chaos.record.kills),
            serves={name: frozenset(teams) for name, teams in PROCESSES.items()},
            outages=list(chaos.record.outages),
            reinstalls=[],
            uninstalls=list(chaos.record.uninstalls),
            leaves=list(chaos.record.leaves),
        )
        for log in (sim.posted, sim.deliveries, sim.envelopes_sent, sim.calls):
            if log.first > 0:
                r.problems.append(f"the simulator's log dropped {log.first} records: raise keep")
        for post in sim.posted:
            seen.replies.setdefault((post.channel, post.text), []).append(post.time)
        for d in sim.deliveries:
            if d.channel is not None and d.ts is not None:
                seen.copies.setdefault((d.channel, d.ts), set()).add(d.team)
        acked = {a.event_id for a in sim.acks if a.counted}
        for e in sim.envelopes_sent:
            event, auths = e.payload.get("event", {}), e.payload.get("authorizations") or [{}]
            if event.get("ts"):
                key = (str(event.get("channel")), str(event.get("ts")))
                target = seen.copies if e.event_id in acked else seen.unacked
                target.setdefault(key, set()).add(str(auths[0].get("team_id")))
        for call in sim.calls:
            if call.method == "chat.postMessage" and call.status == 429:
                seen.limited.add((str(call.args.get("channel")), str(call.args.get("text"))))
        r.limited = self.limits.limited
        r.lagged = sum(1 for i in sim.injected if i.kind == "lag")
        r.doubled = sum(1 for i in sim.injected if i.kind == "duplicate")
        connected: dict[tuple[str, str], list[float]] = {}  # (process, team) -> connected at
        links: Counter[tuple[str, str]] = Counter()
        for proc in self.procs.values():
            for inc, item in proc.log_events():
                event = item.get("event")
                if event == "event.decided" and item.get("decision") in DECIDED:
                    killed = Kill(proc.name, inc.killed) if inc.killed is not None else None
                    key = (str(item.get("channel")), str(item.get("ts")))
                    seen.decided.setdefault(key, []).append(Decided(str(item.get("handled_by")), killed))
                    r.rescued += item.get("decision") == "rescued"
                elif event == "team.state" and item.get("state") == "connected":
                    connected.setdefault((proc.name, str(item.get("team_id"))), []).append(_wall(item))
                elif event == "link.connected":
                    links[(str(inc.log_path), str(item.get("link")))] += 1
                elif event == "election.moved":
                    r.moves[str(item.get("reason"))] += 1
                elif event == "store.unavailable":
                    r.store_unavailable += 1
                elif event == "event.dropped":
                    r.events_dropped += 1
        r.reconnects = sum(n - 1 for n in links.values())
        for team, at in chaos.record.reinstalls:
            # served again: some process connected it over each transport that serves it
            groups: dict[str, list[str]] = {}
            for name, teams in PROCESSES.items():
                if team in teams:
                    groups.setdefault(teams[team], []).append(name)
            back = [
                min([t for n in names for t in connected.get((n, team), []) if t >= at], default=at + 30.0)
                for names in groups.values()
            ]
            seen.reinstalls.append(Reinstall(team, at, max(back, default=at + 30.0)))
        r.verdict = classify(self.sent, seen, WINDOWS)


async def run_soak(
    seconds: float,
    seed: int,
    workdir: Path,
    *,
    rate: float = 8.0,
    fault_every: float = 2.5,
) -> SoakReport:
    """Run one soak; ``workdir`` receives the configs, the Redis AOF and every process log."""
    return await Soak(seconds, seed, workdir, rate=rate, fault_every=fault_every).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=8.0, help="user messages per second")
    parser.add_argument("--fault-every", type=float, default=3.0, help="mean seconds between faults")
    parser.add_argument("--keep", default=None, help="keep configs and logs in this folder")
    parser.add_argument("--explain", type=int, default=10, help="list this many excuses, each explained")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gridbot-soak-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(
            run_soak(args.minutes * 60, args.seed, workdir, rate=args.rate, fault_every=args.fault_every)
        )
    report.explain = args.explain
    print("\n".join(report.lines()), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
