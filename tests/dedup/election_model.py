"""Which team may answer a message: the stateful test's model of one conversation's election.

The rules are the README's ("How it works", step 3, and "Guarantees in one paragraph") and the
store's contract (``gridbot/store/base.py``: ``elect``, ``depart``, ``takeover``); the store
itself is never read. An election is chosen on the first event: the host team, unless its bot
left the conversation, then the team that saw the event. Our bot leaving (``channel_left``) moves
the election at once to the lowest candidate whose heartbeat is up, or clears it so that the next
event elects afresh; the team that left is no candidate there again. A rescue while the
responsible team's heartbeat has lapsed moves it to the lowest live candidate, else the standby.

The model does not know when the decider gets to a fact, nor what a rescue's takeover saw, so it
keeps every state the store may be in (:class:`State`), and a message may be answered by the team
of any state the conversation passed through while the message waited. A fact leaves that
uncertainty once the process that read it is seen idle: then every state has it applied.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace

Alive = frozenset[str]  # teams whose heartbeat is up


@dataclass(frozen=True, slots=True)
class State:
    """What the store's election of one conversation may hold."""

    team: str | None  # None: nobody elected (never, or cleared): the next event elects
    ever: bool = False  # a team was elected once (None then means cleared)
    candidates: frozenset[str] = frozenset()
    left: frozenset[str] = frozenset()  # teams whose bot left: not elected again until they join
    applied: frozenset[int] = frozenset()  # pending facts (by id) this state has seen applied


def elect(state: State, host: str, members: Collection[str], via: str) -> State:
    """The first event's election (``Elector.ensure``, ``Store.elect``): the host, unless its bot
    left, then ``via``, the team that saw the event (chosen even if it left: it is there)."""
    if state.team is not None:
        return state
    team = host if host not in state.left else via
    left = state.left - {team}
    candidates = (state.candidates | set(members) | {via, team}) - left
    return replace(state, team=team, ever=True, candidates=candidates, left=left)


def lowest(candidates: Iterable[str], alive: Alive) -> str | None:
    """``Elector._successor``: the lowest candidate whose heartbeat is up (every team is installed)."""
    return min((t for t in candidates if t in alive), default=None)


def leave(state: State, fact: int, team: str, alive: Alive) -> State:
    """``team``'s bot left (``Elector.apply`` of a LEAVE fact, ``Store.depart`` with ``left``)."""
    moving = state.team == team
    successor = lowest(state.candidates - {team}, alive) if moving else None
    candidates = (state.candidates | ({successor} if successor else set())) - {team}
    return replace(
        state,
        team=successor if moving else state.team,
        candidates=candidates,
        left=state.left | {team},
        applied=state.applied | {fact},
    )


def takeover(state: State, standby: str, alive: Alive) -> State:
    """After ``standby`` rescued an event (``Elector.check_takeover``): if the responsible team's
    heartbeat has lapsed the election moves to the lowest live candidate, else to the standby."""
    if state.team is None or state.team in alive:
        return state
    successor = lowest(state.candidates - {state.team}, alive) or standby
    return replace(state, team=successor, candidates=state.candidates | {successor})


@dataclass(slots=True)
class Pending:
    """A fact read by a process, or a rescue's takeover: it may happen any time until the process
    that has it is seen idle."""

    process: str
    team: str  # the team whose bot left / the standby team that rescued
    fact: int | None  # the fact's id (the order it was read in); None for a takeover


class Conversation:
    """Every state one conversation's election may be in, and what may change it."""

    def __init__(self, host: str, members: Collection[str]) -> None:
        self.host = host
        self.members = frozenset(members)
        self.states: set[State] = {State(None)}
        self.readers: set[str] = set()  # teams that read a message here: the elections' ``via``
        self.pending: list[Pending] = []

    def teams(self) -> set[str]:
        """The teams that may be responsible now."""
        return {s.team for s in self.states if s.team is not None}

    def close(self, window: Collection[Alive]) -> None:
        """Add every state reachable by what may happen now, under any heartbeats of ``window``."""
        todo = list(self.states)
        while todo:
            state = todo.pop()
            nexts = [elect(state, self.host, self.members, via) for via in self.readers]
            for p in self.pending:
                for alive in window:
                    if p.fact is None:
                        nexts.append(takeover(state, p.team, alive))
                    elif p.fact not in state.applied:
                        nexts.append(leave(state, p.fact, p.team, alive))
            for new in nexts:
                if new not in self.states:
                    self.states.add(new)
                    todo.append(new)

    def elected(self) -> None:
        """A message was answered here: an election was made (it may have been cleared since)."""
        self.states = {s for s in self.states if s.ever}

    def settle(
        self, idle: Callable[[str], bool], crashed: Callable[[str], bool], decided: Collection[int]
    ) -> None:
        """Let go of what has happened for sure: a fact is applied in every state (and forgotten)
        once its process is seen idle, or ``decided`` (see :meth:`Answering.sync`); a takeover
        is over once its process is idle or crashed."""
        keep: list[Pending] = []
        for p in self.pending:
            if p.fact is not None and (p.fact in decided or (idle(p.process) and not crashed(p.process))):
                fact = p.fact
                self.states = {
                    replace(s, applied=s.applied - {fact}) for s in self.states if fact in s.applied
                }
            elif p.fact is None and (idle(p.process) or crashed(p.process)):
                pass
            else:
                keep.append(p)
        self.pending = keep


@dataclass(frozen=True, slots=True)
class Answer:
    """One message handled: by which process and team, how, and when (``time.monotonic``)."""

    process: str
    channel: str
    ts: str
    team: str
    decision: str  # "handled" (the store's election chose it) or "rescued" (a standby's copy)
    at: float


@dataclass(slots=True)
class Message:
    allowed: set[str]  # every team that may have been responsible while it waited
    reads: set[str]  # teams whose copy a live process read
    order: dict[str, int] = field(default_factory=dict)  # process -> the order of its first read
    answered: bool = False


class Answering:
    """The expected answering team of every message, checked against what was handled.

    A message is handled by a team that may have been responsible while it waited. A standby
    team's rescue is wrong where the model is sure who was responsible (one team, all along) and
    the rescuing team is that team: its own copy was held as a standby team's.

    Not checked: whether the responsible team's copy came within the grace. The test's loop runs
    only during a step, while the grace runs on the wall clock, so a decision that needs several
    round trips (an election first) can lose to a rescue on a slow machine without any fault.
    """

    def __init__(
        self, hosts: dict[str, str], members: dict[str, tuple[str, ...]], teams: Collection[str]
    ) -> None:
        self.conversations = {c: Conversation(hosts[c], members[c]) for c in members}
        self.alive: set[Alive] = {frozenset(teams)}  # the heartbeats as they may be now
        self.window: set[Alive] = set(self.alive)  # ... and as they may have been since the last sync
        self.messages: dict[tuple[str, str], Message] = {}
        self._reads = 0  # messages and facts read, in order

    # -- what the test did ---------------------------------------------------------------------

    def posted(self, channel: str, ts: str) -> None:
        self.messages[channel, ts] = Message(self.conversations[channel].teams(), set())

    def read(self, channel: str, ts: str, team: str, process: str) -> None:
        self._reads += 1
        self.conversations[channel].readers.add(team)
        message = self.messages[channel, ts]
        message.reads.add(team)
        message.order.setdefault(process, self._reads)

    def left(self, channel: str, team: str, process: str) -> None:
        self._reads += 1
        self.conversations[channel].pending.append(Pending(process, team, self._reads))

    def heartbeat(self, team: str, alive: bool, *, done: bool) -> None:
        """``done``: the store answered (else the renewal or release may or may not have happened)."""
        changed = {a | {team} if alive else a - {team} for a in self.alive}
        self.alive = changed if done else self.alive | changed
        self.window |= self.alive

    # -- the check -----------------------------------------------------------------------------

    def sync(
        self,
        answers: Iterable[Answer],
        idle: Callable[[str], bool],
        crashed: Callable[[str], bool],
    ) -> None:
        """Check ``answers`` (new since the last sync, in the order they were handled) and move
        the model past what happened since the last sync.

        A process decides a conversation's deliveries in the order it read them, a fact before
        the events that came after it (``gridbot/dedup/decider.py``): once it answers a message
        it read only after a fact, that fact is applied.
        """
        self._close()
        decided: set[int] = set()
        for answer in answers:
            self._check(answer)
            message = self.messages[answer.channel, answer.ts]
            message.answered = True
            conversation = self.conversations[answer.channel]
            conversation.elected()
            after = message.order.get(answer.process, 0)
            decided |= {
                p.fact
                for p in conversation.pending
                if p.fact is not None and p.process == answer.process and p.fact < after
            }
            if answer.decision == "rescued":  # followed by Elector.check_takeover
                conversation.pending.append(Pending(answer.process, answer.team, None))
                self._close()
        for conversation in self.conversations.values():
            conversation.settle(idle, crashed, decided)
        self.window = set(self.alive)

    def _close(self) -> None:
        for conversation in self.conversations.values():
            conversation.close(self.window)
        for (channel, _), message in self.messages.items():
            if not message.answered:
                message.allowed |= self.conversations[channel].teams()

    def _check(self, answer: Answer) -> None:
        message = self.messages[answer.channel, answer.ts]
        what = f"{answer.channel} {answer.ts} {answer.decision} by {answer.team} in {answer.process}"
        allowed = sorted(message.allowed)
        if answer.decision == "handled":
            assert answer.team in message.allowed, f"{what}; the responsible team was one of {allowed}"
            return
        assert answer.team in message.reads, f"{what}, a team that never read it"
        if len(allowed) != 1:
            return
        responsible = allowed[0]
        assert answer.team != responsible, (
            f"{what}: its copy was held as a standby team's, though {responsible} was responsible all along"
        )
