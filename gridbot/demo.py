"""``gridbot demo``: the real runtime on the built-in Enterprise Grid simulator, narrated.

The guide's org: three teams, the app installed on Team 1 and Team 2, a channel shared by all
three and a DM across teams. Users of every team talk while the demo injects faults (a garbage
frame, Team 1's socket cut with its reconnects refused, so Team 2 takes over); then an org admin
approves an app request with a button (the app over Socket Mode, part 6). Each message is
printed with how many deliveries it got, which team answered and the reply; the summary says
whether every message got exactly one reply, and the exit code follows it (and the approval).

``gridbot demo --http`` runs the three transports side by side instead: Team One over RTM, Team
Two over Socket Mode and Team Three over the Events API (HTTP), each its own app. The simulator
delivers Team Three's copy of each message to gridbot's request URL as Slack does: signed, and
retried until acknowledged.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from gridbot.runtime import Runtime
from gridbot.store import RedisStore, StoreUnavailable
from gridbot.storecheck import HINTS, location, reason
from gridbot.team import TeamState
from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for

T1, T2, T3 = "T0TEAM001", "T0TEAM002", "T0TEAM003"
SHARED, DM, ADMINS = "C0SHARED1", "D0CAROLDM", "C0ADMINS1"


@dataclass
class Line:
    user: str
    channel: str
    text: str


@dataclass
class Tally:
    messages: int = 0
    deliveries: int = 0
    replies: int = 0
    exact: int = 0


class Demo:
    def __init__(self, sim: GridSimulator, rt: Runtime, out: TextIO) -> None:
        self.sim = sim
        self.rt = rt
        self.out = out
        self.tally = Tally()
        self.names = {u.id: f"{u.name} ({self._team_name(u.home_team)})" for u in sim.topology.users}

    def _team_name(self, team: str) -> str:
        return next((t.name for t in self.sim.topology.teams if t.id == team), team)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def until(self, pred: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def message(self, line: Line) -> None:
        expected = line.text.removeprefix("echo ")
        before = len(self.sim.posted)
        ts = await self.sim.post_message(user=line.user, channel=line.channel, text=line.text)
        await self.until(lambda: any(p.text == expected for p in self.sim.posted[before:]), 10)
        await self.settle()
        replies = [p for p in self.sim.posted if p.text == expected]
        deliveries = sum(1 for d in self.sim.deliveries if d.channel == line.channel and d.ts == ts)
        self.tally.messages += 1
        self.tally.deliveries += deliveries
        self.tally.replies += len(replies)
        self.tally.exact += len(replies) == 1
        where = "#shared-all" if line.channel == SHARED else "DM"
        answer = (
            f'{replies[0].team_id} answered "{replies[0].text}"'
            if len(replies) == 1
            else f"{len(replies)} replies (!)"
        )
        self.say(
            f"  {where:<11} {self.names[line.user]:<22} {line.text!r:<34} "
            f"{deliveries} deliver{'y' if deliveries == 1 else 'ies'} -> {answer}"
        )

    async def settle(self) -> None:
        dedup, dispatcher = self.rt.dedup, self.rt.dispatcher
        assert dedup is not None and dispatcher is not None
        await self.until(lambda: dedup.backlog == 0 and dispatcher.running == 0, 10)

    def connected(self, team: str) -> bool:
        assert self.rt.supervisor is not None
        found = self.rt.supervisor.team(team)
        return found is not None and found.state == TeamState.CONNECTED

    async def run(self) -> bool:
        sim = self.sim
        alice, bob, carol = "W0ALICE01", "W0BOB0001", "W0CAROL01"
        self.say("gridbot demo: the Enterprise Grid guide's org on the built-in simulator")
        self.say(f"  simulator {sim.api_url}; store: {type(self.rt.store).__name__}")
        self.say("  app installed on Team One and Team Two (RTM); #shared-all is shared by all three teams")
        ok = await self.until(lambda: self.connected(T1) and self.connected(T2), 15)
        if not ok:
            self.say("  teams did not connect")
            return False
        self.say("\n1. users of every team talk in the shared channel")
        for user, text in (
            (alice, "echo hello from team one"),
            (bob, "echo hi from team two"),
            (carol, "echo team three has no bot of its own"),
        ):
            await self.message(Line(user, SHARED, text))
        self.say("\n2. a user of Team Three writes to the bot across teams")
        await self.message(Line(carol, DM, "echo a DM across the grid"))
        self.say("\n3. a garbage frame on Team One's socket")
        await sim.send_raw("{this is not json", team=T1)
        await sim.send_raw(b"\x00\x01binary", team=T1)
        await self.message(Line(alice, SHARED, "echo still here after garbage"))
        self.say("\n4. Team One's socket is cut and its reconnects are refused (429)")
        sim.fail_connect(T1, error="ratelimited", status=429, retry_after=1)
        await sim.drop_sockets(team=T1)
        await self.until(lambda: not self.connected(T1), 5)
        await self.message(Line(bob, SHARED, "echo while team one is away"))
        await self.heartbeat_lapsed(T1, 10)  # then the next message moves the election
        await self.message(Line(carol, SHARED, "echo team two has taken over"))
        self.say("\n5. Team One comes back: the channel keeps its new responsible team")
        sim.clear_faults()
        await self.until(lambda: self.connected(T1), 15)
        await self.message(Line(alice, SHARED, "echo team one is back"))
        await self.message(Line(bob, SHARED, "echo echo no loops"))
        return self.summary()

    def _takeovers(self) -> int:
        return self.rt.elector.takeovers if self.rt.elector else 0

    async def heartbeat_lapsed(self, team: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while await self.rt.store.alive([team]) and time.monotonic() < deadline:  # noqa: ASYNC110 (remote state)
            await asyncio.sleep(0.05)

    def summary(self) -> bool:
        t = self.tally
        assert self.rt.dedup is not None
        c = self.rt.dedup.counters
        exactly_once = t.exact == t.messages and len(self.sim.posted) == t.replies
        self.say("\nsummary")
        self.say(f"  messages              {t.messages}")
        self.say(f"  deliveries            {t.deliveries}")
        self.say(
            f"  duplicates suppressed {c.duplicate}  (standby copies held: {c.standby}, rescued: {c.rescued})"
        )
        self.say(f"  own bot messages      {c.own_message}  (never dispatched)")
        self.say(f"  replies               {len(self.sim.posted)}")
        self.say(f"  takeovers             {self._takeovers()}")
        self.say(f"  exactly once          {'yes' if exactly_once else 'NO'}")
        return exactly_once


async def store_problem(redis_url: str) -> str | None:
    """Why the demo cannot use ``redis_url``, in one line; None if Redis answers."""
    try:
        store = RedisStore.from_url(redis_url)
    except ValueError as exc:
        return f"gridbot demo: {exc}"
    try:
        await store.ping()
    except StoreUnavailable as exc:
        why = reason(exc)
        return (
            f"gridbot demo: the store at {location(redis_url)} does not answer ({why}: {HINTS[why]}); "
            "without --redis the demo uses the in-memory store"
        )
    finally:
        await store.close()
    return None


async def run_demo(*, redis_url: str | None = None, out: TextIO | None = None, http: bool = False) -> int:
    """Run the scripted demo; 0 if every message got exactly one reply, 1 otherwise (also when
    ``redis_url`` does not answer: one line says why, on stderr)."""
    stream = out or sys.stdout
    problem = await store_problem(redis_url) if redis_url else None
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    if http:
        from gridbot.demo_http import run_http_demo

        return await run_http_demo(redis_url=redis_url, out=stream)
    async with GridSimulator(seed=42) as sim:
        prefix = f"gridbot-demo:{uuid.uuid4().hex[:8]}"
        config = config_for(sim, {T1: "rtm", T2: "rtm"}, redis_url=redis_url, key_prefix=prefix)
        async with Runtime(config) as rt:
            ok = await Demo(sim, rt, stream).run()
            if redis_url:
                await rt.store.wipe()
        ok = await approve_with_a_button(sim, stream, redis_url) and ok
    return 0 if ok else 1


async def approve_with_a_button(sim: GridSimulator, out: TextIO, redis_url: str | None) -> bool:
    """Part 6: the app is served over Socket Mode with app_approvals; an app request is posted
    with buttons, an org admin clicks Approve, and the message shows the outcome in place."""
    say = functools.partial(print, file=out, flush=True)
    say("\n6. an org admin approves an app request with a button (Socket Mode, app_approvals)")
    config = config_for(
        sim,
        {T1: "socket_mode", T2: "socket_mode"},
        redis_url=redis_url,
        key_prefix=f"gridbot-demo:{uuid.uuid4().hex[:8]}",
        plugins=("app_approvals",),
        plugin_settings={"app_approvals": {"admin_channel": ADMINS, "user_token": "xoxp-sim-dave"}},
    )
    request = sim.topology.app_requests[0]
    requester = sim.topology.user_by_id[request.user]
    team = sim.topology.team_by_id[request.team]
    event = {
        "type": "app_requested",
        "app_request": {
            "id": request.id,
            "app": {"id": request.app_id, "name": request.app_name},
            "user": {"id": requester.id, "name": requester.name},
            "team": {"id": team.id, "name": team.name, "domain": team.domain},
            "enterprise": {"id": sim.topology.enterprise.id, "name": sim.topology.enterprise.name},
            "scopes": [{"name": scope} for scope in request.scopes],
        },
    }
    async with Runtime(config) as rt:
        supervisor = rt.supervisor
        assert supervisor is not None
        if not await _until(lambda: len(supervisor.connected()) == 2, 15):
            say("  the app's sockets did not connect")
            return False
        before = len(sim.posted)
        await sim.send_event(event, team=T1)
        if not await _until(lambda: any(p.channel == ADMINS for p in sim.posted[before:]), 10):
            say("  the request was not posted")
            return False
        post = next(p for p in sim.posted[before:] if p.channel == ADMINS)
        say(f"  #app-approvals  {requester.name} ({team.name}) asks for {request.app_name}, with buttons")
        sent = await sim.interactivity.click("W0DAVE001", ADMINS, post.ts, "app_approvals:approve:team")
        say(f"  dave clicks 'Approve for team {team.id}': acked in {sent.seconds * 1000:.0f} ms")
        approved = await _until(
            lambda: (sim.message(ADMINS, post.ts) or {}).get("text", "").startswith("✅"), 10
        )
        shown = (sim.message(ADMINS, post.ts) or {}).get("text", "")
        say(f"  the message now reads: {shown.split(' on <!date')[0]}")
        decided = sim.admin.resolutions.get((team.id, request.app_id))
        say(f"  Slack's admin API: {request.app_name} is {decided or 'undecided'} for {team.name}")
        return sent.acked and approved and decided == "approved"


async def _until(pred: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True
