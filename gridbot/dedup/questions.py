"""The units the dedup stage works in: a copy (one team's delivery) and a question (an event's
copies, asked of the store once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from structlog.typing import FilteringBoundLogger

from gridbot.bots import Bots
from gridbot.events import Event, FrameError, normalise
from gridbot.logs import get_logger

log = get_logger("gridbot.dedup")


def local_key(channel: str, key: str) -> str:
    """An event's key within this process: its conversation and :func:`gridbot.events.event_key`."""
    return f"{channel}:{key}"


class Copy:
    """A delivery merged into a waiting question as its raw frame: it becomes an :class:`Event`
    only if it is the copy chosen for the handler (normalising is the largest cost of a delivery,
    and two of every three copies are never looked at again).

    A copy for a team that is not the conversation's responsible team (as the last decision there
    said) keeps no frame at all (``frame`` is None): it would only be freed later, and holding
    thousands of frames until their batch is decided made every allocation on the read path
    slower (profiled: a third of gridbot's cost per message in a flood).
    """

    __slots__ = ("enterprise_id", "event_id", "frame", "team_id")

    def __init__(
        self, frame: dict[str, Any] | None, team_id: str, enterprise_id: str | None, event_id: str | None
    ) -> None:
        self.frame = frame
        self.team_id = team_id
        self.enterprise_id = enterprise_id
        self.event_id = event_id

    def event(self) -> Event:
        if self.frame is None:
            raise FrameError("copy_not_kept")
        return normalise(
            self.frame, team_id=self.team_id, enterprise_id=self.enterprise_id, event_id=self.event_id
        )

    def wrote_by(self, bots: Bots) -> bool:
        # Checked when it was merged: only a copy none of our bots wrote drops its frame.
        return self.frame is not None and bots.wrote_frame(self.frame)


Item = tuple[Event | Copy, tuple[str, ...]]  # a delivery and the teams it speaks for


@dataclass(slots=True)
class Ask:
    """One question for the store: the copies of one event that arrived before it was asked.

    ``local`` is None for a delivery that must be looked at alone before its question (a fact
    such as a join, see :mod:`gridbot.dedup.facts`; a bot we do not know yet; an event with
    nothing to dedup on): it is never merged on arrival.
    """

    channel: str | None
    local: str | None  # local_key(channel, key)
    first: Event  # the copy that opened the question (always normalised)
    items: list[Item] = field(default_factory=list)  # every copy, ``first`` first
    covers: tuple[str, ...] = ()  # every team the copies speak for (a team twice is harmless)

    @property
    def key(self) -> str:
        """The store's key for the event (``local`` without the conversation)."""
        if self.local is not None and self.channel is not None:
            return self.local[len(self.channel) + 1 :]
        return self.first.dedup_key or ""

    def add_covers(self, covers: tuple[str, ...]) -> None:
        """Add the teams a merged copy speaks for (a redelivery storm must not grow the tuple)."""
        for team in covers:
            if team not in self.covers:
                self.covers += (team,)


UNREADABLE = Event("", None, "unreadable", None, None, None, None, None, None, None, None, "", None, {})


def log_decision(logger: FilteringBoundLogger, event: Event, decision: str, **extra: str | None) -> None:
    """The debug line for one delivery's decision (``event.decided``); callers check the level
    first: the call alone, keywords and all, cost more than the decision itself (profiled)."""
    logger.debug(
        "event.decided",
        team_id=event.team_id,
        enterprise_id=event.enterprise_id,
        channel=event.channel,
        ts=event.ts,
        type=event.type,
        decision=decision,
        **extra,
    )


def materialise(copy: Event | Copy, fallback: Event) -> Event:
    """The chosen copy as an Event; a copy whose frame does not normalise yields ``fallback``
    (the same message as another of our teams received it), and is logged like any bad frame."""
    if isinstance(copy, Event):
        return copy
    try:
        return copy.event()
    except FrameError as exc:
        log.warning("frame.dropped", reason=exc.reason, team_id=copy.team_id, stage="dedup")
        return fallback
