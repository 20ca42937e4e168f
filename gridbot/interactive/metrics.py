"""The interactive acks as Prometheus counters (registered by the runtime): who sent each ack, and
how many payloads were another socket's or process's (and how many of those got no ack to repeat)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from gridbot.interactive.ack import AckCounters


class InteractiveCollector(Collector):
    def __init__(self, counters: AckCounters) -> None:
        self._counters = counters

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        c = self._counters
        acks = CounterMetricFamily(
            "gridbot_interactive_acks",
            "Acks of slash commands and interactive payloads, by who sent them: the handler, or the "
            "runtime (empty) because the deadline passed, no handler took it, or the handler raised.",
            labels=["by"],
        )
        for by, n in (
            ("handler", c.by_handler),
            ("deadline", c.empty_late),
            ("unrouted", c.empty_unrouted),
            ("failed", c.empty_failed),
        ):
            acks.add_metric([by], n)
        yield acks
        duplicates = CounterMetricFamily(
            "gridbot_interactive_duplicates",
            "Interactive payloads another socket or process handled (acked here with its ack).",
        )
        duplicates.add_metric([], c.duplicates)
        yield duplicates
        unanswered = CounterMetricFamily(
            "gridbot_interactive_duplicates_unanswered",
            "Of those, the ones acked empty here: the handling process recorded no ack by this "
            "copy's deadline (slow, or the store unreachable), so Slack got an empty answer.",
        )
        unanswered.add_metric([], c.duplicates_unanswered)
        yield unanswered
