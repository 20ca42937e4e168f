"""The election follows the facts at once, end to end: real sockets to the simulator, real Redis.

``standby_grace`` is 30 s in every test: an answer that had to wait it out would time the test
out, so "answered" means "answered at the speed of any other message". The simulator sends the
lifecycle events here with ``send_event`` (it does not yet change its own membership when it
does: a team that "left" still receives copies, which is harsher than Slack, not kinder). Shapes:
``/work/shared/reference/slack-protocol-notes.md`` section A.
"""

from __future__ import annotations

from gridtest import SHARED, T1, T2, T3, USERS, connected, eventually, grid_config, settled, texts, wait_until

from gridbot.runtime import Runtime
from gridbot.store import Election, Store
from gridbot.team import TeamState
from gridbot.testing import GridSimulator

SLOW_GRACE = 30.0


async def moved(store: Store, team: str, reason: str) -> Election | None:
    election = await store.election(SHARED)
    return election if election is not None and (election.team, election.reason) == (team, reason) else None


async def gone(store: Store, team: str) -> bool | None:
    return True if not await store.alive([team]) else None


async def test_our_bot_leaving_a_channel_moves_its_election_at_once(
    redis_url: str, redis_prefix: str
) -> None:
    async with GridSimulator(seed=31) as sim:
        config = grid_config(
            sim,
            {T1: "rtm", T2: "rtm"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=SLOW_GRACE,
        )
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the host answers")

            await sim.send_event({"type": "channel_left", "channel": SHARED}, team=T1)
            election = await eventually(lambda: moved(rt.store, T2, "channel_left"), 5)
            assert T1 not in election.candidates
            await sim.post_message(user=USERS[T1], channel=SHARED, text="echo after")
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
            await wait_until(lambda: len(sim.posted) == 3, 10, "answers after the move")
            await settled(rt)
            assert [p.team_id for p in sim.posted[1:]] == [T2, T2]
            assert texts(sim) == ["after", "before", "marker"]


async def test_a_revoked_team_gives_up_its_heartbeat_and_its_elections_at_once(
    redis_url: str, redis_prefix: str
) -> None:
    """The heartbeat's TTL is 6 s: only the release explains it going within a second or so."""
    async with GridSimulator(seed=32) as sim:
        config = grid_config(
            sim,
            {T1: "rtm", T2: "rtm"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=SLOW_GRACE,
            lease_ttl=6.0,
        )
        async with Runtime(config) as rt:
            assert rt.supervisor is not None
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the host answers")
            assert await rt.store.alive([T1])

            await sim.revoke_token(config.teams[0].bot_token.get())
            team1 = rt.supervisor.team(T1)
            assert team1 is not None
            await wait_until(lambda: team1.state == TeamState.STOPPED, 5, "T1 stopped")
            await eventually(lambda: gone(rt.store, T1), 1.5)
            await eventually(lambda: moved(rt.store, T2, "team_stopped"), 1.5)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo after")
            await wait_until(lambda: len(sim.posted) == 2, 10, "the answer after the move")
            assert sim.posted[1].team_id == T2


async def test_a_standby_copy_is_answered_at_once_when_the_responsible_heartbeat_has_lapsed(
    redis_url: str, redis_prefix: str
) -> None:
    """T1's socket is down and refused: its heartbeat lapses after ``lease_ttl`` (1.5 s). A message
    after that is answered by T2 without waiting the (30 s) grace, and the election moves."""
    async with GridSimulator(seed=33) as sim:
        config = grid_config(
            sim,
            {T1: "rtm", T2: "rtm"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=SLOW_GRACE,
            lease_ttl=1.5,
        )
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: len(sim.posted) == 1, 10, "the first answer")
            sim.fail_connect(T1, error="ratelimited", status=429, retry_after=60)
            await sim.drop_sockets(team=T1)
            await eventually(lambda: gone(rt.store, T1), 10)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo lapsed")
            await wait_until(lambda: len(sim.posted) == 2, 10, "answered without the grace")
            assert sim.posted[1].team_id == T2
            await eventually(lambda: moved(rt.store, T2, "heartbeat_lapsed"), 5)
            assert rt.elector is not None and rt.elector.takeovers == 1


async def test_app_uninstalled_over_socket_mode_stops_the_team_and_moves_its_elections(
    redis_url: str, redis_prefix: str
) -> None:
    """``app_uninstalled`` is an Events API event: one envelope, for the installation concerned."""
    async with GridSimulator(seed=34) as sim:
        config = grid_config(
            sim,
            {T1: "socket_mode", T2: "socket_mode"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=SLOW_GRACE,
            lease_ttl=6.0,
        )
        async with Runtime(config) as rt:
            assert rt.supervisor is not None
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the host answers")
            await sim.send_event({"type": "app_uninstalled"}, team=T1)
            team1 = rt.supervisor.team(T1)
            assert team1 is not None
            await wait_until(lambda: team1.state == TeamState.STOPPED, 5, "T1 stopped")
            assert team1.error == "app_uninstalled"
            await eventually(lambda: gone(rt.store, T1), 1.5)
            await eventually(lambda: moved(rt.store, T2, "app_uninstalled"), 1.5)
            team2 = rt.supervisor.team(T2)
            assert team2 is not None and team2.state == TeamState.CONNECTED  # the app's socket lives on
            # T2's copies are handled: the one app socket still carries the other installation
            await sim.post_message(user=USERS[T2], channel="G0TWOPRIV", text="echo still here")
            await wait_until(lambda: [p.team_id for p in sim.posted][1:] == [T2], 10, "T2 answers")
