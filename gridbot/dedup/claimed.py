"""What the dedup stage remembers between decisions: claimed keys, who answers where, and whose
heartbeat is up.

Both are bounded hints that spare work, never decisions: forgetting a claimed key costs one round
trip (the store still answers "duplicate"), forgetting a responsible team costs one kept frame.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable


class ClaimedKeys:
    """Local keys of events known to be claimed (by us, or by anyone as the store told us).

    Holds at least the last ``cap // 2`` keys added and at most ``cap``: two generations of plain
    sets, and when the young one is full it becomes the old one and the previous old one is
    dropped whole. Half the cost per key of an ``OrderedDict`` evicting one at a time (measured:
    about 0.3 against 0.6-0.85 us for a lookup, an add and an eviction at 200,000 keys).
    """

    __slots__ = ("_half", "_old", "_young")

    def __init__(self, cap: int = 200_000) -> None:
        self._half = max(1, cap // 2)
        self._young: set[str] = set()
        self._old: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self._young or key in self._old

    def add(self, key: str) -> None:
        young = self._young
        young.add(key)
        if len(young) >= self._half:
            self._old, self._young = young, set()


class ResponsibleHints:
    """The responsible team per conversation as the last decision there said.

    The intake keeps the frame only of copies from that team (see :class:`gridbot.dedup.questions.Copy`).
    """

    __slots__ = ("_cap", "_teams")

    def __init__(self, cap: int = 200_000) -> None:
        self._cap = cap
        self._teams: dict[str, str] = {}

    def get(self, channel: str, default: str) -> str:
        return self._teams.get(channel, default)

    def channels_of(self, teams: Collection[str]) -> list[str]:
        """Conversations the last decision there said one of ``teams`` answers in (a scan: for
        the rare team that is gone)."""
        return [channel for channel, team in self._teams.items() if team in teams]

    def note(self, channel: str | None, team: str | None) -> None:
        if channel is None or team is None or self._teams.get(channel) == team:
            return
        if len(self._teams) >= self._cap:  # a hint: forgetting costs one kept frame
            self._teams.clear()
        self._teams[channel] = team


class Heartbeats:
    """What the decider last learnt of responsible teams' heartbeats, trusted for ``trust`` seconds.

    A hint that spares round trips: a standby copy for a team known alive waits out the grace
    (its own copy is normally a batch behind); one for a team known gone is rescued at once; for
    a team not known, the decider asks the store after the batch (one round trip for all such
    teams of a batch, so at most one per team every ``trust`` seconds, and none for a batch whose
    standby teams are all known).
    """

    __slots__ = ("_known", "_trust")

    def __init__(self, trust: float = 1.0) -> None:
        self._trust = trust
        self._known: dict[str, tuple[bool, float]] = {}  # team -> (alive, trusted until)

    def get(self, team: str, now: float) -> bool | None:
        """True alive, False gone, None not known (never asked, or asked too long ago)."""
        known = self._known.get(team)
        if known is None or known[1] <= now:
            return None
        return known[0]

    def learn(self, teams: Iterable[str], alive: Collection[str], now: float) -> None:
        until = now + self._trust
        for team in teams:
            self._known[team] = (team in alive, until)
