"""Outcomes: how the dedup stage tells a waiting transport what became of one delivery.

Over RTM and Socket Mode nothing waits: a frame is read (and a Socket Mode envelope acked) before
the dedup stage sees it. The Events API over HTTP is different: Slack retries a delivery it did
not get a 2xx for, so the receiver answers only once the store has decided the event (a claim in
Redis is what makes the 200 safe) and asks Slack to retry when it could not be decided.

The receiver registers a callback for an ``event_id`` *before* it offers the delivery
(:meth:`Outcomes.expect`); the intake and the decider call :meth:`Outcomes.settle` where they
settle a question, and only when something is registered (``if outcomes:``), so RTM and Socket
Mode pay one truthiness test per question, nothing per delivery. A callback is called once, with
one of :data:`ACCEPTED` (the event is handled, or needs no handling: answer 200) or the reasons to
answer 503 (:data:`RETRY`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gridbot.dedup.questions import Item

# The event is decided: handled here, handled elsewhere (duplicate), or our own bot's message.
ACCEPTED = frozenset({"handled", "rescued", "duplicate", "own_message"})
# Not decided, so not acknowledged: the sender should deliver it again later.
RETRY = frozenset({"unavailable", "dropped", "unelected"})

Ack = Callable[[str], None]


class Outcomes:
    """Callbacks waiting for the decision of an event, by ``event_id`` (or, while a standby copy
    is held, by the event's local key)."""

    __slots__ = ("_by_event", "_by_key", "store_ok")

    def __init__(self) -> None:
        self._by_event: dict[str, list[Ack]] = {}
        self._by_key: dict[str, list[Ack]] = {}
        self.store_ok = True  # False from a failed store round trip to the next good one

    def __bool__(self) -> bool:
        return bool(self._by_event) or bool(self._by_key)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._by_event

    def __len__(self) -> int:
        return sum(map(len, self._by_event.values())) + sum(map(len, self._by_key.values()))

    # -- the waiting transport -------------------------------------------------------------------

    def expect(self, event_id: str, ack: Ack) -> None:
        """Call ``ack`` with the outcome of the next decision about ``event_id``."""
        waiting = self._by_event.get(event_id)
        if waiting is None:
            self._by_event[event_id] = [ack]
        else:
            waiting.append(ack)

    def cancel(self, event_id: str, ack: Ack) -> None:
        """The transport stopped waiting (its deadline passed, its client left)."""
        waiting = self._by_event.get(event_id)
        if waiting is not None and ack in waiting:
            waiting.remove(ack)
            if not waiting:
                del self._by_event[event_id]

    # -- the dedup stage -------------------------------------------------------------------------

    def settle_one(self, event_id: str | None, outcome: str) -> None:
        if event_id is not None:
            _call(self._by_event.pop(event_id, None), outcome)

    def settle(self, items: Iterable[Item], outcome: str) -> None:
        """Every copy of a question got ``outcome``."""
        for copy, _ in items:
            if copy.event_id is not None:
                _call(self._by_event.pop(copy.event_id, None), outcome)

    def hold(self, key: str, items: Iterable[Item]) -> None:
        """The question is a standby copy held under ``key``: its waiters wait for the hold's end."""
        for copy, _ in items:
            if copy.event_id is not None:
                waiting = self._by_event.pop(copy.event_id, None)
                if waiting:
                    self._by_key.setdefault(key, []).extend(waiting)

    def settle_key(self, key: str, outcome: str) -> None:
        """The standby copy held under ``key`` ended: claimed by another copy, or rescued."""
        if self._by_key:
            _call(self._by_key.pop(key, None), outcome)

    def unavailable(self) -> None:
        """The store did not answer: every waiter is told so (the deliveries stay queued and are
        decided when it answers again; the sender's retry is then a duplicate)."""
        self.store_ok = False
        by_event, by_key = self._by_event, self._by_key
        self._by_event, self._by_key = {}, {}
        for waiting in [*by_event.values(), *by_key.values()]:
            _call(waiting, "unavailable")

    def available(self) -> None:
        self.store_ok = True


def _call(waiting: list[Ack] | None, outcome: str) -> None:
    if waiting:
        for ack in waiting:
            ack(outcome)
