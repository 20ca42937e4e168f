"""Every message reaches the plugins exactly once, answered by one stable team (issue: runtime)."""

from __future__ import annotations

import itertools

import pytest
from gridtest import SHARED, T1, T2, T3, USERS, connected, eventually, grid_config, replies, wait_until

from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator, RateLimits


async def converse(sim: GridSimulator, channel: str, count: int, authors: list[str]) -> list[str]:
    sent = []
    for n, user in zip(range(count), itertools.cycle(authors)):
        await sim.post_message(user=user, channel=channel, text=f"echo m{n}")
        sent.append(f"m{n}")
    return sent


@pytest.mark.parametrize(
    "transports",
    [
        {T1: "rtm", T2: "rtm"},
        {T1: "socket_mode", T2: "socket_mode"},  # one app installed on both teams: one event per app
    ],
)
async def test_hundred_messages_from_three_teams_get_hundred_replies_from_one_team(
    transports: dict[str, str], redis_url: str, redis_prefix: str
) -> None:
    # About exactly-once and the election, not Slack's posting limit (100 answers in one channel).
    async with GridSimulator(seed=7, rate_limits=RateLimits(enabled=False)) as sim:
        config = grid_config(sim, transports, redis_url=redis_url, key_prefix=redis_prefix)
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2])
            sent = await converse(sim, SHARED, 100, list(USERS.values()))
            await wait_until(lambda: len(replies(sim, SHARED)) >= 100, 20, "100 replies")
            assert rt.dedup is not None
            await wait_until(lambda: rt.dedup.backlog == 0, 10, "dedup settled")
            posted = replies(sim, SHARED)
            assert sorted(p.text for p in posted) == sorted(sent)
            assert len({p.team_id for p in posted}) == 1
            assert posted[0].team_id == T1  # the host team, installed: the deterministic choice


async def test_in_memory_store_same_guarantee_with_edits_and_threads() -> None:
    async with GridSimulator(seed=3) as sim:
        async with Runtime(grid_config(sim, {T1: "rtm", T2: "rtm"})) as rt:
            await connected(rt, sim, [T1, T2])
            root = await sim.post_message(user=USERS[T2], channel=SHARED, text="echo root")
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo in thread", thread_ts=root)
            await sim.edit_message(SHARED, root, "echo edited")  # an edit is not a new user message
            await wait_until(lambda: len(replies(sim, SHARED)) >= 2)
            assert rt.dedup is not None
            await wait_until(lambda: rt.dedup.backlog == 0)
            posted = replies(sim, SHARED)
            assert sorted((p.text, p.thread_ts) for p in posted) == [("in thread", root), ("root", None)]


async def test_echo_echo_gives_exactly_one_reply() -> None:
    async with GridSimulator() as sim:
        async with Runtime(grid_config(sim, {T1: "rtm", T2: "rtm"})) as rt:
            await connected(rt, sim, [T1, T2])
            await sim.post_message(user=USERS[T1], channel=SHARED, text="echo echo x")
            await wait_until(lambda: len(replies(sim)) >= 1)
            assert rt.dedup is not None
            # Our reply "echo x" comes back over both sockets as a bot message: it must not echo.
            await wait_until(lambda: rt.dedup is not None and rt.dedup.counters.own_message >= 2)
            await wait_until(lambda: rt.dedup.backlog == 0)
            assert [p.text for p in replies(sim)] == ["echo x"]


@pytest.mark.parametrize("channel,author", [("D0CAROLDM", "W0CAROL01"), ("G0MPIM001", "W0BOB0001")])
async def test_cross_team_dm_and_mpdm_are_answered_once(channel: str, author: str) -> None:
    # About exactly-once across teams, not Slack's posting limit (10 answers in one conversation).
    async with GridSimulator(seed=11, rate_limits=RateLimits(enabled=False)) as sim:
        async with Runtime(grid_config(sim, {T1: "rtm", T2: "rtm"})) as rt:
            await connected(rt, sim, [T1, T2])
            for n in range(10):
                await sim.post_message(user=author, channel=channel, text=f"echo dm{n}")
            await wait_until(lambda: len(replies(sim, channel)) >= 10)
            assert rt.dedup is not None
            await wait_until(lambda: rt.dedup.backlog == 0)
            posted = replies(sim, channel)
            assert sorted(p.text for p in posted) == sorted(f"dm{n}" for n in range(10))
            assert len({p.team_id for p in posted}) == 1


async def test_single_team_channel_is_answered_by_that_team() -> None:
    async with GridSimulator() as sim:
        async with Runtime(grid_config(sim, {T1: "rtm", T2: "rtm"})) as rt:
            await connected(rt, sim, [T1, T2])
            await sim.post_message(user="W0BOB0001", channel="G0TWOPRIV", text="echo private")
            await wait_until(lambda: len(replies(sim)) >= 1)
            assert [(p.team_id, p.text) for p in replies(sim)] == [(T2, "private")]


async def test_bot_join_elects_from_conversation_metadata(redis_url: str, redis_prefix: str) -> None:
    """No message yet: the join alone elects, with every installed team of the channel a candidate."""
    async with GridSimulator() as sim:
        # T2's bot is a member from the start: Slack answers already_in_channel and sends no event.
        # It leaves before gridbot runs, so the join below is a real one and the only event.
        await sim.remove_bot_from_channel(T2, SHARED)
        config = grid_config(sim, {T1: "rtm", T2: "rtm"}, redis_url=redis_url, key_prefix=redis_prefix)
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2])
            await sim.add_bot_to_channel(T2, SHARED)
            election = await eventually(lambda: rt.store.election(SHARED))
            assert election.team == T1  # the host team, although T2's bot is the one that joined
            assert set(election.candidates) == {T1, T2}
