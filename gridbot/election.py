"""Which installed team answers in a conversation: chosen once, stored, taken over when it dies.

The choice is deterministic (the host team if we are installed there, else the lowest team id)
so every process and every restart agrees. Candidates come from ``conversations.info`` (the teams
the conversation is shared with) intersected with the teams gridbot is installed on, plus any team
whose bot joined it or that carries traffic there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from gridbot.logs import get_logger
from gridbot.store import Election, Store, StoreUnavailable

log = get_logger("gridbot.election")


def choose(candidates: Iterable[str], host: str | None) -> str:
    pool = sorted(set(candidates))
    return host if host in pool else pool[0]


def candidates_from_info(
    channel: Mapping[str, Any], installed: set[str], via: str
) -> tuple[set[str], str | None]:
    """Installed teams a ``conversations.info`` channel object says the conversation spans."""
    teams: set[str] = {via}
    for field in ("internal_team_ids", "shared_team_ids"):
        value = channel.get(field)
        if isinstance(value, list):
            teams.update(t for t in value if isinstance(t, str))
    context = channel.get("context_team_id")
    if isinstance(context, str):
        teams.add(context)
    host = channel.get("conversation_host_id")
    host = host if isinstance(host, str) else None
    if host:
        teams.add(host)
    return (teams & installed) | {via}, host


class Elector:
    def __init__(
        self,
        store: Store,
        *,
        installed: Callable[[], set[str]],
        client_for: Callable[[str], AsyncWebClient | None],
        stopped: Callable[[], set[str]] = set,
    ) -> None:
        self._store = store
        self._local = installed  # team ids this process serves, not stopped
        self._stopped = stopped
        self._client_for = client_for
        self._inflight: dict[str, asyncio.Future[Election]] = {}
        self.takeovers = 0
        self.elected = 0  # elections this process decided (metrics)

    async def ensure(self, channel: str, via: str) -> Election:
        """Elect a responsible team for ``channel`` unless one exists; coalesces concurrent calls."""
        pending = self._inflight.get(channel)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Election] = asyncio.get_running_loop().create_future()
        self._inflight[channel] = future
        try:
            election = await self._elect(channel, via)
            future.set_result(election)
            return election
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: a caller that gave up must not warn
            raise
        finally:
            del self._inflight[channel]

    async def installed(self) -> set[str]:
        """Installed teams across every process sharing the store (the roster), minus stopped."""
        try:
            registered = set(await self._store.roster())
        except StoreUnavailable:
            registered = set()
        return (registered | self._local()) - self._stopped()

    async def _elect(self, channel: str, via: str) -> Election:
        installed = await self.installed()
        host: str | None = None
        candidates = {via}
        client = self._client_for(via)
        if client is not None:
            try:
                response = await client.conversations_info(channel=channel)
                info = response.get("channel")
                if isinstance(info, dict):
                    candidates, host = candidates_from_info(info, installed, via)
            except Exception as exc:  # an election without metadata still beats no answer at all
                log.warning("election.info_failed", channel=channel, team_id=via, error=type(exc).__name__)
        chosen = choose(candidates, host)
        election = await self._store.elect(channel, chosen, candidates)
        if election.team == chosen and election.epoch == 1:
            self.elected += 1
        log.info(
            "election.decided",
            channel=channel,
            team_id=election.team,
            candidates=list(election.candidates),
            host=host,
            decision="elected" if election.team == chosen and election.epoch == 1 else "kept",
        )
        return election

    async def check_takeover(self, channel: str, responsible: str, standby: str) -> None:
        """After a standby had to answer: if the responsible team's heartbeat lapsed, move the election."""
        if await self._store.alive([responsible]):
            return
        election = await self._store.election(channel)
        if election is None or election.team != responsible:
            return
        installed = await self.installed()
        pool = [t for t in election.candidates if t != responsible and t in installed]
        alive = await self._store.alive(pool) if pool else set()
        successor = min(alive) if alive else standby
        moved = await self._store.takeover(channel, responsible, successor)
        if moved is not None and moved.team == successor and moved.team != responsible:
            self.takeovers += 1
            log.warning(
                "election.takeover",
                channel=channel,
                team_id=successor,
                previous=responsible,
                epoch=moved.epoch,
                decision="takeover",
            )
