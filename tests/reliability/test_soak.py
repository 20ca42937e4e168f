"""The chaos soak, short: several gridbot processes, real Redis, faults of every kind at random.

``python -m bench.soak --minutes 10`` runs the same scenario for as long as you like.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import FAULTS, run_soak
from gridbot.testing import RateLimits


@pytest.mark.timeout(170)
async def test_chaos_soak_answers_every_delivered_message_exactly_once(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    # About exactly-once under chaos, not Slack's posting limit (8 answers a second in one channel).
    unlimited = RateLimits(enabled=False)
    report = await run_soak(40.0, seed=7, workdir=tmp_path, rate=8.0, fault_every=2.5, rate_limits=unlimited)
    figures = "\n".join(report.lines())
    print(figures)
    record_property("soak", figures)
    assert set(report.faults) == set(FAULTS), figures  # every kind of fault fired
    assert report.duplicates == 0, figures
    assert report.lost == 0, figures
    assert report.events_dropped == 0, figures
    assert report.messages >= 250 and report.answered + report.lost_in_crash + report.undelivered == (
        report.messages
    )
    assert report.store_unavailable >= 1  # Redis really went away under them
    assert report.clean_exits == report.processes, figures  # SIGTERM at the end: clean shutdowns
