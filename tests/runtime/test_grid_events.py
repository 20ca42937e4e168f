"""Slack's connection and lifecycle events, end to end: real sockets to the simulator, real Redis.

Each test drives the simulator the way Slack behaves (``/work/shared/reference/
slack-protocol-notes.md`` sections C and H) and checks what a user would notice: every message
answered once, no gap while sockets are replaced, a paused team coming back, a dead one leaving
the others answering. Negative checks are taken after a marker message was answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from gridtest import (
    SHARED,
    T1,
    T2,
    T3,
    USERS,
    connected,
    eventually,
    grid_config,
    log_lines,
    settled,
    texts,
    wait_until,
)
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.runtime import Runtime
from gridbot.store import Election
from gridbot.team import TeamState
from gridbot.testing import GridSimulator, Limit, RateLimits

APP = "A0GRIDBOT1"
PRIVATE2 = "G0TWOPRIV"  # Team 2 only: nobody else can answer there


@pytest.mark.parametrize("reason", ["refresh_requested", "warning"])
async def test_two_sockets_survive_a_disconnect_notice_with_no_gap_and_no_double_answer(
    redis_url: str, redis_prefix: str, reason: str
) -> None:
    """``connections = 2``. Notes C: ``refresh_requested`` closes a socket shortly, ``warning`` in
    about 10 s (1 s here, ``time_scale=10``), each sent to every socket of the app. Messages keep
    coming; the app always has a socket open, and each message is answered once."""
    async with GridSimulator(seed=41, time_scale=10, close_delay=0.5) as sim:
        base = grid_config(sim, {T1: "socket_mode", T2: "socket_mode"}, redis_url=redis_url, key_prefix=redis_prefix)
        config = dataclasses.replace(base, teams=tuple(dataclasses.replace(t, connections=2) for t in base.teams))
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2], 20)
            await wait_until(lambda: sim.socket_count(app=APP) == 2, 10, "two sockets")
            fewest = [2]

            async def sample() -> None:
                while True:
                    fewest[0] = min(fewest[0], sim.socket_count(app=APP))
                    await asyncio.sleep(0.005)

            sampler = asyncio.create_task(sample(), name="test:socket-sampler")
            try:
                sent = []
                for n in range(30):
                    if n == 5:
                        await sim.send_disconnect(APP, reason)
                    sent.append(f"m{n}")
                    await sim.post_message(user=USERS[T3], channel=SHARED, text=f"echo m{n}")
                    await asyncio.sleep(0.1)  # 3 s in all: past the warned sockets' close
                await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
                await wait_until(lambda: "marker" in texts(sim), 10, "the marker answered")
                await settled(rt)
            finally:
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
            assert texts(sim) == sorted([*sent, "marker"])  # every one answered, none twice
            assert fewest[0] >= 1, "the app was left without a socket"
            await wait_until(lambda: sim.socket_count(app=APP) == 2, 10, "both slots open again")


async def test_too_many_websockets_backs_off_instead_of_reconnecting_at_once(
    redis_url: str, redis_prefix: str
) -> None:
    """Notes C: ``too_many_websockets`` means the app is over its socket cap: reconnecting at once
    would meet it again. The link waits a long backoff; the app's other socket keeps serving."""
    async with GridSimulator(seed=42) as sim:
        base = grid_config(sim, {T1: "socket_mode", T2: "socket_mode"}, redis_url=redis_url, key_prefix=redis_prefix)
        config = dataclasses.replace(base, teams=tuple(dataclasses.replace(t, connections=2) for t in base.teams))
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2], 20)
            await wait_until(lambda: sim.socket_count(app=APP) == 2, 10, "two sockets")
            opened = len(sim.calls_to("apps.connections.open"))
            await sim.send_disconnect(APP, "too_many_websockets")
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo during")
            await asyncio.sleep(0)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
            await wait_until(lambda: texts(sim) == ["during", "marker"], 15, "answered once a socket is back")
            # No stampede: at most one new open per slot in the time the answers took.
            assert len(sim.calls_to("apps.connections.open")) - opened <= 2


@pytest.mark.parametrize("error", ["team_added_to_org", "org_login_required"])
async def test_a_grid_migration_pauses_the_team_and_it_resumes_when_it_ends(
    redis_url: str, redis_prefix: str, error: str
) -> None:
    """Notes H: while a workspace migrates into the org its calls answer ``team_added_to_org``
    (or ``org_login_required``): pause and re-probe, do not stop. T2's private channel is answered
    again once the migration ends; the shared channel is answered by T1 meanwhile."""
    async with GridSimulator(seed=43) as sim:
        config = grid_config(
            sim,
            {T1: "rtm", T2: "rtm"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            paused_probe_interval=0.5,
        )
        async with Runtime(config) as rt:
            assert rt.supervisor is not None
            await connected(rt, sim, [T1, T2], 20)
            team2 = rt.supervisor.team(T2)
            assert team2 is not None
            await sim.org.start_migration(T2, error)
            await sim.drop_sockets(team=T2)  # the reconnect meets the migration
            await wait_until(lambda: team2.state == TeamState.PAUSED, 10, "T2 paused")
            assert team2.error == error
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo shared")
            await wait_until(lambda: texts(sim) == ["shared"], 10, "T1 answers the shared channel")
            await sim.org.finish_migration(T2)
            await wait_until(lambda: team2.state == TeamState.CONNECTED, 10, "T2 back")
            await sim.post_message(user=USERS[T2], channel=PRIVATE2, text="echo private")
            await wait_until(lambda: "private" in texts(sim), 10, "T2 answers again")
            assert [p.team_id for p in sim.posted if p.text == "private"] == [T2]


async def test_account_inactive_stops_the_team_and_its_elections_move(redis_url: str, redis_prefix: str) -> None:
    """Notes H: ``account_inactive`` is a dead token like ``token_revoked``: stop the team (no
    reconnect loop), give up its heartbeat, move its elections; the other team answers."""
    async with GridSimulator(seed=44) as sim:
        config = grid_config(
            sim,
            {T1: "rtm", T2: "rtm"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=30.0,
            lease_ttl=6.0,
        )
        async with Runtime(config) as rt:
            assert rt.supervisor is not None
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the host answers")
            sim.fail_connect(T1, "account_inactive", 200)
            await sim.drop_sockets(team=T1)
            team1 = rt.supervisor.team(T1)
            assert team1 is not None
            await wait_until(lambda: team1.state == TeamState.STOPPED, 10, "T1 stopped")
            assert team1.error == "account_inactive"

            async def moved() -> Election | None:
                election = await rt.store.election(SHARED)
                return election if election is not None and election.team == T2 else None

            election = await eventually(moved, 2)
            assert election.reason == "team_stopped"
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo after")
            await wait_until(lambda: len(sim.posted) == 2, 10, "T2 answers at once")
            assert sim.posted[1].team_id == T2
            connects = len(sim.calls_to("rtm.connect"))
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
            await wait_until(lambda: len(sim.posted) == 3, 10, "the marker answered")
            await settled(rt)
            assert len(sim.calls_to("rtm.connect")) == connects  # no reconnect loop on a dead account


async def test_a_429_on_users_info_makes_the_answer_late_not_lost(redis_url: str, redis_prefix: str) -> None:
    """Notes E: every method has its budget; here ``users.info`` allows one call a second. Two
    lookups at once: the second meets ``429`` + ``Retry-After``, waits it out, and is answered."""
    limits = RateLimits(overrides={"users.info": Limit(per_minute=60, burst=1)})
    async with GridSimulator(seed=45, rate_limits=limits) as sim:
        config = grid_config(
            sim,
            {T1: "rtm", T2: "rtm"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            plugins=("fixtures.sample_plugins.lookup:plugin",),
        )
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T1], channel=SHARED, text="lookup <@W0CAROL01>")
            await sim.post_message(user=USERS[T1], channel=SHARED, text="lookup <@W0ERIN001>")
            await wait_until(lambda: len(sim.posted) == 2, 10, "both answered")
            await settled(rt)
            assert texts(sim) == ["Carol Chen", "Erin Evans"]  # once each, the second one late
            assert [c.status for c in sim.calls_to("users.info")].count(429) >= 1


async def test_a_429_on_conversations_info_elects_the_team_that_saw_the_event(
    redis_url: str, redis_prefix: str
) -> None:
    """``conversations.info`` rate limited for a minute: the election does not wait (2 s at most,
    ``election.info_failed``); the team that saw the event is elected and the message answered
    once; the conversation is not stuck."""
    limits = RateLimits(overrides={"conversations.info": Limit(per_minute=1, burst=1)})
    async with GridSimulator(seed=46, rate_limits=limits) as sim:
        for token in ("xoxb-sim-T0TEAM001", "xoxb-sim-T0TEAM002"):  # spend both teams' budgets
            await AsyncWebClient(token=token, base_url=sim.api_url).conversations_info(channel=SHARED)
        config = grid_config(sim, {T1: "rtm", T2: "rtm"}, redis_url=redis_url, key_prefix=redis_prefix)
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2], 20)
            with log_lines("info") as lines:
                await sim.post_message(user=USERS[T3], channel=SHARED, text="echo first")
                await wait_until(lambda: texts(sim) == ["first"], 10, "answered despite the 429")
                await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
                await wait_until(lambda: texts(sim) == ["first", "marker"], 10, "the next one too")
                await settled(rt)
            events = [json.loads(line) for line in lines.getvalue().splitlines()]
            failed = [e for e in events if e["event"] == "election.info_failed"]
            assert failed and failed[0]["error"] in ("ratelimited", "timeout")
            election = await rt.store.election(SHARED)
            assert election is not None and election.team == failed[0]["fallback"]
            assert [p.team_id for p in sim.posted] == [election.team] * 2
            assert 429 in [c.status for c in sim.calls_to("conversations.info")]


@pytest.mark.parametrize(("lag", "answered_by"), [(0.2, T1), (1.0, T2)], ids=["before_the_grace", "after_it"])
async def test_the_responsible_copy_arriving_late_is_answered_once_by_whoever_has_it_first(
    redis_url: str, redis_prefix: str, lag: float, answered_by: str
) -> None:
    """T1 is responsible (the host); its copies come ``lag`` s late (``sim.lag``, timing.py's
    race: platform-2026.md "Events API over HTTP"). Within the 0.5 s grace T2's copy waits and
    T1 answers; after it T2 answers and T1's late copy is a duplicate. The election stays: T1's
    heartbeat is up."""
    async with GridSimulator(seed=47) as sim:
        config = grid_config(
            sim, {T1: "rtm", T2: "rtm"}, redis_url=redis_url, key_prefix=redis_prefix, standby_grace=0.5
        )
        async with Runtime(config) as rt:
            assert rt.elector is not None
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo first")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the host answers")
            sim.lag(lag, team=T1, match="echo late")
            for n in range(3):
                await sim.post_message(user=USERS[T3], channel=SHARED, text=f"echo late {n}")
            await wait_until(lambda: len(sim.posted) == 4, 10, "the late ones answered")
            await wait_until(lambda: sim.in_flight == 0, 5, "every late copy written")
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
            await wait_until(lambda: len(sim.posted) == 5, 10, "the marker answered")
            await settled(rt)
            assert texts(sim) == ["first", "late 0", "late 1", "late 2", "marker"]
            assert [p.team_id for p in sim.posted[1:4]] == [answered_by] * 3
            election = await rt.store.election(SHARED)
            assert election is not None and election.team == T1 and rt.elector.takeovers == 0


async def test_a_redelivery_on_the_other_socket_is_not_answered_again(redis_url: str, redis_prefix: str) -> None:
    """Notes C: an envelope is redelivered "possibly on another socket", with its event_id. With
    ``connections = 2`` the redelivery reaches both sockets of the app; the answer stays one."""
    async with GridSimulator(seed=48) as sim:
        base = grid_config(sim, {T1: "socket_mode", T2: "socket_mode"}, redis_url=redis_url, key_prefix=redis_prefix)
        config = dataclasses.replace(base, teams=tuple(dataclasses.replace(t, connections=2) for t in base.teams))
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2], 20)
            await wait_until(lambda: sim.socket_count(app=APP) == 2, 10, "two sockets")
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo once")
            await wait_until(lambda: texts(sim) == ["once"], 10, "answered")
            original = next(e for e in sim.envelopes_sent if e.payload["event"].get("text") == "echo once")
            redelivery = {
                "envelope_id": "redelivered-1",
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 1,
                "retry_reason": "timeout",
                "payload": original.payload,
            }
            assert await sim.send_raw(json.dumps(redelivery), app=APP) == 2
            await wait_until(lambda: sum(a.envelope_id == "redelivered-1" for a in sim.acks) == 2, 5, "acks")
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
            await wait_until(lambda: "marker" in texts(sim), 10, "the marker answered")
            await settled(rt)
            assert texts(sim) == ["marker", "once"]
