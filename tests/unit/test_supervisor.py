"""The supervisor's answers about teams while installations come and go."""

from __future__ import annotations

import asyncio

from gridtest import wait_until

from gridbot.config import RuntimeConfig, TeamConfig
from gridbot.events import Event
from gridbot.secrets import Secret
from gridbot.slack import SlackClients
from gridbot.store import MemoryStore
from gridbot.supervisor import Installation, Supervisor
from gridbot.team import Team


def _sink(event: Event, covers: tuple[str, ...]) -> None:
    return None


async def test_a_team_whose_installation_is_being_removed_still_has_handlers_a_team() -> None:
    """Closing an installation's sockets takes a while (a handover, a SIGTERM). An event decided
    just before must still get its handler a context: the team has to stay known throughout,
    not only once the sockets are closed (seen in a rolling restart: `team T... is not served
    by this process`, and the message was never answered)."""
    clients = SlackClients("http://127.0.0.1:9/api/")
    supervisor = Supervisor(clients, MemoryStore(), _sink, RuntimeConfig(), instance_id="test")
    team = Team(0, TeamConfig(transport="rtm", bot_token=Secret("xoxb-test")), team_id="T1")
    closing = asyncio.Event()
    closed = asyncio.Event()

    async def serving() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            closing.set()
            await closed.wait()  # the sockets take their time to close

    inst = Installation("rtm:T1", [team])
    inst.task = asyncio.create_task(serving(), name="test:installation")
    supervisor.installations[inst.key] = inst
    try:
        assert supervisor.team("T1") is team
        removing = asyncio.create_task(supervisor.remove(inst.key), name="test:remove")
        await wait_until(closing.is_set)
        assert supervisor.team("T1") is team  # while its sockets are still closing
        closed.set()
        await removing
        assert supervisor.team("T1") is team and team.state == "removed"
    finally:
        closed.set()
        await clients.close()
