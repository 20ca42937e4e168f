"""What the Events API receiver counts, and how ``/metrics`` shows it.

Counted in plain dicts on the request path (a labelled prometheus Counter child costs about 15x a
dict increment) and exported at scrape time, like the dedup stage's counters. Label values come
from fixed sets (answer reasons, Slack's retry reasons, team ids of our own teams): never text a
client chose.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# X-Slack-Retry-Reason values Slack documents; anything else is counted as "other".
RETRY_REASONS = frozenset(
    {"http_timeout", "too_many_redirects", "connection_failed", "ssl_error", "http_error", "unknown_error"}
)


class Counts:
    """The receiver's figures: every answer by status and reason, retries received, ack times."""

    __slots__ = ("ack_buckets", "ack_count", "ack_sum", "answers", "connections", "rate_limited", "retries")

    def __init__(self) -> None:
        self.answers: dict[tuple[int, str], int] = {}
        self.retries: dict[str, int] = {}
        self.rate_limited: dict[str, int] = {}  # app_rate_limited notices, by team id
        self.ack_buckets = [0] * (len(ACK_BUCKETS) + 1)
        self.ack_count = 0
        self.ack_sum = 0.0
        self.connections = 0

    def answered(self, status: int, reason: str) -> int:
        """Count one answer; returns how many had this status and reason (for the log line)."""
        key = (status, reason)
        count = self.answers[key] = self.answers.get(key, 0) + 1
        return count

    def acked(self, seconds: float) -> None:
        """A delivery answered after its decision (or its deadline), ``seconds`` after it arrived."""
        self.ack_buckets[bisect.bisect_left(ACK_BUCKETS, seconds)] += 1
        self.ack_count += 1
        self.ack_sum += seconds

    def retried(self, reason: str | None) -> None:
        label = reason if reason in RETRY_REASONS else "other"
        self.retries[label] = self.retries.get(label, 0) + 1


class EventsCollector(Collector):
    """Exports a receiver's :class:`Counts` (registered by the runtime when it has a listener)."""

    def __init__(self, counts: Counts) -> None:
        self._counts = counts

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        c = self._counts
        answers = CounterMetricFamily(
            "gridbot_events_answers",
            "Events API requests answered, by HTTP status and reason.",
            labels=["status", "reason"],
        )
        for (status, reason), n in sorted(c.answers.items()):
            answers.add_metric([str(status), reason], n)
        yield answers
        retries = CounterMetricFamily(
            "gridbot_events_retries",
            "Verified deliveries carrying X-Slack-Retry-Num, by X-Slack-Retry-Reason.",
            labels=["reason"],
        )
        for reason, n in sorted(c.retries.items()):
            retries.add_metric([reason], n)
        yield retries
        limited = CounterMetricFamily(
            "gridbot_events_app_rate_limited",
            "app_rate_limited notices from Slack (over 30,000 events an hour), by team.",
            labels=["team_id"],
        )
        for team, n in sorted(c.rate_limited.items()):
            limited.add_metric([team], n)
        yield limited
        ack = HistogramMetricFamily(
            "gridbot_events_ack_seconds", "From a delivery's arrival to its answer (after the decision)."
        )
        buckets, cumulative = [], 0
        for le, n in zip([*map(str, ACK_BUCKETS), "+Inf"], c.ack_buckets, strict=True):
            cumulative += n
            buckets.append((le, cumulative))
        ack.add_metric([], buckets, c.ack_sum)
        yield ack
        yield GaugeMetricFamily(
            "gridbot_events_connections", "Open connections on the events listener.", value=c.connections
        )
