"""Interactions: the transports' one entry for interactive payloads (:meth:`Interactions.offer`).

A payload is read (:mod:`gridbot.interactive.payload`), given a :class:`~gridbot.interactive.ack.Pending`
ack with its deadline, and offered to the dedup stage's intake like any delivery, keyed on its
``trigger_id`` (or envelope id) and with no conversation: the decider claims it in the store,
the same claim every event gets, so a payload that reaches two sockets or two processes is
handled once, and it never waits for a shared-channel election (it is addressed to one
installation). The claim's answer comes back through the intake's
:class:`~gridbot.dedup.outcomes.Outcomes`.

Slack applies whichever answer to a payload it gets, so a copy that lost the claim answers what
the winner answered: the winner records its ack in the store next to the claim (whatever acked:
its handler, its deadline, the router), and the copy waits for that record until its own ack
deadline (:mod:`gridbot.store.acks`): a balancer's retry on another replica still shows the
validation errors the handler answered. Nothing recorded by then (the winner is slow, the store
unreachable): the copy is acked empty, counted (``duplicates_unanswered``) and logged
(``interactive.duplicate_unanswered``). Socket Mode and HTTP share this path.

The router (:meth:`routed`, :meth:`unrouted`) and the context factory (:meth:`take`) find the
pending ack by the event's id, which is the payload's key.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any, Literal, Protocol

import orjson

from gridbot.dedup.outcomes import Outcomes
from gridbot.events import FrameError
from gridbot.interactive.ack import ACK_KEPT_MS, Acks, Pending, Send
from gridbot.interactive.payload import (
    Interaction,
    T,
    frame_of,
    interaction_key,
    read_interaction,
    serving_team,
)
from gridbot.logs import get_logger
from gridbot.store.base import Store, StoreUnavailable
from gridbot.transport.link import FrameIntake

log = get_logger("gridbot.interactive")

FORGET_AFTER = 120.0  # seconds a payload never dispatched (the store down throughout) is kept


class DeliveryIntake(FrameIntake, Protocol):
    """What the interactions and the Events API listener need of the dedup stage's intake
    (:class:`gridbot.dedup.Intake`): a link's :class:`FrameIntake`, and the answers to waiting
    transports."""

    @property
    def outcomes(self) -> Outcomes: ...

    def handed_over(self) -> None: ...


class Interactions:
    """Pending acks by key, from arrival until their handler's context takes them.

    It is also the intake the supervisor hands its links: every other delivery goes straight to
    the dedup stage's intake (``offer`` *is* that intake's method: no call in between), and a
    Socket Mode link or the Events API listener given this object hands its interactive
    payloads to :meth:`offer_interaction`.
    """

    def __init__(self, intake: DeliveryIntake, acks: Acks | None = None, store: Store | None = None) -> None:
        self._intake = intake
        self._store = store  # where winners record their acks (None: copies are acked empty)
        self.offer = intake.offer
        self.handed_over = intake.handed_over
        self.acks = acks or Acks()
        self.counters = self.acks.counters
        self.offered = 0  # payloads handed to the intake: each is decided once, handled or duplicate
        self._pending: dict[str, Pending] = {}
        self._forget: dict[str, asyncio.TimerHandle] = {}
        self._records: set[asyncio.Task[None]] = set()  # acks being recorded
        self._copies: set[asyncio.Task[None]] = set()  # copies waiting for their winner's ack

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def outcomes(self) -> Outcomes:
        """The dedup stage's answers to waiting transports (the Events API listener's too)."""
        return self._intake.outcomes

    @property
    def open(self) -> asyncio.Event:
        """The dedup stage's intake is open (links stop reading while it is not)."""
        return self._intake.open

    # -- the transports' side ----------------------------------------------------------------

    def offer_interaction(
        self,
        envelope_type: str,
        payload: Mapping[str, Any],
        by_id: Mapping[str, T],
        teams: Iterable[T],
        send: Send,
        envelope_id: str | None = None,
    ) -> tuple[T, Pending]:
        """Take one payload: ``send`` writes its ack (once). Returns the serving team and the
        pending ack. Raises :class:`FrameError` for a payload that cannot be handled (the
        transport acks it empty and logs it)."""
        interaction = read_interaction(envelope_type, payload)
        team, enterprise = serving_team(interaction, by_id, teams)
        key = interaction_key(interaction, envelope_id)
        pending = Pending(key, interaction, team.team_id, send, self.acks.clock())
        if key in self._pending:  # a second copy on this process while the first is pending
            self._duplicate(pending)
            return team, pending
        self._pending[key] = pending
        self.acks.arm(pending)
        outcomes = self._intake.outcomes
        decided = functools.partial(self._decided, pending)
        outcomes.expect(key, decided)
        try:
            self._intake.offer(frame_of(interaction), team.team_id, enterprise, (team.team_id,), key)
        except FrameError:
            outcomes.cancel(key, decided)
            self._drop(pending)
            raise
        self.offered += 1
        loop = asyncio.get_running_loop()
        self._forget[key] = loop.call_later(FORGET_AFTER, self._drop, pending)
        return team, pending

    def _decided(self, pending: Pending, outcome: str) -> None:
        """The dedup stage's decision about a payload's claim."""
        if outcome == "handled":
            self._won(pending)
        elif outcome == "duplicate":
            self._drop(pending)
            self._duplicate(pending)
        elif outcome == "dropped":  # the intake's buffer overflowed: never handled
            self._drop(pending)
            self.acks.empty(pending, "dropped")
        # handled: its handler acks; unavailable: it stays queued, the deadline acks meanwhile

    # -- copies: the winner records its ack, a copy answers with it --------------------------

    def _won(self, pending: Pending) -> None:
        """This copy won the payload's claim: its ack is recorded for the copies that lost it."""
        if self._store is None or pending.recorder is not None:
            return
        pending.recorder = self._record
        if pending.acked:  # acked before the claim was decided (the store was slow): record now
            self._record(pending)

    def _record(self, pending: Pending) -> None:
        self._spawn(self._records, self._store_ack(pending), "interactive:record-ack")

    async def _store_ack(self, pending: Pending) -> None:
        assert self._store is not None
        try:  # (bounded: a hung store must not hold a record past any copy's deadline)
            async with asyncio.timeout(self.acks.deadline):
                await self._store.record_ack(pending.key, orjson.dumps(pending.body).decode(), ACK_KEPT_MS)
        except TimeoutError:  # its copies will be acked empty at their deadline
            self._unrecorded(pending, "store_unavailable")
        except Exception as exc:
            self._unrecorded(pending, _failure(exc))

    def _unrecorded(self, pending: Pending, reason: str) -> None:
        i = pending.interaction
        log.warning("interactive.ack_unrecorded", key=pending.key, kind=i.kind, reason=reason)

    def _duplicate(self, pending: Pending) -> None:
        """Another copy of this payload won its claim (here or in another process): answer what
        that one's ack was, waiting for its record until this copy's deadline."""
        self.counters.duplicates += 1
        log.info(
            "interactive.duplicate", key=pending.key, kind=pending.interaction.kind, team_id=pending.team_id
        )
        if pending.acked:  # its deadline passed while the store decided
            return
        if pending.timer is not None:  # the wait owns this copy's deadline from here
            pending.timer.cancel()
            pending.timer = None
        self._spawn(self._copies, self._answer_copy(pending), "interactive:copy-ack")

    async def _answer_copy(self, pending: Pending) -> None:
        clock = self.acks.clock
        started = clock()
        left = pending.received + self.acks.deadline - started
        recorded: str | None = None
        reason = "not_recorded"
        try:
            if self._store is None:
                reason = "no_store"
            elif left > 0:
                async with asyncio.timeout(left):  # the store's wait ends first; this is the bound
                    recorded = await self._store.wait_ack(pending.key, left)
        except TimeoutError:
            pass
        except Exception as exc:  # whatever the store answered: the copy is answered, never left hanging
            reason = _failure(exc)
        except asyncio.CancelledError:  # shutdown: answered empty (the acks' close sends it)
            self._unanswered(pending, "stopping", clock() - started)
            raise
        body = _ack_of(recorded)
        if body is False:
            self._unanswered(pending, reason, clock() - started)
        else:
            await self._send_copy(pending, body)

    def _unanswered(self, pending: Pending, reason: str, waited: float) -> None:
        self.counters.duplicates_unanswered += 1
        log.warning(
            "interactive.duplicate_unanswered",
            key=pending.key,
            kind=pending.interaction.kind,
            team_id=pending.team_id,
            reason=reason,
            waited_s=round(waited, 3),
            total=self.counters.duplicates_unanswered,
        )
        self.acks.empty(pending, "duplicate")

    async def _send_copy(self, pending: Pending, body: dict[str, Any] | None) -> None:
        try:
            await pending.ack(body)
        except Exception as exc:  # a socket that closed meanwhile: the user sees Slack's error
            log.warning(
                "interactive.ack_failed",
                reason="duplicate",
                error=type(exc).__name__,
                team_id=pending.team_id,
            )

    def _spawn(self, tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _drop(self, pending: Pending) -> None:
        if self._pending.get(pending.key) is pending:
            del self._pending[pending.key]
        timer = self._forget.pop(pending.key, None)
        if timer is not None:
            timer.cancel()

    # -- the router's and the context factory's side -------------------------------------------

    def get(self, key: str | None) -> Pending | None:
        return self._pending.get(key) if key is not None else None

    def unrouted(self, pending: Pending) -> None:
        """No handler answers it: ack empty now (Slack shows the user nothing), and say so."""
        self._drop(pending)
        self._won(pending)
        self.counters.empty_unrouted += 1
        i = pending.interaction
        log.warning(
            "interactive.unrouted",
            kind=i.kind,
            command=i.command,
            action_id=i.action_id,
            block_id=i.block_id,
            callback_id=i.callback_id,
            team_id=pending.team_id,
        )
        self.acks.empty(pending, "unrouted")

    def take(self, key: str | None) -> Pending | None:
        """The pending ack of a payload whose handler starts now (it leaves the registry)."""
        pending = self._pending.get(key) if key is not None else None
        if pending is not None:
            self._drop(pending)
            self._won(pending)  # (only a payload that won its claim is dispatched)
        return pending

    async def close(self) -> None:
        """Shutdown (the sockets are closed, the handlers drained): no deadline fires after it."""
        for timer in self._forget.values():
            timer.cancel()
        self._forget.clear()
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self._pending.clear()
        for task in self._copies:
            task.cancel()
        await asyncio.gather(*self._copies, return_exceptions=True)
        await self.acks.close()  # (its empty acks may start records: none is of use any more)
        for task in self._records:
            task.cancel()
        await asyncio.gather(*self._records, return_exceptions=True)


def _failure(exc: Exception) -> str:
    """How a log line names a store's failure to record or give back an ack."""
    if isinstance(exc, StoreUnavailable):
        return "store_unavailable"
    if isinstance(exc, NotImplementedError):  # a store without recorded acks (a test's fake)
        return "unsupported"
    return type(exc).__name__  # an error reply: NOPERM, a server without BLMOVE...


def _ack_of(recorded: str | None) -> dict[str, Any] | Literal[False] | None:
    """The ack a winner recorded (None: empty); False if there is none (or it is unreadable)."""
    if recorded is None:
        return False
    try:
        body = orjson.loads(recorded)
    except orjson.JSONDecodeError:
        return False
    return body if body is None or isinstance(body, dict) else False


def describe(interaction: Interaction) -> str:
    """How a log line or an error names a payload: ``/deploy``, ``block_actions approve`` ..."""
    if interaction.command:
        return interaction.command
    name = interaction.action_id or interaction.callback_id or ""
    return f"{interaction.kind} {name}".strip()
