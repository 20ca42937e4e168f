"""``gridbot demo --http``: RTM, Socket Mode and the Events API over HTTP in one org, narrated.

The guide's org with one app per team: Team One's classic app over RTM, Team Two's over Socket
Mode, and Team Three's over HTTP (installed there, and a member of the shared channel and of
Team Three's own channel). The simulator delivers every copy, Team Three's as Slack does over
HTTP: it verifies gridbot's request URL (``url_verification``), then signs each event with the
app's signing secret, posts it and retries what was not acknowledged. The script: the three
teams in the shared channel (three copies, one reply), Team Three's channel (answered over HTTP),
an ack lost on its way back (Slack retries after its 3 s deadline: a duplicate), a message Slack
delivers twice with two event ids (a duplicate), a forged request (401).
"""

from __future__ import annotations

import asyncio
import time
import tomllib
import uuid
from collections.abc import Callable
from importlib.resources import files
from typing import Any, TextIO

import aiohttp
from slack_sdk.signature import SignatureVerifier

from gridbot.config import EventsConfig, TeamConfig, replace
from gridbot.runtime import Runtime
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for
from gridbot.testing.simulator import HttpDelivery
from gridbot.testing.simulator.model import Topology, topology_from_dict

T1, T2, T3 = "T0TEAM001", "T0TEAM002", "T0TEAM003"
SHARED, THREE = "C0SHARED1", "C0THREE01"
HTTP_APP = "A0GRIDHTTP"
SIGNING_SECRET = "demo-signing-secret-0123456789ab"  # the simulator's app only, never a real one


def three_transports() -> Topology:
    """The guide's org, one app per team, Team Three's bot in the shared channel and its own."""
    data: dict[str, Any] = tomllib.loads(
        files("gridbot.testing").joinpath("topologies/three_teams.toml").read_text()
    )
    installs = data["apps"][0]["installations"]
    three = {"team": T3, "bot_token": "xoxb-sim-T0TEAM003", "bot_user_id": "U0BOT0003", "bot_id": "B0BOT0003"}
    data["apps"] = [
        {"id": "A0GRIDRTM1", "name": "gridbot (classic)", "installations": [installs[0]]},
        {
            "id": "A0GRIDSM02",
            "name": "gridbot",
            "app_token": "xapp-sim-A0GRIDSM02",
            "installations": [installs[1]],
        },
        {"id": HTTP_APP, "name": "gridbot (http)", "installations": [three]},
    ]
    for conv in data["conversations"]:
        if conv["id"] == SHARED:
            conv["bot_teams"] = [T1, T2, T3]
    data["conversations"].append(
        {"id": THREE, "name": "team-three-general", "kind": "channel", "teams": [T3], "host_team": T3,
         "members": ["W0CAROL01"], "bot_teams": [T3]}
    )  # fmt: skip
    return topology_from_dict(data)


class HttpDemo:
    def __init__(self, sim: GridSimulator, rt: Runtime, url: str, out: TextIO) -> None:
        self.sim, self.rt, self.url, self.out = sim, rt, url, out
        self.messages = self.exact = 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def until(self, pred: Callable[[], object], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def http_copies(self, ts: str) -> list[HttpDelivery]:
        return [d for d in self.sim.http.deliveries if d.kind == "event_callback" and d.ts == ts]

    async def message(self, user: str, channel: str, text: str, *, copies: int = 1) -> str:
        """A user writes; the simulator delivers over RTM, Socket Mode and HTTP."""
        expected = text.removeprefix("echo ")
        envelopes = len(self.sim.envelopes_sent)
        ts = await self.sim.post_message(user=user, channel=channel, text=text)
        await self.until(lambda: any(p.text == expected for p in self.sim.posted), 10)
        await self.until(lambda: len([d for d in self.http_copies(ts) if d.outcome]) >= copies, 10)
        dedup, dispatcher = self.rt.dedup, self.rt.dispatcher
        assert dedup is not None and dispatcher is not None
        await self.until(lambda: dedup.backlog == 0 and dispatcher.running == 0, 10)
        replies = [p for p in self.sim.posted if p.text == expected]
        rtm = sum(1 for d in self.sim.deliveries if d.channel == channel and d.ts == ts)
        socket_mode = sum(
            1 for e in self.sim.envelopes_sent[envelopes:] if e.payload.get("event", {}).get("ts") == ts
        )
        http = ", ".join(
            f"{d.attempts[-1].status} in {d.attempts[-1].seconds * 1000:.0f} ms"
            for d in self.http_copies(ts)
            if d.attempts
        )
        self.messages += 1
        self.exact += len(replies) == 1
        answer = (
            f'{replies[0].team_id} answered "{expected}"'
            if len(replies) == 1
            else f"{len(replies)} replies (!)"
        )
        self.say(
            f"  {channel:<10} {text!r:<32} RTM {rtm}, Socket Mode {socket_mode}, HTTP {http} -> {answer}"
        )
        return ts

    async def run(self) -> bool:
        self.say("gridbot demo --http: RTM, Socket Mode and the Events API over HTTP in one org")
        self.say("  Team One: RTM (classic app); Team Two: Socket Mode; Team Three: Events API over HTTP")
        sup = self.rt.supervisor
        assert sup is not None
        if not await self.until(lambda: len(sup.connected()) == 3, 15):
            self.say("  teams did not connect")
            return False
        await self.sim.http.subscribe(HTTP_APP, self.url, SIGNING_SECRET)
        self.say(f"  request URL {self.url}: verified by the simulator (url_verification answered)")
        self.say("\n1. users of every team talk in the shared channel: three copies, one reply")
        for user, text in (("W0ALICE01", "echo hello from team one"), ("W0BOB0001", "echo hi from team two"),
                           ("W0CAROL01", "echo team three is here too")):  # fmt: skip
            await self.message(user, SHARED, text)
        self.say("\n2. Team Three's own channel: only the HTTP app hears it, and answers")
        await self.message("W0CAROL01", THREE, "echo answered over http")
        self.say("\n3. gridbot's ack is lost on the way: Slack waits out its 3 s and retries the same event")
        self.sim.http.lose_answers(HTTP_APP, times=1)
        ts = await self.message("W0CAROL01", THREE, "echo acked, ack lost")
        [retried] = self.http_copies(ts)
        again = sum(p.text == "acked, ack lost" for p in self.sim.posted)
        reasons = [a.retry_reason or "first" for a in retried.attempts]
        self.say(f"  attempts: {', '.join(reasons)}; the retry was answered 200; replies: {again}")
        self.say(
            "\n4. Slack delivers a message twice, 0.3 s apart, each with its own event_id (seen in the field)"
        )
        self.sim.duplicate(app=HTTP_APP, after=0.3, times=1)
        await self.message("W0CAROL01", THREE, "echo said once, delivered twice", copies=2)
        twice = sum(p.text == "said once, delivered twice" for p in self.sim.posted)
        self.say(f"  both acknowledged; replies to the twice-delivered message: {twice}")
        self.say("\n5. a request signed with the wrong secret")
        self.say(f"  answered {await self.forged()}; nothing reached a handler")
        return self.summary()

    async def forged(self) -> int:
        """Someone who is not Slack posts to the request URL."""
        body, ts = b'{"type":"event_callback"}', str(int(time.time()))
        signature = SignatureVerifier("not-the-signing-secret-0000").generate_signature(
            timestamp=ts, body=body
        )
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": signature or ""}  # fmt: skip
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=body, headers=headers) as answer,
        ):
            return answer.status

    def summary(self) -> bool:
        events = self.rt.events
        assert events is not None and self.rt.dedup is not None
        answers = ", ".join(
            f"{status} {reason}: {n}" for (status, reason), n in sorted(events.counts.answers.items())
        )
        c = self.sim.http.counts(HTTP_APP)
        ok = self.exact == self.messages and len(self.sim.posted) == self.messages
        self.say("\nsummary")
        self.say(f"  messages              {self.messages}")
        self.say(f"  replies               {len(self.sim.posted)}")
        self.say(f"  duplicates suppressed {self.rt.dedup.counters.duplicate}")
        self.say(f"  HTTP answers          {answers}")
        self.say(
            f"  Slack's side          {c.deliveries} deliveries, {c.acks} acked in time, "
            f"{c.retries} retries, {c.late_acks} late, {c.non_2xx} non-2xx"
        )
        self.say(f"  exactly once          {'yes' if ok else 'NO'}")
        return ok


async def run_http_demo(*, redis_url: str | None, out: TextIO) -> int:
    async with GridSimulator(three_transports(), seed=42) as sim:
        prefix = f"gridbot-demo:{uuid.uuid4().hex[:8]}"
        base = config_for(sim, {T1: "rtm", T2: "socket_mode"}, redis_url=redis_url, key_prefix=prefix)
        http = TeamConfig(
            transport="http", bot_token=Secret("xoxb-sim-T0TEAM003"), signing_secret=Secret(SIGNING_SECRET)
        )
        config = replace(base, teams=(*base.teams, http), events=EventsConfig(port=0))
        async with Runtime(config) as rt:
            assert rt.events is not None
            url = f"http://127.0.0.1:{rt.events.port}{config.events.path}"
            ok = await HttpDemo(sim, rt, url, out).run()
            if redis_url:
                await rt.store.wipe()
    return 0 if ok else 1
