"""Interactions on Grid: a foreign user's click in a shared channel, and one payload handled once
by two runtimes reading the same app (real Redis)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from gridtest import wait_until
from interactive.kit import BUTTONS, GRID, SOCKET_MODE
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.runtime import Runtime
from gridbot.store import RedisStore
from gridbot.testing.harness import config_for
from gridbot.testing.pytest_plugin import Grid
from gridbot.testing.simulator import GridSimulator, PostedMessage

T1, T2 = "T0TEAM001", "T0TEAM002"


async def post_buttons(sim: GridSimulator, token: str, channel: str) -> PostedMessage:
    client = AsyncWebClient(token=token, base_url=sim.api_url)
    await client.chat_postMessage(channel=channel, text="Pick one", blocks=BUTTONS)
    await client.session.close() if client.session else None
    return sim.posted[-1]


@GRID
async def test_a_foreign_users_click_is_answered_through_the_installed_teams_token(grid: Grid) -> None:
    """Carol's team (Team Three) has no install. Her click on Team Two's message in the shared
    channel names her team; it is served by Team Two, whose bot wrote the message (Team One,
    the first team of the config, could not update it: ``cant_update_message``)."""
    message = await post_buttons(grid.sim, "xoxb-sim-T0TEAM002", "C0SHARED1")
    answer = await grid.click("carol", message, "approve")
    assert answer.sent.payload["team"]["id"] == "T0TEAM003"  # what Slack says: the user's team
    [update] = [c for c in grid.calls_to("chat.update") if c.ok]
    assert update.team_id == T2
    assert "(team T0TEAM003)" in update.args["text"]
    assert [m.text for m in answer.ephemeral] == [f"Thanks, served by {T2}"]


@GRID
async def test_a_foreign_users_slash_command_is_served_by_an_installation_of_the_org(grid: Grid) -> None:
    """A slash command names only the user's team (Team Three, no install) and the org: one of
    the org's installations answers it."""
    answer = await grid.slash("carol", "C0SHARED1", "/echo-back", "hello")
    assert answer.sent.payload["team_id"] == "T0TEAM003"
    assert answer.text == f"1 words from W0CAROL01 served by {T1}"


@GRID
async def test_a_payload_delivered_twice_to_one_runtime_is_handled_once(grid: Grid) -> None:
    message = await post_buttons(grid.sim, "xoxb-sim-T0TEAM001", "C0SHARED1")
    grid.sim.interactivity.duplicate_next = True  # one socket: both copies reach this runtime
    answer = await grid.click("alice", message, "approve")
    await wait_until(lambda: grid.sim.interactivity.copies_acked == 1, 5, "the copy acked")
    assert len(answer.updated) == 1 and len(answer.ephemeral) == 1
    assert grid.runtime.interactions is not None and grid.runtime.interactions.counters.duplicates == 1


class ReadsEverything(RedisStore):
    """Real Redis, ownership leases off: both runtimes open the app's sockets, as two processes
    do while a connection is handed over (the claim is the same Redis claim as ever)."""

    shared = False


@contextlib.asynccontextmanager
async def two_runtimes(sim: GridSimulator, url: str, prefix: str) -> AsyncIterator[list[Runtime]]:
    config = config_for(sim, SOCKET_MODE, redis_url=url, key_prefix=prefix, plugins=("interactive.kit",))
    stores = [ReadsEverything.from_url(url, key_prefix=prefix) for _ in range(2)]
    runtimes = [Runtime(config, store=store, instance_id=f"rt{n}") for n, store in enumerate(stores)]
    try:
        for rt in runtimes:
            await rt.start()
        await wait_until(lambda: sim.socket_count(app="A0GRIDBOT1") == 2, 10, "a socket per runtime")
        yield runtimes
    finally:
        for rt in runtimes:
            await rt.stop()
        for store in stores:
            await store.close()


async def test_two_runtimes_on_one_app_handle_each_payload_once(redis_url: str, redis_prefix: str) -> None:
    """Every click and slash command is delivered twice, on the two runtimes' sockets: each is
    handled once (one message update, one answer), the other copy acked empty as a duplicate."""
    async with GridSimulator() as sim, two_runtimes(sim, redis_url, redis_prefix) as runtimes:
        message = await post_buttons(sim, "xoxb-sim-T0TEAM001", "C0SHARED1")
        rounds = 4
        for n in range(rounds):
            sim.interactivity.duplicate_next = True
            sent = await sim.interactivity.click("W0ALICE01", "C0SHARED1", message.ts, "approve")
            assert sent.acked
            sim.interactivity.duplicate_next = True
            await sim.interactivity.slash("W0DAVE001", "C0ONE0001", "/ticket", f"n{n}")
        await wait_until(lambda: sim.interactivity.copies_acked == 2 * rounds, 10, "every copy acked")
        await wait_until(lambda: len(sim.interactivity.responses.posts) >= 2 * rounds, 10, "the answers")
        counters = [rt.interactions.counters for rt in runtimes if rt.interactions is not None]
        await wait_until(lambda: sum(c.duplicates for c in counters) == 2 * rounds, 10, "duplicates")
        assert len([c for c in sim.calls_to("chat.update") if c.ok]) == rounds
        assert len(sim.interactivity.responses.posts) == 2 * rounds  # one respond() per payload
        tickets = [p.text for p in sim.posted if p.text.startswith("Ticket filed")]
        assert sorted(tickets) == sorted(f"Ticket filed: n{n}" for n in range(rounds))
        assert sum(c.by_handler for c in counters) == 2 * rounds
