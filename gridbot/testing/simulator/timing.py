"""Timing faults: late copies, reordered copies, duplicated copies; seeded and recorded.

Slack gives no ordering guarantee between teams' sockets and its deliveries can arrive late or
twice: the race the runtime's dedup stage exists for is the responsible team's copy arriving after
another team's (around ``standby_grace``). slack-protocol-notes.md A ("Each connected team's RTM
socket gets its own copy") and C (an unacked envelope is redelivered, "possibly on another
socket"); platform-2026.md, "Events API over HTTP": "[field] Two deliveries ~530 ms apart with
different team ids have been seen ... keep dedup on event_id and on the message identity".

A rule applies to the copies it matches: by receiving team (RTM) or authorized team (Socket Mode),
app, channel and text. ``times`` counts events (all copies of one message count once), so a rule
with ``times=1`` disturbs just the next matching message. Every disturbance is recorded as an
:class:`Injection` in ``GridSimulator.injected``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .records import Injection, Recent


@dataclass
class TimingRule:
    """One timing fault. ``lag`` + uniform(0, ``jitter``) seconds late; with a ``jitter`` wider
    than the gap between messages, copies to one team overtake each other (reordering).
    ``duplicate`` is the probability that a copy is written a second time ``duplicate_after``
    seconds after the first."""

    lag: float = 0.0
    jitter: float = 0.0
    duplicate: float = 0.0
    duplicate_after: float = 0.0
    team: str | None = None
    app: str | None = None
    channel: str | None = None
    match: str | None = None
    times: int | None = None  # events still to disturb; None: until cleared
    id: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if min(self.lag, self.jitter, self.duplicate_after) < 0:
            raise ValueError("lag, jitter and duplicate_after must not be negative")
        if not 0.0 <= self.duplicate <= 1.0:
            raise ValueError("duplicate is a probability between 0 and 1")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1")

    def covers_event(self, channel: str | None, text: str | None, teams: set[str], apps: set[str]) -> bool:
        """Does this event reach a copy this rule disturbs (so that it counts against ``times``)?"""
        if self.channel is not None and channel != self.channel:
            return False
        if (self.team is not None and self.team not in teams) or (
            self.app is not None and self.app not in apps
        ):
            return False
        return self.match is None or (text is not None and self.match in text)

    def covers_copy(self, team: str | None, app: str | None) -> bool:
        return (self.team is None or team == self.team) and (self.app is None or app == self.app)


@dataclass(frozen=True)
class Plan:
    """What happens to one copy: written after ``delay`` s, and again ``again`` s later (or not)."""

    delay: float = 0.0
    again: float | None = None


UNDISTURBED = Plan()


class Timing:
    """The active timing rules, the seeded randomness they draw on, and the copies in flight."""

    def __init__(self, rng: random.Random, injected: Recent[Injection]) -> None:
        self._rng = rng
        self._injected = injected
        self._rules: list[TimingRule] = []
        self._ids = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.in_flight = 0  # copies scheduled and not yet written

    # rules
    def add(self, rule: TimingRule) -> TimingRule:
        self._ids += 1
        rule.id = self._ids
        self._rules.append(rule)
        return rule

    def remove(self, rule: TimingRule) -> None:
        self._rules = [r for r in self._rules if r.id != rule.id]

    def clear(self) -> None:
        self._rules.clear()

    @property
    def rules(self) -> list[TimingRule]:
        return list(self._rules)

    def for_event(
        self, channel: str | None, text: str | None, teams: set[str], apps: set[str]
    ) -> list[TimingRule]:
        """The rules that disturb this event (delivered to ``teams`` through ``apps``), each
        counting it once against its ``times``."""
        if not self._rules:
            return []
        active = [r for r in self._rules if r.covers_event(channel, text, teams, apps)]
        for rule in active:
            if rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    self.remove(rule)
        return active

    def plan(
        self,
        rules: list[TimingRule],
        *,
        team: str | None,
        app: str | None,
        channel: str | None,
        ts: str | None,
    ) -> Plan:
        """Draw the fate of one copy from the rules that cover it, and record it."""
        delay, again = 0.0, None
        for rule in rules:
            if not rule.covers_copy(team, app):
                continue
            delay += rule.lag + (self._rng.uniform(0.0, rule.jitter) if rule.jitter else 0.0)
            if rule.duplicate and self._rng.random() < rule.duplicate:
                again = rule.duplicate_after if again is None else min(again, rule.duplicate_after)
        if delay == 0.0 and again is None:
            return UNDISTURBED
        now = time.time()
        if delay > 0.0:
            self._injected.append(Injection("lag", team, app, channel, ts, delay, now))
        if again is not None:
            self._injected.append(Injection("duplicate", team, app, channel, ts, delay + again, now))
        return Plan(delay, again)

    # copies in flight
    def later(self, delay: float, write: Callable[[], Awaitable[object]], name: str) -> None:
        """Write a copy ``delay`` seconds from now, counted in :attr:`in_flight` until written."""
        self.in_flight += 1

        async def run() -> None:
            try:
                await asyncio.sleep(delay)
                await write()
            finally:
                self.in_flight -= 1

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
