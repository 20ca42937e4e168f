"""The soak's verdict: every message sent is classified, and every loss it excuses has a window.

A message is **answered** (exactly one reply), a **duplicate** (more than one: always a failure) or
unanswered. An unanswered message is excused only when the records show why, inside a window no
wider than the fault explains (:class:`Windows`, documented in README "The chaos soak"):

* ``no reader``: when it was sent, no live installation of the app was a member of the
  conversation (a bot left or was unshared from it, or its team was uninstalled). The simulator
  wrote no copy of it; one written anyway makes it lost.
* ``undelivered``: no copy reached a gridbot socket: no RTM copy was written (no socket up) and no
  Socket Mode envelope of it was acked.
* ``lost in a crash``: (a) a process decided it (``event.decided`` handled/rescued) and was
  SIGKILLed within ``Windows.reply`` of its sending (``Windows.reply_429`` if its reply met a
  429 and was waiting out Retry-After), before the reply went out; or (b) nobody
  decided it and a process serving a team that got a copy was SIGKILLed within ``Windows.read``
  of its sending, stretched by a Redis outage that overlapped it (events wait in the intake
  buffer while the store is down, and die with the process).
* ``uninstalled``: decided for a team whose app was uninstalled within ``Windows.reply`` (or
  ``reply_429``) after its sending, or at most ``Windows.read`` + ``Windows.redeliver`` before
  it (the deciding process had not heard ``app_uninstalled`` yet), before the reply went out:
  the reply needs the revoked token;
  or never decided, every copy for one team whose app was uninstalled within ``Windows.read`` +
  ``Windows.redeliver`` (a Socket Mode envelope no socket took is sent again after the ack
  timeout, and one arriving after ``app_uninstalled`` is for an installation no longer served).
* ``left``: decided for a team whose bot left the conversation (or was unshared from it) within
  the same reply window, before the reply went out: Slack answers the reply ``not_in_channel``.
* ``reinstall gap``: sent after its team was reinstalled and before every process served the new
  installation again (config reloaded with SIGHUP, links up), and delivered to that team only.

Everything else unanswered is **lost**: a failure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Windows:
    """The excuse windows, in seconds after a message was sent."""

    read: float  # read but never decided: a reader of its team SIGKILLed within this
    reply: float  # decided, never answered: the decider SIGKILLed within this
    reply_429: float  # the same when its reply met a 429: it waits out Retry-After (handler timeout)
    redeliver: float  # an envelope no socket took is sent again this much later (ack timeout)
    outage_slack: float = 1.0  # after a Redis outage ends, buffered events are decided within this


@dataclass(frozen=True)
class Sent:
    n: int
    channel: str
    ts: str
    text: str
    at: float  # wall clock, the simulator's clock too
    readers: frozenset[str]  # teams with a live installation whose bot was a member when sent


@dataclass(frozen=True)
class Kill:
    process: str
    at: float


@dataclass(frozen=True)
class Decided:
    team: str  # the team it was handled for
    killed: Kill | None  # its decider's SIGKILL, None if that process lived


@dataclass(frozen=True)
class Reinstall:
    team: str
    at: float  # the app installed again (new token)
    served: float  # every process serving the team had its links up again


@dataclass
class Observed:
    """What the simulator and the process logs recorded, keyed for the verdict."""

    replies: dict[tuple[str, str], list[float]]  # (channel, reply text) -> reply times
    copies: dict[tuple[str, str], set[str]]  # (channel, ts) -> teams an RTM copy or an acked envelope reached
    unacked: dict[tuple[str, str], set[str]]  # (channel, ts) -> teams of envelopes written, never acked
    decided: dict[tuple[str, str], list[Decided]]
    kills: list[Kill]
    serves: dict[str, frozenset[str]]  # process -> the teams it serves
    outages: list[tuple[float, float]]  # Redis down, back up (wall clock)
    reinstalls: list[Reinstall]
    uninstalls: list[tuple[str, float]] = field(default_factory=list)  # team, uninstalled at
    leaves: list[tuple[str, str, float]] = field(default_factory=list)  # team, channel, its bot gone at
    limited: set[tuple[str, str]] = field(default_factory=set)  # (channel, text) whose post got a 429


EXCUSES = ("no_reader", "undelivered", "lost_in_crash", "uninstalled", "left", "reinstall_gap")


@dataclass
class Verdict:
    messages: int = 0
    answered: int = 0
    duplicates: int = 0
    lost: int = 0
    excused: Counter[str] = field(default_factory=Counter)
    crash_gap_s: float = 0.0  # the widest kill-after-send gap a crash excuse used
    crash_bound_s: float = 0.0  # the widest window a crash excuse was allowed
    reinstall_gap_s: float = 0.0  # the longest reinstall-to-served window
    late_by_429: int = 0  # answered, its reply's post refused with 429 at least once
    worst_429_reply_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    explained: list[str] = field(default_factory=list)  # each excuse, with the fault that explains it


def outage_end(at: float, until: float, outages: list[tuple[float, float]]) -> float:
    """The end of the last Redis outage that began before ``until`` and ended after ``at``."""
    ends = [up for down, up in outages if down <= until and up >= at]
    return max(ends, default=at)


def crash_window(at: float, windows: Windows, outages: list[tuple[float, float]]) -> float:
    """How long after ``at`` a reader's death can explain a message never decided."""
    base = at + windows.read
    end = outage_end(at, base, outages)
    return max(base, end + windows.outage_slack) - at


def classify(sent: list[Sent], seen: Observed, windows: Windows) -> Verdict:
    v = Verdict()
    for m in sent:
        v.messages += 1
        got = seen.replies.get((m.channel, m.text), [])
        if len(got) == 1:
            v.answered += 1
            v.latencies.append(got[0] - m.at)
            if (m.channel, m.text) in seen.limited:
                v.late_by_429 += 1
                v.worst_429_reply_s = max(v.worst_429_reply_s, got[0] - m.at)
            continue
        if len(got) > 1:
            v.duplicates += 1
            v.problems.append(f"duplicate: {m.channel} {m.ts} {m.text!r} answered {len(got)} times")
            continue
        why = _excuse(m, seen, windows, v)
        if why is None:
            v.lost += 1
            deciders = seen.decided.get((m.channel, m.ts), [])
            who = "decided, never answered" if deciders else "delivered, never decided"
            copies = sorted(seen.copies.get((m.channel, m.ts), ()))
            v.problems.append(f"lost: {m.channel} {m.ts} {m.text!r} ({who}; copies {copies})")
        else:
            v.excused[why[0]] += 1
            v.explained.append(f"{why[0]}: {m.channel} {m.ts} {m.text!r} {why[1]}")
    v.latencies.sort()
    return v


def _excuse(m: Sent, seen: Observed, windows: Windows, v: Verdict) -> tuple[str, str] | None:
    """The excuse for an unanswered message and what explains it, or None: it is lost."""
    key = (m.channel, m.ts)
    copies = seen.copies.get(key, set())
    if not m.readers:  # a copy written to no member bot would be a simulator bug: lost
        return ("no_reader", "no live installation was a member") if not copies else None
    if not copies:
        unacked = sorted(seen.unacked.get(key, ()))
        how = f"envelopes for {unacked} written, never acked" if unacked else "no copy written"
        return "undelivered", f"no copy reached a socket of {sorted(m.readers)} ({how})"
    deciders = seen.decided.get(key, [])
    reply = windows.reply_429 if (m.channel, m.text) in seen.limited else windows.reply
    if deciders:  # the first thing that stopped a decider's reply explains it
        ends = [(d.killed.at, "kill", d.killed.process) for d in deciders if d.killed is not None]
        # an uninstall shortly before counts too: its process hears ``app_uninstalled`` within the
        # read window + a redelivery, and meanwhile decides for the team whose token is dead
        news = windows.read + windows.redeliver
        ends += [
            (max(at, m.at), "uninstall", t)
            for d in deciders
            for t, at in seen.uninstalls
            if t == d.team and m.at - news <= at
        ]
        ends += [(at, "left", t) for d in deciders for t, c, at in seen.leaves if (t, c) == (d.team, key[0])]
        within = sorted(e for e in ends if m.at <= e[0] <= m.at + reply)
        if not within:
            return None
        at, kind, who = within[0]
        if kind == "uninstall":
            return "uninstalled", f"decided for {who}, uninstalled {at - m.at:.2f} s later"
        if kind == "left":
            return "left", f"decided for {who}, whose bot left {at - m.at:.2f} s later (not_in_channel)"
        v.crash_gap_s = max(v.crash_gap_s, at - m.at)
        v.crash_bound_s = max(v.crash_bound_s, reply)
        return "lost_in_crash", f"decided by {who}, killed {at - m.at:.2f} s later"
    window = crash_window(m.at, windows, seen.outages)
    for kill in seen.kills:
        if seen.serves.get(kill.process, frozenset()) & copies and m.at <= kill.at <= m.at + window:
            v.crash_gap_s = max(v.crash_gap_s, kill.at - m.at)
            v.crash_bound_s = max(v.crash_bound_s, window)
            return "lost_in_crash", f"read by {kill.process}, killed {kill.at - m.at:.2f} s later, undecided"
    for team, at in seen.uninstalls:  # its only readers' app went away before it was decided
        if copies <= {team} and m.at <= at <= m.at + windows.read + windows.redeliver:
            return "uninstalled", f"read only for {team}, uninstalled {at - m.at:.2f} s later, undecided"
    for r in seen.reinstalls:
        if copies <= {r.team} and r.at <= m.at <= r.served:
            v.reinstall_gap_s = max(v.reinstall_gap_s, r.served - r.at)
            return "reinstall_gap", f"{r.team} reinstalled {m.at - r.at:.2f} s before, served again after"
    return None
