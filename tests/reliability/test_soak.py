"""The chaos soak, short: several gridbot processes, real Redis, faults of every kind at random.

``python -m bench.soak --minutes 10`` runs the same scenario for as long as you like. The verdict
rules (what may be excused as lost, and within which window) are checked on their own below, so a
widened window fails here even when a run happens to lose nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import FAULTS, RUNTIME, WINDOWS, run_soak
from bench.soak_verdict import Decided, Kill, Observed, Reinstall, Sent, Windows, classify

T1, T2 = "T0TEAM001", "T0TEAM002"


@pytest.mark.timeout(200)
async def test_chaos_soak_answers_every_delivered_message_exactly_once(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    report = await run_soak(40.0, seed=7, workdir=tmp_path, rate=8.0, fault_every=2.5)
    report.explain = 40
    figures = "\n".join(report.lines())
    print(figures)
    record_property("soak", figures)
    v = report.verdict
    assert set(report.faults) == set(FAULTS), figures  # every kind of fault fired
    assert v.duplicates == 0, figures
    assert v.lost == 0, figures
    assert report.events_dropped == 0 and not report.problems, figures
    assert v.messages >= 250 and v.answered + sum(v.excused.values()) == v.messages, figures
    # Each excuse inside its documented window, and few of them: a window wide enough to hide
    # a real loss would excuse far more than the faults of 40 s can explain.
    assert v.crash_gap_s <= v.crash_bound_s <= RUNTIME["handler_timeout"], figures
    assert v.reinstall_gap_s <= 10.0, figures
    assert sum(v.excused.values()) <= 0.15 * v.messages, figures
    assert v.excused["undelivered"] + v.excused["lost_in_crash"] <= 0.05 * v.messages, figures
    assert report.limited >= 1 and v.late_by_429 >= 1, figures  # replies met 429s and came late
    assert report.lagged >= 1 and report.doubled >= 1, figures
    # An uninstall moves the elections the receiving process knows of with its own reason, and
    # the rest through the heartbeat the stopped team released (team_stopped): either is at once.
    uninstall_moves = sum(report.moves[r] for r in ("app_uninstalled", "tokens_revoked", "team_stopped"))
    assert uninstall_moves >= 1, figures
    assert report.store_unavailable >= 1  # Redis really went away under them
    assert report.clean_exits == report.processes, figures  # SIGTERM at the end: clean shutdowns


# -- the verdict's excuse rules, on records made up to sit just inside and just outside ---------

AT = 1000.0
RULES = Windows(read=2.5, reply=2.5, reply_429=30.0, redeliver=3.0)


def one(
    *,
    copies: set[str] | None = None,
    decided: list[Decided] | None = None,
    kills: list[Kill] | None = None,
    outages: list[tuple[float, float]] | None = None,
    reinstalls: list[Reinstall] | None = None,
    uninstalls: list[tuple[str, float]] | None = None,
    leaves: list[tuple[str, str, float]] | None = None,
    limited: bool = False,
    readers: frozenset[str] = frozenset({T1, T2}),
) -> str:
    """Classify one unanswered message sent at ``AT``: its excuse, or "lost"."""
    sent = [Sent(0, "C1", "1.0", "m0", AT, readers)]
    seen = Observed(
        replies={},
        copies={("C1", "1.0"): copies} if copies is not None else {},
        unacked={},
        decided={("C1", "1.0"): decided} if decided else {},
        kills=kills or [],
        serves={"p1": frozenset({T1, T2}), "p3": frozenset({T2})},
        outages=outages or [],
        reinstalls=reinstalls or [],
        uninstalls=uninstalls or [],
        leaves=leaves or [],
        limited={("C1", "m0")} if limited else set(),
    )
    v = classify(sent, seen, RULES)
    return "lost" if v.lost else next(iter(v.excused))


def test_the_soak_documents_the_windows_the_rules_are_checked_with() -> None:
    assert (WINDOWS.read, WINDOWS.reply, WINDOWS.redeliver) == (RULES.read, RULES.reply, RULES.redeliver)
    assert WINDOWS.reply_429 == RUNTIME["handler_timeout"] == RULES.reply_429
    assert WINDOWS.read >= RUNTIME["standby_grace"] + 1.5  # the grace and the longest lag


def test_a_reader_killed_within_the_window_excuses_an_undecided_message_and_not_after() -> None:
    assert one(copies={T2}, kills=[Kill("p3", AT + 2.4)]) == "lost_in_crash"
    assert one(copies={T2}, kills=[Kill("p3", AT + 2.6)]) == "lost"
    assert one(copies={T2}, kills=[Kill("p3", AT - 0.1)]) == "lost"  # dead before: not a reader
    assert one(copies={T1}, kills=[Kill("p3", AT + 1.0)]) == "lost"  # p3 does not serve T1


def test_a_redis_outage_stretches_the_read_window_to_its_end_and_no_further() -> None:
    outage = [(AT + 1.0, AT + 6.0)]
    assert one(copies={T2}, kills=[Kill("p3", AT + 6.9)], outages=outage) == "lost_in_crash"
    assert one(copies={T2}, kills=[Kill("p3", AT + 7.1)], outages=outage) == "lost"


def test_a_decider_killed_before_its_reply_is_excused_within_the_reply_window() -> None:
    decided = [Decided(T1, Kill("p1", AT + 2.0))]
    assert one(copies={T1}, decided=decided) == "lost_in_crash"
    late = [Decided(T1, Kill("p1", AT + 5.0))]
    assert one(copies={T1}, decided=late) == "lost"
    assert one(copies={T1}, decided=late, limited=True) == "lost_in_crash"  # waiting out a 429
    assert one(copies={T1}, decided=[Decided(T1, None)]) == "lost"  # decided, lived, no reply


def test_an_uninstall_excuses_only_a_reply_it_cut_off() -> None:
    decided = [Decided(T1, None)]
    assert one(copies={T1}, decided=decided, uninstalls=[(T1, AT + 1.0)]) == "uninstalled"
    assert one(copies={T1}, decided=decided, uninstalls=[(T2, AT + 1.0)]) == "lost"
    assert one(copies={T1}, decided=decided, uninstalls=[(T1, AT + 3.0)]) == "lost"
    # before it, while the deciding process had not heard app_uninstalled (2.5 s + a 3 s retry)
    assert one(copies={T1}, decided=decided, uninstalls=[(T1, AT - 5.4)]) == "uninstalled"
    assert one(copies={T1}, decided=decided, uninstalls=[(T1, AT - 5.6)]) == "lost"
    # undecided: its only copies were for the uninstalled team (an envelope retried after 3 s)
    assert one(copies={T2}, uninstalls=[(T2, AT + 5.4)]) == "uninstalled"
    assert one(copies={T2}, uninstalls=[(T2, AT + 5.6)]) == "lost"
    assert one(copies={T1, T2}, uninstalls=[(T2, AT + 1.0)]) == "lost"  # T1 could have answered


def test_a_bot_leaving_excuses_only_a_reply_it_cut_off_in_that_conversation() -> None:
    decided = [Decided(T1, None)]
    assert one(copies={T1}, decided=decided, leaves=[(T1, "C1", AT + 1.0)]) == "left"
    assert one(copies={T1}, decided=decided, leaves=[(T1, "C2", AT + 1.0)]) == "lost"  # elsewhere
    assert one(copies={T1}, decided=decided, leaves=[(T2, "C1", AT + 1.0)]) == "lost"
    assert one(copies={T1}, decided=decided, leaves=[(T1, "C1", AT + 2.6)]) == "lost"
    assert one(copies={T1}, decided=decided, leaves=[(T1, "C1", AT + 2.6)], limited=True) == "left"


def test_no_reader_and_undelivered_need_the_simulator_to_have_written_no_copy() -> None:
    assert one(readers=frozenset()) == "no_reader"
    assert one(readers=frozenset(), copies={T1}) == "lost"
    assert one() == "undelivered"


def test_a_reinstall_gap_covers_only_the_reinstalled_team_until_it_is_served() -> None:
    gap = [Reinstall(T1, AT - 0.5, AT + 0.5)]
    assert one(copies={T1}, reinstalls=gap) == "reinstall_gap"
    assert one(copies={T1, T2}, reinstalls=gap) == "lost"  # T2's copy could have been answered
    assert one(copies={T1}, reinstalls=[Reinstall(T1, AT - 2.0, AT - 1.0)]) == "lost"
