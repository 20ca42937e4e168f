"""RTM pings leave on a shared grid of ticks: at 1,000 teams they go out in a few bursts per
second, not one loop wake-up each, and no socket is pinged sooner than ``ping_interval``."""

from __future__ import annotations

import pytest

from gridbot.transport.rtm import ping_due


@pytest.mark.parametrize("interval", [6.0, 2.0, 0.2])
def test_a_ping_waits_its_interval_and_at_most_a_tick_more(interval: float) -> None:
    tick = min(1.0, interval / 4)
    for n in range(1_000):
        now = 12_345.0 + n * 0.0137
        due = ping_due(now, interval)
        assert now + interval <= due < now + interval + tick + 1e-9


def test_links_that_pinged_within_one_tick_ping_together_next_time() -> None:
    # 1,000 links whose last pings were spread over one second, at the default 6 s interval
    dues = {ping_due(100.0 + n / 1_000, 6.0) for n in range(1_000)}
    assert len(dues) <= 2  # one or two bursts, not 1,000 separate wake-ups
