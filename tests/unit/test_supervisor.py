"""The supervisor while connections come and go: teams stay known, and no task outlives its connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from gridtest import T1, T2, CollectingIntake, grid_config, wait_until

from gridbot.config import Config, RuntimeConfig, connection_key
from gridbot.slack import SlackClients
from gridbot.store import MemoryStore
from gridbot.supervisor import Supervisor
from gridbot.team import Team, TeamState
from gridbot.testing import GridSimulator


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator() as sim:
        yield sim


def _supervisor(sim: GridSimulator, ready: object) -> tuple[Supervisor, SlackClients]:
    clients = SlackClients(sim.api_url)
    supervisor = Supervisor(
        clients,
        MemoryStore(),
        CollectingIntake([]),
        RuntimeConfig(),
        instance_id="test",
        on_team_ready=ready,  # type: ignore[arg-type]
    )
    return supervisor, clients


def _ours(task: asyncio.Task[object]) -> bool:
    """A task running gridbot's own code (not the simulator's, not the test's)."""
    path = task.get_coro().cr_code.co_filename  # type: ignore[union-attr]
    return "/gridbot/" in path and "/gridbot/testing/" not in path


def _running_ours() -> list[str]:
    return sorted(t.get_name() for t in asyncio.all_tasks() if not t.done() and _ours(t))


async def test_a_team_whose_connection_is_being_removed_still_has_handlers_a_team(sim: GridSimulator) -> None:
    """Closing a connection takes a while (a handover, a SIGTERM). An event decided just before
    must still get its handler a context: the team has to stay known throughout, not only once
    the sockets are closed (seen in a rolling restart: `team T... is not served by this process`,
    and the message was never answered)."""
    closing, closed = asyncio.Event(), asyncio.Event()

    async def ready(team: Team) -> None:  # holds the connection's runner until it is removed
        try:
            await asyncio.Event().wait()
        finally:
            closing.set()
            while not closed.is_set():  # slow to close, like a socket whose peer does not answer
                try:
                    await closed.wait()
                except asyncio.CancelledError:
                    continue

    config: Config = grid_config(sim, {T1: "rtm"})
    supervisor, clients = _supervisor(sim, ready)
    try:
        supervisor.start(config.teams)
        await wait_until(lambda: supervisor.team(T1) is not None, 5, "T1 authenticated")
        team = supervisor.team(T1)
        removing = asyncio.create_task(supervisor.remove(connection_key(config.teams[0])), name="test:remove")
        await wait_until(closing.is_set, 5, "the connection closing")
        assert supervisor.team(T1) is team  # while its sockets are still closing
        closed.set()
        await removing
        assert supervisor.team(T1) is team and team is not None and team.state == TeamState.REMOVED
    finally:
        closed.set()
        await supervisor.stop()
        await clients.close()


async def test_removing_a_connection_ends_the_auth_of_teams_added_to_it_later(sim: GridSimulator) -> None:
    """Teams on one Socket Mode app token share a connection; the second team's auth.test runs in
    a task of its own. Removing the connection ends it too (they used to pile up across reloads),
    and stopping the supervisor leaves none of its tasks running."""
    holding: set[str] = set()
    ended: set[str] = set()

    async def ready(team: Team) -> None:  # a slow registration: auth stays in progress
        holding.add(team.team_id)
        try:
            await asyncio.Event().wait()
        finally:
            ended.add(team.team_id)

    config = grid_config(sim, {T1: "socket_mode", T2: "socket_mode"})
    assert len({connection_key(t) for t in config.teams}) == 1  # one app token: one connection
    supervisor, clients = _supervisor(sim, ready)
    try:
        supervisor.start(config.teams)
        await wait_until(lambda: holding == {T1, T2}, 5, "both teams authenticating")
        await supervisor.remove(connection_key(config.teams[0]))
        assert ended == {T1, T2} and supervisor.teams == []

        holding.clear()
        ended.clear()
        for index, team in enumerate(config.teams):  # back in the config (a reload)
            supervisor.configure(team, index)
        await wait_until(lambda: holding == {T1, T2}, 5, "both teams authenticating again")
    finally:
        await supervisor.stop()
        await clients.close()
    assert ended == {T1, T2}
    assert _running_ours() == []
