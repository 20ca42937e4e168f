"""The processes of the stateful decision-core test (``test_stateful.py``): each an intake, a
decider and an elector with its own Redis client, as the runtime assembles them, reading the
teams the test assigns it and noting every message it hands to the dispatcher."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from dedup.election_model import Answer

from gridbot.bots import Bots
from gridbot.dedup import Decider, Intake
from gridbot.election import Elector
from gridbot.events import Event
from gridbot.store import Decision, RedisStore
from gridbot.store.keys import Keys
from gridbot.tasks import cancel_and_wait

TEAMS = ("T1", "T2", "T3")
MEMBERS = {"C1": ("T1", "T2", "T3"), "C2": ("T2", "T3")}
HOSTS = {"C1": "T1", "C2": "T3"}
GRACE = 0.05


class Tracking(RedisStore):
    """The real Redis store, noting which events have a claim in flight (sent, not answered)."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(
            aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=2), keys=Keys(prefix)
        )
        self.inflight: Counter[tuple[str | None, str]] = Counter()

    async def decide_many(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[Decision]:
        keys = [(c, k) for c, k, _ in asks]
        self.inflight.update(keys)
        try:
            return await super().decide_many(asks)
        finally:
            self.inflight.subtract(keys)

    async def claim_many(self, claims: Sequence[tuple[str | None, str, str]]) -> list[str | None]:
        keys = [(c, k) for c, k, _ in claims]
        self.inflight.update(keys)
        try:
            return await super().claim_many(claims)
        finally:
            self.inflight.subtract(keys)

    def in_flight(self) -> set[tuple[str | None, str]]:
        return {key for key, n in self.inflight.items() if n > 0}


class Info:
    """``conversations.info``: who the conversation is shared with, and its host."""

    async def conversations_info(self, channel: str) -> dict[str, Any]:
        return {
            "ok": True,
            "channel": {"shared_team_ids": list(MEMBERS[channel]), "conversation_host_id": HOSTS[channel]},
        }


class Process:
    def __init__(
        self, name: str, url: str, prefix: str, teams: set[str], trust: float, answers: list[Answer]
    ) -> None:
        self.name = name
        self.teams = teams
        self.store = Tracking(url, prefix)
        self.bots = Bots(self.store)
        for n, team in enumerate(TEAMS, start=1):
            self.bots.add(f"UBOT{n}", f"B{n}", team)
        self.answers = answers  # every process's, in the order they were handled
        info = Info()
        self.elector = Elector(
            self.store,
            installed=lambda: set(TEAMS),
            client_for=lambda _team: info,  # type: ignore[arg-type,return-value]
        )
        self.intake = Intake(self.bots)
        self.decider = Decider(
            self.intake, self.store, self.elector, self._dispatch, bots=self.bots, standby_grace=GRACE,
            heartbeat_trust=trust,
        )  # fmt: skip
        self.task = asyncio.get_running_loop().create_task(self.decider.run(), name=f"test:{self.name}")
        self.crashed = False

    def _dispatch(self, event: Event, team: str, decision: str) -> None:
        if event.type == "message":
            at = time.monotonic()
            self.answers.append(Answer(self.name, event.channel or "", event.ts or "", team, decision, at))

    async def crash(self) -> None:
        self.crashed = True
        await cancel_and_wait([self.task])  # redis-py may swallow one cancellation

    async def close(self) -> None:
        if not self.crashed:
            await self.crash()
        await self.store.close()
