"""A team stops on what is true now, end to end: real sockets to the simulator, real Redis.

* A late ``app_uninstalled`` / ``tokens_revoked`` (Slack retries Events API deliveries to an app
  whose socket was down, protocol notes A; the simulator stops such retries once the app is
  installed again, an inference documented in ``gridbot/testing/simulator/controls.py``
  ``_authorized_live``) speaks of an installation older than the team's current one. It is
  written here by hand, as Slack's retry would be: the same envelope, the ``event_time`` of
  when the token died (protocol notes D: ``event_time`` is when the event happened).
* A Web API call answered ``token_revoked`` (protocol notes H: the token is dead, "stop the
  team") stops the team even when its process missed ``tokens_revoked``.

``standby_grace`` is 30 s: an answer that had to wait it out would time the test out.
"""

from __future__ import annotations

import json
import time
from typing import Any

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

from gridbot.bots import Bots
from gridbot.dedup.facts import fact_of
from gridbot.events import normalise
from gridbot.runtime import Runtime
from gridbot.store import Election, Store
from gridbot.team import TeamState
from gridbot.testing import GridSimulator
from gridbot.transport.http_apps import JSON, read_payload

SLOW_GRACE = 30.0
APP = "A0GRIDBOT1"


async def moved(store: Store, team: str, reason: str) -> Election | None:
    election = await store.election(SHARED)
    return election if election is not None and (election.team, election.reason) == (team, reason) else None


async def gone(store: Store, team: str) -> bool | None:
    return True if not await store.alive([team]) else None


def late_envelope(sim: GridSimulator, team: str, event: dict[str, Any], event_time: int) -> str:
    """A Socket Mode ``events_api`` envelope for ``team``'s installation of the app, as Slack
    retries it (protocol notes C and D: ``authorizations[0]`` names the installation)."""
    enterprise = sim.topology.enterprise.id
    bot = next(b for b in sim.topology.bots if b.key == (APP, team))
    payload = {
        "token": "",
        "team_id": team,
        "enterprise_id": enterprise,
        "api_app_id": APP,
        "type": "event_callback",
        "event_id": "EvLATE" + str(event_time),
        "event_time": event_time,
        "event": event,
        "authorizations": [
            {
                "enterprise_id": enterprise,
                "team_id": team,
                "user_id": bot.installation.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    }
    envelope = {
        "envelope_id": f"late-{event_time}",
        "type": "events_api",
        "payload": payload,
        "retry_attempt": 3,
    }
    return json.dumps(envelope)


def lines_of(stream: Any, event: str) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [f for f in found if f.get("event") == event]


async def test_a_late_uninstall_older_than_the_installation_is_ignored_and_a_current_one_is_not(
    redis_url: str, redis_prefix: str
) -> None:
    """An ``app_uninstalled`` and a ``tokens_revoked`` for T1 whose ``event_time`` is an hour
    before T1's token passed ``auth.test`` arrive while T1 is live: each is one
    ``election.stale_fact`` line, and T1 keeps its socket, its heartbeat and its elections (the
    marker is answered by T1). Then Slack uninstalls the app for real: T1 stops and the election
    moves at once with that reason."""
    async with GridSimulator(seed=41) as sim:
        config = grid_config(
            sim,
            {T1: "socket_mode", T2: "socket_mode"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=SLOW_GRACE,
            lease_ttl=6.0,
        )
        async with Runtime(config) as rt:
            assert rt.supervisor is not None and rt.elector is not None
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the host answers")
            bot = next(b for b in sim.topology.bots if b.key == (APP, T1))
            past = int(time.time()) - 3600
            with log_lines("info") as lines:
                await sim.send_raw(late_envelope(sim, T1, {"type": "app_uninstalled"}, past), app=APP)
                revoked = {"type": "tokens_revoked", "tokens": {"bot": [bot.installation.bot_user_id]}}
                await sim.send_raw(late_envelope(sim, T1, revoked, past + 1), app=APP)
                await wait_until(lambda: len(lines_of(lines, "election.stale_fact")) == 2, 5, "both ignored")
                await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
                await wait_until(lambda: len(sim.posted) == 2, 10, "the marker answered")
                await settled(rt, 5)
            stale = lines_of(lines, "election.stale_fact")
            assert [(s["team_id"], s["reason"], s["decision"]) for s in stale] == [
                (T1, "app_uninstalled", "ignored"),
                (T1, "tokens_revoked", "ignored"),
            ]
            assert all(s["event_time"] < s["authenticated_at"] for s in stale)
            assert sim.posted[1].team_id == T1
            team1 = rt.supervisor.team(T1)
            assert team1 is not None and team1.state == TeamState.CONNECTED
            assert await rt.store.alive([T1]) and rt.elector.moves == {}
            assert not lines_of(lines, "team.stopped")

            await sim.uninstall(APP, T1)  # now, for real: the current event still stops the team
            await wait_until(lambda: team1.state == TeamState.STOPPED, 5, "T1 stopped")
            await eventually(lambda: gone(rt.store, T1), 1.5)
            await eventually(lambda: moved(rt.store, T2, "app_uninstalled"), 1.5)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo after")
            await wait_until(lambda: len(sim.posted) == 3, 10, "answered after the move")
            assert sim.posted[2].team_id == T2


async def test_a_call_answered_token_revoked_stops_the_team_once_and_moves_its_elections(
    redis_url: str, redis_prefix: str
) -> None:
    """T1's process misses ``tokens_revoked`` (its delivery held back: the socket that should
    have carried it was down) while two of T1's replies are on their way (``chat.postMessage``
    answers 3 s late). Both are answered ``token_revoked``: T1 is stopped once (one
    ``team.token_dead``, one ``team.stopped``), gives up its heartbeat (TTL 6 s) and its
    election moves to T2 at once with that reason; the next message is answered by T2 without
    waiting the 30 s grace."""
    async with GridSimulator(seed=42) as sim:
        config = grid_config(
            sim,
            {T1: "socket_mode", T2: "socket_mode"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=SLOW_GRACE,
            lease_ttl=6.0,
        )
        async with Runtime(config) as rt:
            assert rt.supervisor is not None and rt.dispatcher is not None
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the host answers")
            team1 = rt.supervisor.team(T1)
            assert team1 is not None

            with log_lines("info") as lines:
                sim.set_latency(3.0, ["chat.postMessage"])
                await sim.post_message(user=USERS[T3], channel=SHARED, text="echo doomed one")
                await sim.post_message(user=USERS[T3], channel=SHARED, text="echo doomed two")
                await wait_until(lambda: rt.dispatcher.counters.started == 3, 2, "both replies on their way")
                sim.lag(600, team=T1)  # tokens_revoked is not heard
                await sim.revoke_token(config.teams[0].bot_token.get())
                await wait_until(lambda: team1.state == TeamState.STOPPED, 6, "T1 stopped")
                assert team1.error == "token_revoked"
                await eventually(lambda: gone(rt.store, T1), 1.5)
                await eventually(lambda: moved(rt.store, T2, "token_revoked"), 1.5)
                sim.set_latency(0.0)
                await sim.post_message(user=USERS[T3], channel=SHARED, text="echo after")
                await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
                await wait_until(lambda: texts(sim) == ["after", "before", "marker"], 10, "T2 answers")
                await settled(rt, 5)
            assert [p.team_id for p in sim.posted] == [T1, T2, T2]
            failed = [c for c in sim.calls if c.method == "chat.postMessage" and c.error == "token_revoked"]
            assert len(failed) == 2
            dead = lines_of(lines, "team.token_dead")
            assert [(d["team_id"], d["error"]) for d in dead] == [(T1, "token_revoked")]
            assert len([s for s in lines_of(lines, "team.stopped") if s.get("team_id") == T1]) == 1
            assert "xoxb" not in lines.getvalue()


def test_the_events_api_gives_a_lifecycle_fact_its_event_time_and_other_events_stay_as_sent() -> None:
    """Over HTTP the same envelope field reaches the fact (protocol notes D: ``event_time``), so
    the staleness check above holds for both transports; a message is handed on untouched."""
    body = {"type": "event_callback", "event_id": "Ev1", "event_time": 1_700_000_000, "team_id": T1}
    lifecycle = read_payload(JSON, json.dumps({**body, "event": {"type": "app_uninstalled"}}).encode())
    message = {"type": "message", "channel": SHARED, "ts": "1.000001", "text": "hi"}
    plain = read_payload(JSON, json.dumps({**body, "event": message}).encode())
    event = normalise(lifecycle.frame or {}, team_id=T1, enterprise_id=None, event_id="Ev1")
    fact = fact_of(event, Bots())
    assert fact is not None and (fact.reason, fact.at, fact.stop) == ("app_uninstalled", 1_700_000_000, True)
    assert plain.frame == message
