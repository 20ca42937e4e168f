"""Which installed team answers in a conversation: chosen once, stored, moved as soon as the facts say.

The choice is deterministic (the host team if we are installed there, else the lowest team id)
so every process and every restart agrees. Candidates come from ``conversations.info`` (the teams
the conversation is shared with) intersected with the teams gridbot is installed on, plus any team
whose bot joined it or that carries traffic there. When ``conversations.info`` fails, is rate
limited beyond ``info_timeout`` or says nothing usable, the team that saw the event is elected: it
is in the conversation, so it can answer (``election.info_failed`` / ``election.info_incomplete``).

The election moves, each move one ``election.moved`` log line with its ``reason``, also recorded in
the store's election (``Election.reason``), at once when:

* a team's bot left the conversation or the conversation was unshared from it (:meth:`apply`, a
  :class:`~gridbot.dedup.facts.Fact` of kind LEAVE; the team is no candidate there until it joins);
* a team is gone everywhere: uninstalled, tokens revoked, a call answered that its token is dead,
  stopped (a GONE fact), unless Slack's event is older than the team's current authentication
  (``election.stale_fact``: a late retry of an uninstall that a reinstall overtook);
* a standby team had to answer and the responsible team's heartbeat has lapsed
  (:meth:`check_takeover`, reason ``heartbeat_lapsed``).

It moves to the lowest live candidate (installed, heartbeat up, not the one leaving); with none,
the election is cleared and the next event elects afresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from gridbot.dedup.facts import Fact, Kind
from gridbot.logs import get_logger
from gridbot.slack import classify
from gridbot.store import Election, Store, StoreUnavailable

log = get_logger("gridbot.election")

_TEAM_FIELDS = ("internal_team_ids", "shared_team_ids", "context_team_id", "conversation_host_id")
_SHARED_FLAGS = ("is_shared", "is_org_shared", "is_ext_shared", "is_pending_ext_shared")
# Moves that follow a membership change are routine; the others mean a team stopped answering.
_ROUTINE = frozenset({"channel_left", "group_left", "member_left_channel", "channel_unshared"})


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
        retire: Callable[[str, str], Awaitable[None]] | None = None,
        granted: Callable[[str | None, frozenset[str]], None] | None = None,
        authenticated: Callable[[str], float | None] = lambda _: None,
        info_timeout: float = 2.0,
    ) -> None:
        self._store = store
        self._local = installed  # team ids this process serves, not stopped
        self._stopped = stopped
        self._client_for = client_for
        self._retire = retire  # stops a team whose tokens Slack says are dead (the supervisor)
        self._granted = granted  # an org install's workspaces granted: the installs list them now
        self._authenticated = authenticated  # when a team's current token last passed auth.test
        self._info_timeout = info_timeout
        self._inflight: dict[str, asyncio.Future[Election]] = {}
        self.takeovers = 0  # moves because a heartbeat lapsed (metrics)
        self.elected = 0  # elections this process decided (metrics)
        self.moves: dict[str, int] = {}  # moves this process made, by reason (metrics)

    async def ensure(self, channel: str, via: str, joined: Collection[str] = ()) -> Election:
        """Elect a responsible team for ``channel`` unless one exists; coalesces concurrent calls.

        ``joined``: teams whose bot just joined (they are candidates again): never coalesced.
        """
        pending = self._inflight.get(channel)
        if pending is not None:
            election = await asyncio.shield(pending)
            if not joined:
                return election
        future: asyncio.Future[Election] = asyncio.get_running_loop().create_future()
        self._inflight[channel] = future
        try:
            election = await self._elect(channel, via, joined)
            future.set_result(election)
            return election
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: a caller that gave up must not warn
            raise
        finally:
            if self._inflight.get(channel) is future:
                del self._inflight[channel]

    async def installed(self) -> set[str]:
        """Installed teams across every process sharing the store (the roster), minus stopped."""
        try:
            registered = set(await self._store.roster())
        except StoreUnavailable:
            registered = set()
        return (registered | self._local()) - self._stopped()

    async def _elect(self, channel: str, via: str, joined: Collection[str]) -> Election:
        installed = await self.installed()
        candidates, host = await self._info(channel, via, installed)
        candidates |= set(joined) & installed
        chosen = choose(candidates, host)
        election = await self._store.elect(channel, chosen, candidates, fallback=via, joined=joined)
        fresh = election.reason == "elected" and election.team in (chosen, via)
        if fresh:
            self.elected += 1
        log.info(
            "election.decided",
            channel=channel,
            team_id=election.team,
            candidates=list(election.candidates),
            host=host,
            decision="elected" if fresh else "kept",
        )
        return election

    async def _info(self, channel: str, via: str, installed: set[str]) -> tuple[set[str], str | None]:
        """The candidates and host ``conversations.info`` gives; ``{via}`` when it cannot say."""
        client = self._client_for(via)
        if client is None:
            return {via}, None
        try:
            # Bounded: the decider waits for this election, and a 429 would wait out Retry-After.
            async with asyncio.timeout(self._info_timeout):
                response = await client.conversations_info(channel=channel)
        except TimeoutError:
            error = "timeout"
        except Exception as exc:  # an election without metadata still beats no answer at all
            error = classify(exc).error
        else:
            info = response.get("channel")
            if isinstance(info, dict):
                if any(info.get(f) for f in _SHARED_FLAGS) and not any(f in info for f in _TEAM_FIELDS):
                    log.warning(
                        "election.info_incomplete", channel=channel, team_id=via, missing=list(_TEAM_FIELDS)
                    )
                return candidates_from_info(info, installed, via)
            log.warning("election.info_incomplete", channel=channel, team_id=via, missing=["channel"])
            return {via}, None
        log.warning("election.info_failed", channel=channel, team_id=via, error=error, fallback=via)
        return {via}, None

    # -- moves ---------------------------------------------------------------------------------

    async def apply(self, fact: Fact, channels: Iterable[str] = ()) -> set[str]:
        """Act on one fact: ensure an election (a join), move the elections it affects, or hand
        a grant to the installs (``granted``: it only wakes their watcher, never waits for Slack).

        ``channels``: for a GONE fact, the conversations the caller knows the teams answer in
        (elsewhere the next standby copy finds their heartbeat gone and moves it at once).
        Returns the teams the fact is about (an org id resolved to our teams of that org; a team
        it is too old for left out).
        Raises StoreUnavailable (the caller retries the fact).
        """
        if fact.kind is Kind.JOIN:
            if fact.channel:
                await self.ensure(fact.channel, fact.via, fact.teams)
            return set(fact.teams)
        if fact.kind is Kind.GRANT:  # nothing to move: the workspaces answer once served
            if self._granted is not None:
                self._granted(fact.org, fact.teams)
            return set()
        teams = await self._resolve(fact.teams)
        if fact.kind is Kind.LEAVE:
            if fact.channel:
                await self._depart(fact.channel, teams, fact.reason, left=True)
            return teams
        teams -= self._stale(fact, teams)
        if not teams:
            return teams
        if fact.stop and self._retire is not None:
            for team in sorted(teams):
                await self._retire(team, fact.reason)
        for channel in channels:
            await self._depart(channel, teams, fact.reason, left=False)
        return teams

    def _stale(self, fact: Fact, teams: Iterable[str]) -> set[str]:
        """The teams ``fact`` (a lifecycle event) is too old for: Slack said the token died before
        the team's current token passed ``auth.test`` (a retry that a reinstall overtook). The
        comparison is in whole seconds, as ``event_time`` is: a current event is never stale."""
        stale: set[str] = set()
        for team in teams if fact.at is not None else ():
            since = self._authenticated(team)
            if since is not None and fact.at is not None and fact.at < int(since):
                stale.add(team)
                log.warning(
                    "election.stale_fact",
                    team_id=team,
                    reason=fact.reason,
                    event_time=fact.at,
                    authenticated_at=int(since),
                    decision="ignored",
                )
        return stale

    async def _resolve(self, ids: Iterable[str]) -> set[str]:
        """Team ids, with an org id (``E...``, as ``channel_unshared`` may name) replaced by our
        teams of that org."""
        teams = set(ids)
        orgs = {i for i in teams if i.startswith("E")}
        if orgs:
            roster = await self._store.roster()
            teams |= {t for t, info in roster.items() if info.get("enterprise_id") in orgs}
        return teams

    async def _depart(self, channel: str, gone: set[str], reason: str, *, left: bool) -> None:
        current = await self._store.election(channel)
        successor = None
        if current is not None and current.team in gone:
            successor = await self._successor(current.candidates, gone)
        moved, after = await self._store.depart(channel, sorted(gone), successor, reason, left=left)
        if moved and current is not None:
            self._moved(channel, current.team, after, reason)

    async def _successor(self, candidates: Iterable[str], exclude: Collection[str]) -> str | None:
        """The lowest candidate that is installed, not excluded and whose heartbeat is up."""
        installed = await self.installed()
        pool = [t for t in candidates if t not in exclude and t in installed]
        alive = await self._store.alive(pool) if pool else set()
        return min(alive) if alive else None

    async def check_takeover(self, channel: str, responsible: str, standby: str) -> None:
        """After a standby had to answer: if the responsible team's heartbeat lapsed, move the election."""
        if await self._store.alive([responsible]):
            return
        election = await self._store.election(channel)
        if election is None or election.team != responsible:
            return
        successor = await self._successor(election.candidates, {responsible}) or standby
        moved = await self._store.takeover(channel, responsible, successor, "heartbeat_lapsed")
        if moved is not None and moved.team == successor and moved.team != responsible:
            self.takeovers += 1
            self._moved(channel, responsible, moved, "heartbeat_lapsed")

    def _moved(self, channel: str, previous: str, after: Election | None, reason: str) -> None:
        self.moves[reason] = self.moves.get(reason, 0) + 1
        level = log.info if reason in _ROUTINE else log.warning
        level(
            "election.moved",
            channel=channel,
            team_id=after.team if after is not None else None,
            previous=previous,
            epoch=after.epoch if after is not None else None,
            reason=reason,
            decision="moved" if after is not None else "cleared",
        )
