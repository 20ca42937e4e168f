"""A connection and its links: one RTM socket for an RTM team, ``connections`` Socket Mode
sockets for an app token (every team installed through that app shares them), or an Events API
app (its requests, on every replica)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.config import RuntimeConfig
from gridbot.team import Team, TeamState
from gridbot.transport.http_apps import EventsApp
from gridbot.transport.link import FrameIntake, Link
from gridbot.transport.rtm import RtmLink
from gridbot.transport.socket_mode import SocketModeLink


@dataclass
class Connection:
    """One RTM team, or one Socket Mode app token with every team installed through it: what one
    process owns (one ownership lease each) and keeps sockets for."""

    key: str  # connection_key() of its teams
    teams: list[Team]
    links: list[Link | EventsApp] = field(default_factory=list)
    by_id: dict[str, Team] = field(default_factory=dict)  # authenticated teams
    # Its runner first, then the auth.test of each team added to it later; ended on removal.
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def everywhere(key: str) -> bool:
    """A connection every process serves: an Events API app (any replica gets its requests)."""
    return key.startswith("http:")


def socket_links(
    key: str,
    first: Team,
    teams: Mapping[str, Team],
    *,
    connector: AsyncWebClient,
    intake: FrameIntake,
    session: aiohttp.ClientSession,
    runtime: RuntimeConfig,
    on_state: Callable[[Link], None],
) -> list[Link | EventsApp]:
    """The links serving connection ``key``, whose first team is ``first`` (``teams``: the
    connection's authenticated teams, which a Socket Mode link reads events for)."""
    config = first.config
    if config.transport == "rtm":
        link = RtmLink(
            first, connector=connector, intake=intake, session=session, runtime=runtime, on_state=on_state
        )
        return [link]
    return [
        SocketModeLink(
            f"{key}#{n}",
            teams,
            app_token=config.app_token or config.bot_token,
            connector=connector,
            intake=intake,
            session=session,
            runtime=runtime,
            on_state=on_state,
        )
        for n in range(config.connections)
    ]


def beats(
    connections: Mapping[str, Connection],
    keys: Collection[str] | None,
    fenced: Callable[[str], bool],
    instance: str,
    events_holder: str,
) -> dict[str, list[str]]:
    """The connected teams of ``keys`` (None: of every connection) a process may beat for, by
    holder: its own ``instance`` id, or ``events_holder`` for the Events API's teams (every
    replica beats for those in common). A ``fenced`` connection (ownership lost) beats for none."""
    found: dict[str, list[str]] = {}
    for key in connections if keys is None else keys:
        conn = connections.get(key)
        if conn is None or fenced(key):
            continue
        holder = events_holder if everywhere(key) else instance
        found.setdefault(holder, []).extend(
            t.team_id for t in conn.by_id.values() if t.state == TeamState.CONNECTED
        )
    return found
