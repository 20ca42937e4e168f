"""A message's story: who wrote it, the copy each team's socket got, what gridbot decided about
each copy, which team was elected and which answered, the replies, and any takeover it caused.

Assembled from three sources that arrive in any order: the playground's own post (author, text),
the simulator's delivery records (which team's socket got a copy) and the runtime's
``event.decided`` log lines (the decision for each copy). A reply is matched to the message it
answers by its thread, or else as the latest message its team handled in that conversation (the
runtime does not log which post answers which message; typing one message at a time, as a person
does, makes the match exact).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LIMIT = 300  # stories kept: the page shows the latest; memory stays bounded however long it runs
QUIET_AFTER = 2.0  # seconds after which a copy with no decision is shown as "not logged"
HANDLING = ("handled", "rescued")


@dataclass
class Copies:
    """What one team's sockets got of a message, and the decisions about those copies."""

    sockets: list[int] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)


@dataclass
class Story:
    channel: str
    ts: str
    at: float = field(default_factory=time.time)
    user: str | None = None
    text: str | None = None
    source_team: str | None = None
    copies: dict[str, Copies] = field(default_factory=dict)
    handled_by: str | None = None
    how: str | None = None  # handled, or rescued (a standby team's copy, after the grace period)
    elected: str | None = None  # the conversation's responsible team when the copies were decided
    replies: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    takeover: dict[str, Any] | None = None
    quiet: bool = False  # QUIET_AFTER passed: a copy still without a decision was not logged

    def team(self, team: str) -> Copies:
        copies = self.copies.get(team)
        if copies is None:
            copies = self.copies[team] = Copies()
        return copies

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "ts": self.ts,
            "at": round(self.at, 3),
            "user": self.user,
            "text": self.text,
            "source_team": self.source_team,
            "copies": [
                {"team": team, "sockets": c.sockets, "decisions": c.decisions}
                for team, c in sorted(self.copies.items())
            ],
            "handled_by": self.handled_by,
            "how": self.how,
            "elected": self.elected,
            "replies": self.replies,
            "errors": self.errors,
            "takeover": self.takeover,
            "quiet": self.quiet,
        }


class Stories:
    """Every message's story, by (conversation, ts); each change is handed to ``publish``."""

    def __init__(self, publish: Callable[[dict[str, Any]], object], limit: int = LIMIT) -> None:
        self._publish = publish
        self._limit = limit
        self._stories: OrderedDict[tuple[str, str], Story] = OrderedDict()
        self._last_handled: dict[tuple[str, str], Story] = {}  # (channel, team) -> latest story

    def all(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self._stories.values()]

    def get(self, channel: str, ts: str) -> Story | None:
        return self._stories.get((channel, ts))

    def _open(self, channel: str, ts: str) -> Story:
        story = self._stories.get((channel, ts))
        if story is None:
            story = self._stories[(channel, ts)] = Story(channel, ts)
            while len(self._stories) > self._limit:
                _, gone = self._stories.popitem(last=False)
                for key in [k for k, s in self._last_handled.items() if s is gone]:
                    del self._last_handled[key]
        return story

    def _changed(self, story: Story) -> None:
        self._publish(story.to_json())

    # -- the sources ---------------------------------------------------------------------------

    def posted(self, channel: str, ts: str, *, user: str, text: str, source_team: str | None) -> None:
        """The playground posted a message as ``user`` (decisions may have come in already)."""
        story = self._open(channel, ts)
        story.user, story.text, story.source_team = user, text, source_team
        self._changed(story)

    def delivered(self, team: str, socket: int, channel: str | None, ts: str | None) -> None:
        """The simulator wrote a copy to one of ``team``'s sockets (only known messages count)."""
        story = self._stories.get((channel, ts)) if channel and ts else None
        if story is not None:
            story.team(team).sockets.append(socket)
            self._changed(story)

    def decided(self, fields: dict[str, Any]) -> None:
        """One ``event.decided`` line: the decision about one team's copy of a message."""
        channel, ts, team = fields.get("channel"), fields.get("ts"), fields.get("team_id")
        decision = fields.get("decision")
        if fields.get("type") != "message" or not (channel and ts and team and decision):
            return
        story = self._open(channel, ts)
        story.team(team).decisions.append(decision)
        if decision in HANDLING:
            story.handled_by = fields.get("handled_by") or team
            story.how = decision
            story.elected = story.elected or (story.handled_by if decision == "handled" else None)
            self._last_handled[(channel, story.handled_by)] = story
        elif decision == "standby":
            story.elected = fields.get("responsible") or story.elected
        self._changed(story)

    def replied(self, *, team: str | None, channel: str, text: str, ts: str, thread_ts: str | None) -> None:
        """A bot posted in ``channel``: attach it to the message it answers, if one is known."""
        story = self._stories.get((channel, thread_ts)) if thread_ts else None
        if story is None and team is not None:
            story = self._last_handled.get((channel, team))
        if story is not None:
            story.replies.append({"team": team, "text": text[:2000], "ts": ts})
            self._changed(story)

    def failed(self, fields: dict[str, Any]) -> None:
        """A handler raised or timed out while handling a known message."""
        story = self._stories.get((fields.get("channel") or "", fields.get("ts") or ""))
        if story is not None:
            what = fields.get("exception") or (f"timed out after {fields.get('timeout_s')} s")
            story.errors.append(f"{fields.get('plugin')}.{fields.get('handler')}: {what}")
            self._changed(story)

    def took_over(self, channel: str, previous: str | None, team: str | None) -> None:
        """An election moved: mark the latest message rescued in that conversation as its cause."""
        for story in reversed(self._stories.values()):
            if story.channel == channel and story.how == "rescued":
                if story.takeover is None:
                    story.takeover = {"previous": previous, "team": team}
                    self._changed(story)
                return

    def tick(self, now: float | None = None) -> None:
        """Mark copies that never got a decision line as not logged, once they are old enough."""
        now = time.time() if now is None else now
        for story in reversed(self._stories.values()):
            if now - story.at < QUIET_AFTER:
                continue
            if story.quiet:
                break  # older ones were marked before
            story.quiet = True
            self._changed(story)  # "no copy yet" becomes "no copy", "…" becomes "not logged"
