"""The election follows the facts at once: each lifecycle event moves it, through the real intake,
decider and elector, as a link hands them the frames.

The simulator does not send these events yet (only joins), so they are offered here as their
teams' sockets would read them; the shapes are those of
``/work/shared/reference/slack-protocol-notes.md`` section A ("channel_left", "member_left_channel",
"channel_unshared", "tokens_revoked", "app_uninstalled"). Every test uses a 60 s ``standby_grace``:
a message that had to wait it out would time the test out, so "answered" means "answered at once".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dedup.stagekit import Stage
from gridtest import wait_until
from structlog.testing import capture_logs

from gridbot.bots import Bots
from gridbot.dedup.facts import GRANTED, TEAM_STOPPED, Kind, fact_of
from gridbot.election import Elector
from gridbot.events import Event, normalise
from gridbot.store import Election, MemoryStore, Store

GRACE = 60.0  # a copy that waits it out times the test out


class Stack:
    """One process's dedup stage and elector over ``store``, serving ``teams``; every installed
    team's heartbeat is up (as its supervisor keeps it) unless a test says otherwise."""

    def __init__(self, store: Store, teams: set[str], info: dict[str, Any] | None = None) -> None:
        self.store = store
        self.teams = teams
        self.stopped: set[str] = set()
        self.retired: list[tuple[str, str]] = []
        self.dispatched: list[tuple[Event, str, str]] = []
        self.bots = Bots(store)
        for n, team in enumerate(sorted(teams), start=1):
            self.bots.add(f"UBOT{n}", f"B{n}", team)
        client = FakeInfo(info) if info is not None else None
        self.elector = Elector(
            store,
            installed=lambda: self.teams - self.stopped,
            stopped=lambda: self.stopped,
            client_for=lambda _team: client,  # type: ignore[arg-type,return-value]
            retire=self._retire,
        )
        self.stage = Stage(
            store, self.elector, self._dispatch, bots=self.bots, standby_grace=GRACE, heartbeat_trust=60
        )

    async def _retire(self, team: str, reason: str) -> None:
        self.retired.append((team, reason))
        self.stopped.add(team)
        await self.store.release_alive([team], "sockets")

    def _dispatch(self, event: Event, team: str, decision: str) -> None:
        self.dispatched.append((event, team, decision))

    def message(self, ts: str, *teams: str, channel: str = "C1") -> None:
        for team in teams:
            self.stage.offer(
                {"type": "message", "channel": channel, "ts": ts, "user": "W1", "text": "hi"}, team
            )

    def answers(self) -> list[tuple[str | None, str, str]]:
        return [(e.ts, team, d) for e, team, d in self.dispatched if e.type == "message"]

    def types(self) -> list[str]:
        return [e.type for e, _, _ in self.dispatched]

    async def answered(self, count: int) -> None:
        await wait_until(
            lambda: len(self.answers()) >= count and self.stage.backlog == 0, 5, f"{count} answers"
        )


class FakeInfo:
    """``conversations.info`` answering one channel object for every conversation."""

    def __init__(self, channel: dict[str, Any]) -> None:
        self.channel = channel

    async def conversations_info(self, channel: str) -> dict[str, Any]:
        return {"ok": True, "channel": {"id": channel, **self.channel}}


async def election(store: Store, channel: str = "C1") -> Election:
    found = await store.election(channel)
    assert found is not None
    return found


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    """T1, T2, T3 in one process; C1 is shared by all three and T1 (the host) answers there."""
    s = Stack(MemoryStore(), {"T1", "T2", "T3"})
    await s.store.renew_alive(["T1", "T2", "T3"], "sockets", 600_000)
    await s.store.elect("C1", "T1", ["T1", "T2", "T3"])
    task = asyncio.create_task(s.stage.run(), name="test:decider")
    yield s
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("kind", ["channel_left", "group_left"])
async def test_our_bot_leaving_moves_the_election_at_once_with_its_reason(stack: Stack, kind: str) -> None:
    """``channel_left`` / ``group_left`` reach the socket of the bot that left (RTM)."""
    stack.message("1.0", "T1", "T2")
    await stack.answered(1)
    with capture_logs() as logs:
        stack.stage.offer({"type": kind, "channel": "C1"}, "T1")
        stack.message("2.0", "T2", "T3")  # T1 no longer reads C1
        await stack.answered(2)
    moved = await election(stack.store)
    assert (moved.team, moved.reason, moved.epoch) == ("T2", kind, 2)
    assert "T1" not in moved.candidates
    assert stack.answers() == [("1.0", "T1", "handled"), ("2.0", "T2", "handled")]
    [line] = [e for e in logs if e["event"] == "election.moved"]
    assert (line["reason"], line["previous"], line["team_id"]) == (kind, "T1", "T2")
    assert kind in stack.types()  # handlers still see the event


async def test_member_left_channel_names_the_bot_and_any_member_team_may_read_it(stack: Stack) -> None:
    """Every member team sees ``member_left_channel``: T3's socket reads that T1's bot (UBOT1) left."""
    stack.stage.offer({"type": "member_left_channel", "channel": "C1", "user": "UBOT1", "team": "T3"}, "T3")
    stack.message("3.0", "T3", "T2")
    await stack.answered(1)
    moved = await election(stack.store)
    assert (moved.team, moved.reason) == ("T2", "member_left_channel")
    assert stack.answers() == [("3.0", "T2", "handled")]


async def test_a_person_leaving_changes_nothing(stack: Stack) -> None:
    stack.stage.offer({"type": "member_left_channel", "channel": "C1", "user": "W7", "team": "T1"}, "T1")
    stack.message("4.0", "T1")
    await stack.answered(1)
    assert (await election(stack.store)).team == "T1"


async def test_unshared_from_a_team_or_from_its_whole_org_moves_the_election() -> None:
    store = MemoryStore()
    s = Stack(store, {"T1", "T2", "T3"})
    await store.roster_add("T1", {"bot_user_id": "UBOT1", "bot_id": "B1", "enterprise_id": "E9"})
    await store.renew_alive(["T1", "T2", "T3"], "sockets", 600_000)
    await store.elect("C1", "T1", ["T1", "T2", "T3"])
    await store.elect("C2", "T2", ["T2", "T3"])
    task = asyncio.create_task(s.stage.run(), name="test:decider")
    try:
        # an org id, as Slack Connect names the other side: T1 is our team of that org
        s.stage.offer(
            {"type": "channel_unshared", "channel": "C1", "previously_connected_team_id": "E9"}, "T2"
        )
        s.stage.offer(
            {"type": "channel_unshared", "channel": "C2", "previously_connected_team_id": "T2"}, "T3"
        )
        s.message("5.0", "T2", channel="C1")
        s.message("5.0", "T3", channel="C2")
        await s.answered(2)
        assert ((await election(store, "C1")).team, (await election(store, "C2")).team) == ("T2", "T3")
        assert {(e.channel, e.type) for e, _, _ in s.dispatched} >= {("C1", "channel_unshared")}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_with_no_live_candidate_left_the_election_is_cleared_and_the_next_event_elects_afresh() -> None:
    """T1 alone was a candidate (the election was made without conversations.info). T1's bot
    leaves: cleared. The next message, read by T2, elects again from conversations.info, which
    still names T1 (host, lowest id): T1 left, so T2, the team that read it, answers."""
    store = MemoryStore()
    s = Stack(store, {"T1", "T2"}, info={"conversation_host_id": "T1", "shared_team_ids": ["T1", "T2"]})
    await store.renew_alive(["T1", "T2"], "sockets", 600_000)
    await store.elect("C1", "T1", ["T1"])
    task = asyncio.create_task(s.stage.run(), name="test:decider")
    try:
        with capture_logs() as logs:
            s.stage.offer({"type": "channel_left", "channel": "C1"}, "T1")
            await wait_until(lambda: "channel_left" in s.types(), 5, "the fact")
            assert await store.election("C1") is None
            s.message("6.0", "T2")
            await s.answered(1)
        again = await election(store)
        assert (again.team, again.reason, again.epoch) == ("T2", "elected", 3)
        assert s.answers() == [("6.0", "T2", "handled")]
        [line] = [e for e in logs if e["event"] == "election.moved"]
        assert (line["decision"], line["team_id"]) == ("cleared", None)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_copy_held_before_the_fact_is_answered_when_the_fact_arrives(stack: Stack) -> None:
    """T2's copy was held for T1 (which was alive); then T1's bot leaves: no waiting the grace."""
    stack.message("7.0", "T2")
    await wait_until(lambda: stack.stage.counters.standby == 1, 5, "the held copy")
    stack.stage.offer({"type": "channel_left", "channel": "C1"}, "T1")
    await stack.answered(1)
    assert stack.answers() == [("7.0", "T2", "rescued")]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ({"type": "app_uninstalled"}, "app_uninstalled"),
        ({"type": "tokens_revoked", "tokens": {"oauth": ["W9"], "bot": ["UBOT1"]}}, "tokens_revoked"),
    ],
)
async def test_uninstalled_or_revoked_stops_the_team_and_moves_its_elections(
    stack: Stack, frame: dict[str, Any], reason: str
) -> None:
    """Events API events (Socket Mode): delivered once per app, for the installation concerned."""
    stack.message("8.0", "T1", "T2")
    await stack.answered(1)  # the stage learns T1 answers in C1
    stack.stage.intake.offer(frame, "T1", "E1", ("T1", "T2", "T3"), "Ev8")
    stack.message("9.0", "T2")
    await stack.answered(2)
    assert stack.retired == [("T1", reason)]
    assert not await stack.store.alive(["T1"])
    moved = await election(stack.store)
    assert (moved.team, moved.reason) == ("T2", reason)
    assert stack.answers()[1] == ("9.0", "T2", "handled")
    assert reason in stack.types()


async def test_revoked_user_tokens_only_leave_the_bot_answering(stack: Stack) -> None:
    stack.stage.intake.offer(
        {"type": "tokens_revoked", "tokens": {"oauth": ["W9"]}}, "T1", "E1", ("T1",), "Ev9"
    )
    stack.message("10.0", "T1")
    await stack.answered(1)
    assert stack.retired == [] and (await election(stack.store)).team == "T1"


async def test_a_team_the_supervisor_stopped_is_moved_away_from_at_once(stack: Stack) -> None:
    """What the supervisor offers when a team's token died: every conversation the stage knows
    the team answers in moves; the others move on their next standby copy (heartbeat gone)."""
    await stack.store.elect("C2", "T1", ["T1", "T3"])
    stack.message("11.0", "T1", channel="C1")
    await stack.answered(1)
    stack.stopped.add("T1")
    await stack.store.release_alive(["T1"], "sockets")
    stack.stage.offer({"type": TEAM_STOPPED, "reason": "token_revoked"}, "T1")
    await wait_until(lambda: TEAM_STOPPED in stack.types(), 5, "the fact")
    assert (await election(stack.store, "C1")).reason == "team_stopped"
    stack.message("12.0", "T3", channel="C2")  # C2 was never decided here: found by its heartbeat
    await stack.answered(2)
    assert stack.answers()[1] == ("12.0", "T3", "rescued")
    moved = await election(stack.store, "C2")
    assert (moved.team, moved.reason) == ("T3", "heartbeat_lapsed")
    assert stack.retired == []  # the supervisor stopped it itself


async def test_a_standby_copy_whose_responsible_heartbeat_lapsed_is_answered_at_once(stack: Stack) -> None:
    await stack.store.release_alive(["T1"], "sockets")  # T1's process died; its heartbeat lapsed
    stack.message("13.0", "T2")
    await stack.answered(1)
    assert stack.answers() == [("13.0", "T2", "rescued")]
    await wait_until(lambda: stack.elector.takeovers == 1, 5, "the takeover")
    stack.message("14.0", "T2")
    await stack.answered(2)
    assert stack.answers()[1] == ("14.0", "T2", "handled")


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.alive_calls = 0

    async def alive(self, teams: Any) -> set[str]:
        self.alive_calls += 1
        return await super().alive(teams)


async def test_an_ordinary_message_costs_no_heartbeat_round_trip_and_a_standby_one_per_trust_window() -> None:
    store = CountingStore()
    s = Stack(store, {"T1", "T2"})
    await store.renew_alive(["T1", "T2"], "sockets", 600_000)
    await store.elect("C1", "T1", ["T1", "T2"])
    task = asyncio.create_task(s.stage.run(), name="test:decider")
    try:
        for n in range(20):
            s.message(f"{n}.0", "T1", "T2")  # the responsible copy in the same batch: handled
        await s.answered(20)
        assert store.alive_calls == 0
        for n in range(20, 40):  # the standby's copies, each decided in a batch of its own
            s.message(f"{n}.0", "T2")
            await wait_until(lambda n=n: s.stage.counters.standby == n - 19, 5, "held")
            s.message(f"{n}.0", "T1")
        await s.answered(40)
        assert store.alive_calls == 1  # T1 learnt alive once, trusted for the window (60 s here)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("kind", [GRANTED, "team_access_revoked"])
def test_a_hostile_team_ids_list_keeps_only_its_team_ids_and_never_raises(kind: str) -> None:
    """``str()`` of a 1,000-deep array raises RecursionError: it must not reach the decider (a
    fact that raises there fails its whole batch, legitimate events and all)."""
    deep: Any = []
    for _ in range(1000):
        deep = [deep]
    event = normalise({"type": kind, "team_ids": [deep, 7, "T0TEAM002"]}, team_id="T0TEAM001", enterprise_id="E0GRID001")
    fact = fact_of(event, Bots())
    assert fact is not None and fact.teams == frozenset({"T0TEAM002"})
    assert fact.kind is (Kind.GRANT if kind == GRANTED else Kind.GONE)
    only_junk = normalise({"type": kind, "team_ids": [deep, {}]}, team_id="T0TEAM001", enterprise_id="E0GRID001")
    assert fact_of(only_junk, Bots()) is None
