"""Sockets drop, teams die, frames are garbage: still exactly once, and the daemon lives on."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

import pytest
from gridtest import (
    SHARED,
    T1,
    T2,
    T3,
    USERS,
    connected,
    converse,
    eventually,
    grid_config,
    separate_apps_topology,
    settled,
    texts,
    wait_until,
)
from structlog.testing import capture_logs

from gridbot.runtime import Runtime
from gridbot.store import Election
from gridbot.team import TeamState
from gridbot.testing import GridSimulator, RateLimits


async def _none_if(alive: Awaitable[set[str]]) -> bool | None:
    return True if not await alive else None


async def _moved_to(rt: Runtime, team: str) -> Election | None:
    election = await rt.store.election(SHARED)
    return election if election is not None and election.team == team else None


async def say(sim: GridSimulator, prefix: str, count: int) -> list[str]:
    return await converse(sim, prefix, count)


async def test_responsible_socket_down_and_refused_then_back(redis_url: str, redis_prefix: str) -> None:
    # About failover and rescue, not Slack's posting limit (25 answers in one channel).
    async with GridSimulator(seed=5, rate_limits=RateLimits(enabled=False)) as sim:
        config = grid_config(sim, {T1: "rtm", T2: "rtm"}, redis_url=redis_url, key_prefix=redis_prefix)
        async with Runtime(config) as rt:
            assert rt.supervisor is not None
            await connected(rt, sim, [T1, T2])
            sent = await say(sim, "before", 5)
            await wait_until(lambda: len(sim.posted) == 5)

            sim.fail_connect(T1, error="ratelimited", status=429, retry_after=0.2)
            await sim.drop_sockets(team=T1)
            team1 = rt.supervisor.team(T1)
            assert team1 is not None
            await wait_until(lambda: team1.state != "connected", what="T1 seen down")
            sent += await say(sim, "down", 5)  # only T2's socket receives these: rescued
            await wait_until(lambda: len(sim.posted) == 10, 15, "answers while T1 is down")
            await eventually(lambda: _none_if(rt.store.alive([T1])), 10)  # T1's heartbeat lapses
            sent += await say(sim, "lapsed", 5)
            await wait_until(lambda: len(sim.posted) == 15, 15, "answers after the heartbeat lapsed")
            # The rescue answers first and moves the election right after (one more round trip).
            election = await eventually(lambda: _moved_to(rt, T2), 5)
            assert election.epoch == 2  # one takeover

            sim.clear_faults()
            await connected(rt, sim, [T1])
            sent += await say(sim, "after", 10)
            await wait_until(lambda: len(sim.posted) == 25, 15, "answers after T1 returned")
            await settled(rt)
            assert texts(sim) == sorted(sent)  # none lost, none twice
            assert {p.team_id for p in sim.posted[15:]} == {T2}  # the new responsible team stays


async def test_stalled_socket_is_replaced_by_the_ping_watchdog() -> None:
    async with GridSimulator() as sim:
        async with Runtime(grid_config(sim, {T1: "rtm"})) as rt:
            await connected(rt, sim, [T1])
            calls_before = len(sim.calls_to("rtm.connect"))
            sim.stall(T1)
            await wait_until(lambda: len(sim.calls_to("rtm.connect")) > calls_before, 10, "reconnect")
            sim.clear_faults()
            await connected(rt, sim, [T1])
            await sim.post_message(user=USERS[T1], channel="C0ONE0001", text="echo alive")
            await wait_until(lambda: texts(sim) == ["alive"])


async def test_goodbye_replaces_the_socket_without_a_gap() -> None:
    """The new socket is open before the old one closes: the team never leaves "connected"."""
    async with GridSimulator(close_delay=5.0) as sim:
        async with Runtime(grid_config(sim, {T1: "rtm"})) as rt:
            assert rt.supervisor is not None
            await connected(rt, sim, [T1])
            team1 = rt.supervisor.team(T1)
            link = next(iter(rt.supervisor.connections.values())).links[0]
            with capture_logs() as events:
                await sim.send_goodbye(T1)
                # The server would hold the old socket for 5 s; we close it as soon as the new one is up.
                await wait_until(
                    lambda: len(sim.calls_to("rtm.connect")) == 2 and sim.socket_count(team=T1) == 1,
                    3,
                    "replaced",
                )
                sent = []
                for n in range(5):
                    await sim.post_message(user=USERS[T1], channel="C0ONE0001", text=f"echo g{n}")
                    sent.append(f"g{n}")
                await wait_until(lambda: len(sim.posted) >= 5)
                await settled(rt)
            assert texts(sim) == sorted(sent)
            assert team1 is not None and team1.state == TeamState.CONNECTED
            assert link.reconnects == 0
            assert [e for e in events if e["event"] == "team.state"] == []  # never left "connected"


async def test_connect_rate_limit_honours_retry_after() -> None:
    async with GridSimulator() as sim:
        sim.fail_connect(T1, error="ratelimited", status=429, retry_after=1.5, times=1)
        async with Runtime(grid_config(sim, {T1: "rtm"})) as rt:
            await connected(rt, sim, [T1])
            attempts = sim.calls_to("rtm.connect")
            assert attempts[0].status == 429 and attempts[1].ok
            assert attempts[1].time - attempts[0].time >= 1.5


async def test_garbage_frames_and_a_revoked_team_leave_the_others_serving() -> None:
    with capture_logs() as events:
        await _garbage_and_revoked(events)


async def _garbage_and_revoked(events: list[dict[str, Any]]) -> None:
    # About hostile frames and a revoked token, not Slack's posting limit.
    async with GridSimulator(seed=2, rate_limits=RateLimits(enabled=False)) as sim:
        async with Runtime(grid_config(sim, {T1: "rtm", T2: "rtm"})) as rt:
            assert rt.supervisor is not None
            await connected(rt, sim, [T1, T2])
            for junk in (
                b"\x00\xffbinary",
                "not json",
                "[]",
                "{}",
                '{"type": "message"}',
                '{"type": "message", "channel": 5, "ts": "1.0"}',
                "x" * (2 << 20),
            ):
                await sim.send_raw(junk, team=T1)
            await sim.revoke_token("xoxb-sim-T0TEAM001")  # the responsible team's token dies
            team1 = rt.supervisor.team(T1)
            assert team1 is not None
            await wait_until(lambda: team1.state == "stopped", 10, "T1 stopped")
            assert team1.error == "token_revoked"
            sent = await say(sim, "still", 6)
            await wait_until(lambda: len(sim.posted) == 6, 15, "T2 answers alone")
            await settled(rt)
            assert texts(sim) == sorted(sent) and {p.team_id for p in sim.posted} == {T2}
            connections = rt.supervisor.connections.values()
            assert sum(lk.frames_dropped for conn in connections for lk in conn.links) >= 7
            stops = [e for e in events if e["event"] == "link.stopped"]
            assert [(e["link"], e["error"]) for e in stops] == [(T1, "token_revoked")]  # one clear event
            dropped = {e["reason"] for e in events if e["event"] == "frame.dropped"}
            assert {"binary", "not_json", "not_an_object", "no_type", "oversized"} <= dropped


async def test_socket_mode_redelivery_is_not_handled_again() -> None:
    async with GridSimulator() as sim:
        async with Runtime(grid_config(sim, {T1: "socket_mode", T2: "socket_mode"})) as rt:
            await connected(rt, sim, [T1, T2])
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo once")
            await wait_until(lambda: len(sim.posted) == 1)
            original = next(e for e in sim.envelopes_sent if e.payload["event"].get("text") == "echo once")
            redelivery = {
                "envelope_id": "redelivered-1",
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 1,
                "retry_reason": "timeout",
                "payload": original.payload,
            }
            await sim.send_raw(json.dumps(redelivery), app=original.app_id)
            await wait_until(lambda: any(a.envelope_id == "redelivered-1" for a in sim.acks), 5, "ack")
            await settled(rt)
            assert texts(sim) == ["once"]
            acked = {a.envelope_id for a in sim.acks}
            assert all(e.envelope_id in acked for e in sim.envelopes_sent)  # every envelope acked
            assert all(e.retry_attempt == 0 for e in sim.envelopes_sent)  # so none redelivered by Slack


@pytest.mark.parametrize(
    "transports",
    [
        {T1: "socket_mode", T2: "socket_mode"},  # one app per team: two copies with different event ids
        {T1: "rtm", T2: "socket_mode"},
    ],
)
async def test_separate_apps_and_mixed_transports_answer_once(
    transports: dict[str, str], redis_url: str, redis_prefix: str
) -> None:
    # About one answer across apps and transports, not Slack's posting limit (30 answers in one channel).
    async with GridSimulator(separate_apps_topology(), seed=9, rate_limits=RateLimits(enabled=False)) as sim:
        config = grid_config(sim, transports, redis_url=redis_url, key_prefix=redis_prefix)
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2])
            sent = await say(sim, "m", 30)
            await wait_until(lambda: len(sim.posted) >= 30, 15)
            await settled(rt)
            assert texts(sim) == sorted(sent)
            assert {p.team_id for p in sim.posted} == {T1}


async def test_link_disabled_stops_that_app_and_says_so() -> None:
    async with GridSimulator(separate_apps_topology()) as sim:
        async with Runtime(grid_config(sim, {T1: "rtm", T2: "socket_mode"})) as rt:
            assert rt.supervisor is not None
            await connected(rt, sim, [T1, T2])
            await sim.send_disconnect("A0APP2", "link_disabled")
            team2 = rt.supervisor.team(T2)
            assert team2 is not None
            await wait_until(lambda: team2.state == "disabled", 5, "T2 disabled")
            opens = len(sim.calls_to("apps.connections.open"))
            await sim.post_message(user=USERS[T1], channel="C0ONE0001", text="echo t1 fine")
            await wait_until(lambda: texts(sim) == ["t1 fine"])
            assert len(sim.calls_to("apps.connections.open")) == opens  # no reconnect attempts
