"""The election follows the facts at once, end to end: real sockets to the simulator, real Redis.

``standby_grace`` is 30 s in every test: an answer that had to wait it out would time the test
out, so "answered" means "answered at the speed of any other message", and ``settled(rt, 5)``
means no delivery was parked for the grace. Every change goes through the simulator's own org
API (``sim.org.leave`` / ``join`` / ``unshare``, ``sim.revoke_token``, ``sim.uninstall``), which
changes its membership and sends each member team the events Slack sends for it
(``/work/shared/reference/slack-protocol-notes.md`` sections A and H).
"""

from __future__ import annotations

import pytest
from gridtest import SHARED, T1, T2, T3, USERS, connected, eventually, grid_config, settled, texts, wait_until

from gridbot.runtime import Runtime
from gridbot.store import Election, Store
from gridbot.team import TeamState
from gridbot.testing import GridSimulator
from gridbot.testing.simulator import Conversation

SLOW_GRACE = 30.0
APP = "A0GRIDBOT1"


LEFT = ("channel_left", "member_left_channel")  # whichever of the two facts came first
DAVE = "W0DAVE001"


async def moved(store: Store, team: str, reason: str) -> Election | None:
    return await moved_for(store, team, (reason,))


async def moved_for(
    store: Store, team: str, reasons: tuple[str, ...], channel: str = SHARED
) -> Election | None:
    election = await store.election(channel)
    return election if election is not None and election.team == team and election.reason in reasons else None


async def gone(store: Store, team: str) -> bool | None:
    return True if not await store.alive([team]) else None


@pytest.mark.parametrize("by", [None, DAVE], ids=["leaves", "removed_by_a_user"])
async def test_the_responsible_bot_leaving_while_running_moves_its_election_at_once(
    redis_url: str, redis_prefix: str, by: str | None
) -> None:
    """T1's bot (responsible: the host) leaves the shared channel, or a user removes it, while
    gridbot runs (``sim.org.leave``): ``channel_left`` reaches T1 alone, T2 sees
    ``member_left_channel`` (protocol notes A). The election moves to T2 at once with that reason,
    no heartbeat lapsed, the next message is answered by T2, and the leave itself is decided at
    once: it has no copy on another team to wait the 30 s grace for (it used to be held as a
    standby copy for T2's copy that never comes)."""
    async with GridSimulator(seed=31) as sim:
        config = grid_config(
            sim,
            {T1: "rtm", T2: "rtm"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=SLOW_GRACE,
        )
        async with Runtime(config) as rt:
            assert rt.elector is not None
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the host answers")

            await sim.org.leave(SHARED, team=T1, by=by)
            election = await eventually(lambda: moved_for(rt.store, T2, LEFT), 5)
            assert T1 not in election.candidates
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo after")
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
            await wait_until(lambda: len(sim.posted) == 3, 10, "answers after the move")
            await settled(rt, 5)  # nothing held: the leave was not parked for the grace
            assert [p.team_id for p in sim.posted[1:]] == [T2, T2]
            assert texts(sim) == ["after", "before", "marker"]
            assert "heartbeat_lapsed" not in rt.elector.moves and rt.elector.takeovers == 0


async def test_the_standby_bot_leaving_and_coming_back_leaves_the_election_alone(
    redis_url: str, redis_prefix: str
) -> None:
    """T2's bot (standby) leaves and is invited back while gridbot runs. T1 stays responsible, no
    heartbeat "lapses", and T2 is a candidate again: when T1's bot then leaves, the election
    moves to T2 (it is not cleared for want of a candidate)."""
    async with GridSimulator(seed=35) as sim:
        config = grid_config(
            sim,
            {T1: "rtm", T2: "rtm"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=SLOW_GRACE,
        )
        async with Runtime(config) as rt:
            assert rt.elector is not None
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the host answers")

            await sim.org.leave(SHARED, team=T2)
            await sim.org.join(SHARED, team=T2, inviter=DAVE)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo marker")
            await wait_until(lambda: len(sim.posted) == 2, 10, "the marker answered")
            await settled(rt, 5)  # the leave and the join were decided at once, not held
            election = await rt.store.election(SHARED)
            assert election is not None and (election.team, election.reason) == (T1, "elected")
            assert T2 in election.candidates
            assert rt.elector.moves == {} and rt.elector.takeovers == 0

            await sim.org.leave(SHARED, team=T1)
            await eventually(lambda: moved_for(rt.store, T2, LEFT), 5)
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo after")
            await wait_until(lambda: len(sim.posted) == 3, 10, "the answer after the move")
            assert [p.team_id for p in sim.posted] == [T1, T1, T2]


async def test_a_channel_unshared_from_the_responsible_team_moves_its_election_at_once(
    redis_url: str, redis_prefix: str
) -> None:
    """``channel_unshared`` is Events-API-only (protocol notes A), so over Socket Mode. A channel
    hosted by Team 3 (not installed) elects the lowest team, T1; unsharing T1 moves it to T2."""
    trio = Conversation(
        id="C0TRIO0001",
        name="trio",
        kind="channel",
        teams=(T1, T2, T3),
        host_team=T3,
        members=(USERS[T1], USERS[T2], USERS[T3]),
        bot_teams=(T1, T2),
    )
    async with GridSimulator(seed=36) as sim:
        await sim.org.create_channel(trio)
        config = grid_config(
            sim,
            {T1: "socket_mode", T2: "socket_mode"},
            redis_url=redis_url,
            key_prefix=redis_prefix,
            standby_grace=SLOW_GRACE,
        )
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T3], channel=trio.id, text="echo before")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T1], 10, "the lowest team answers")

            await sim.org.unshare(trio.id, T1)
            election = await eventually(lambda: moved_for(rt.store, T2, ("channel_unshared",), trio.id), 5)
            assert T1 not in election.candidates
            await sim.post_message(user=USERS[T3], channel=trio.id, text="echo after")
            await wait_until(lambda: len(sim.posted) == 2, 10, "the answer after the move")
            await settled(rt, 5)
            assert sim.posted[1].team_id == T2


async def test_tokens_revoked_over_socket_mode_moves_the_election_with_that_reason(
    redis_url: str, redis_prefix: str
) -> None:
    """Revoking T1's bot token: its app hears ``tokens_revoked`` (Events API, protocol notes H)
    before its calls fail; the election moves at once with that reason and T1 stops."""
    async with GridSimulator(seed=37) as sim:
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

            await sim.revoke_token(config.teams[0].bot_token.get())
            await eventually(lambda: moved_for(rt.store, T2, ("tokens_revoked",)), 1.5)
            await eventually(lambda: gone(rt.store, T1), 1.5)
            team1 = rt.supervisor.team(T1)
            assert team1 is not None
            await wait_until(lambda: team1.state == TeamState.STOPPED, 5, "T1 stopped")
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo after")
            await wait_until(lambda: len(sim.posted) == 2, 10, "the answer after the move")
            assert sim.posted[1].team_id == T2


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
            await sim.uninstall(APP, T1)
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

