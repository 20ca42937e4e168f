"""Prometheus metrics for one runtime, in a Prometheus registry of its own.

Each :class:`Metrics` owns a ``CollectorRegistry`` (never the process-wide default), so several
runtimes in one process (tests, the demo) do not collide. Counters the data path already keeps
(dedup decisions, link reconnects, takeovers, team state) are read at scrape time by
:class:`RuntimeCollector` instead of being mirrored on the hot path. Label values are team ids,
event types, Web API method names and plugin names: never a token, never message text.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gridbot.plugins import Route
from gridbot.status.view import RuntimeView, team_views
from gridbot.team import TEAM_STATES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    """The instruments the runtime feeds, and the text ``/metrics`` serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.handler_seconds = _Durations(
            "gridbot_handler_duration_seconds",
            "Plugin handler run time, by outcome (ok, error, timeout, cancelled).",
            ["plugin", "handler", "outcome"],
            _HANDLER_BUCKETS,
        )
        r.register(self.handler_seconds)
        self.handler_errors = Counter(
            "gridbot_handler_errors",
            "Handlers that raised (error) or ran past their timeout (timeout).",
            ["plugin", "kind"],
            registry=r,
        )
        self.webapi_calls = Counter(
            "gridbot_webapi_calls",
            "Slack Web API requests answered, per method and HTTP status.",
            ["method", "status"],
            registry=r,
        )
        self.webapi_ratelimited = Counter(
            "gridbot_webapi_ratelimited",
            "Slack Web API answers with HTTP 429, per method.",
            ["method"],
            registry=r,
        )
        self.webapi_failures = Counter(
            "gridbot_webapi_failures",
            "Slack Web API requests that got no answer (network error), per method.",
            ["method"],
            registry=r,
        )
        self.store_seconds = Histogram(
            "gridbot_store_roundtrip_seconds",
            "Store round trip (a PING, sampled every few seconds and by /readyz).",
            buckets=_STORE_BUCKETS,
            registry=r,
        )
        # Per-delivery counts are a plain dict (about 15x cheaper than a labelled Counter child),
        # exported at scrape time. The dedup stage counts into it (Intake.received).
        self.events: dict[tuple[str, str], int] = {}
        r.register(_EventsCollector(self.events))

    # -- feeds -----------------------------------------------------------------------------------

    def observe_handler(self, route: Route, seconds: float, outcome: str) -> None:
        """The dispatcher's observer hook."""
        self.handler_seconds.observe((route.plugin, route.name, outcome), seconds)
        if outcome in ("error", "timeout"):
            self.handler_errors.labels(route.plugin, outcome).inc()

    def observe_store(self, seconds: float) -> None:
        self.store_seconds.observe(seconds)

    def trace_config(self, api_url: str) -> aiohttp.TraceConfig:
        """Counts Web API calls and 429s per method on the shared session (websockets excluded)."""

        def method_of(url: Any) -> str | None:
            text = str(url)
            if not text.startswith(api_url):
                return None
            return text[len(api_url) :].split("?", 1)[0] or None

        async def on_end(_s: aiohttp.ClientSession, _c: SimpleNamespace, p: Any) -> None:
            method = method_of(p.url)
            if method is not None:
                self.webapi_calls.labels(method, str(p.response.status)).inc()
                if p.response.status == 429:
                    self.webapi_ratelimited.labels(method).inc()

        async def on_error(_s: aiohttp.ClientSession, _c: SimpleNamespace, p: Any) -> None:
            method = method_of(p.url)
            if method is not None:
                self.webapi_failures.labels(method).inc()

        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(on_end)
        trace.on_request_exception.append(on_error)
        return trace

    def collect_runtime(self, view: RuntimeView) -> None:
        """Read the runtime's own counters at scrape time."""
        self.registry.register(RuntimeCollector(view))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _counter(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _gauge(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


class _EventsCollector(Collector):
    def __init__(self, counts: dict[tuple[str, str], int]) -> None:
        self._counts = counts

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield _counter(
            "gridbot_events_received",
            "Deliveries read from Slack, per receiving team and event type.",
            ["team_id", "type"],
            [([team, kind], float(n)) for (team, kind), n in list(self._counts.items())],
        )


class _Durations(Collector):
    """A histogram fed once per handler run: a bisect and two additions, no lock.

    (prometheus_client's ``Histogram.observe`` takes a lock per bucket and for the sum: about
    1.5 us, the largest cost left of starting a handler.) Exported at scrape time.
    """

    def __init__(self, name: str, documentation: str, labels: list[str], buckets: tuple[float, ...]) -> None:
        self._name = name
        self._doc = documentation
        self._labels = labels
        self._bounds = buckets
        self._le = [repr(float(b)) for b in buckets] + ["+Inf"]  # as prometheus_client spells them
        # Per label values: one count per bucket (the last is +Inf), then the sum.
        self._series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, key: tuple[str, ...], seconds: float) -> None:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = [0.0] * (len(self._bounds) + 2)
        series[bisect.bisect_left(self._bounds, seconds)] += 1
        series[-1] += seconds

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self._name, self._doc, labels=self._labels)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._doc, labels=self._labels)
        for key, series in list(self._series.items()):
            cumulative, buckets = 0.0, []
            for le, count in zip(self._le, series, strict=False):
                cumulative += count
                buckets.append((le, cumulative))
            family.add_metric(list(key), buckets, series[-1])
        yield family


class RuntimeCollector(Collector):
    """Exposes the counters dedup, links, elector, dispatcher and supervisor already keep."""

    def __init__(self, view: RuntimeView) -> None:
        self._view = view

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: the families depend on what is running

    def collect(self) -> Iterator[Metric]:
        view = self._view
        c = view.decisions.counters
        yield _counter(
            "gridbot_deliveries",
            "Delivery decisions that lead to a handler run (handled, rescued).",
            ["decision"],
            [(["handled"], c.handled), (["rescued"], c.rescued)],
        )
        yield _counter(
            "gridbot_deliveries_standby", "Standby copies held for standby_grace.", [], [([], c.standby)]
        )
        yield _counter(
            "gridbot_deliveries_suppressed",
            "Deliveries not handled, by reason.",
            ["reason"],
            [
                (["duplicate"], c.duplicate),
                (["own_message"], c.own_message),
                (["buffer_full"], c.dropped_overflow),
            ],
        )
        yield _counter(
            "gridbot_dedup_backpressure",
            "Times the dedup stage closed its intake (the sockets waited until it drained).",
            [],
            [([], c.backpressure)],
        )
        yield _counter(
            "gridbot_store_errors",
            "Dedup batches that found the store unreachable.",
            [],
            [([], c.store_errors)],
        )
        yield _gauge(
            "gridbot_store_up",
            "1 while the dedup stage reaches the store.",
            [],
            [([], float(view.decisions.store_ok))],
        )
        yield _gauge(
            "gridbot_dedup_backlog",
            "Deliveries queued or held, not yet decided.",
            [],
            [([], view.decisions.backlog)],
        )
        yield _counter(
            "gridbot_elections",
            "Conversations this process elected a responsible team for.",
            [],
            [([], view.elector.elected)],
        )
        yield _counter(
            "gridbot_takeovers",
            "Elections this process moved away from a team whose heartbeat lapsed.",
            [],
            [([], view.elector.takeovers)],
        )
        yield _counter(
            "gridbot_election_moves",
            "Elections this process moved or cleared, by reason (a heartbeat lapsed, a lifecycle event).",
            ["reason"],
            [([reason], n) for reason, n in list(view.elector.moves.items())],
        )
        yield _gauge(
            "gridbot_handlers_running",
            "Handlers started and not yet ended.",
            [],
            [([], view.handlers.running)],
        )
        yield from self._teams()

    def _teams(self) -> Iterator[Metric]:
        states, reconnects, dropped, last = [], [], [], []
        for team in team_views(self._view.connections()):
            states += [([team.label, s], float(team.state == s)) for s in TEAM_STATES]
            reconnects.append(([team.label], float(team.reconnects)))
            dropped.append(([team.label], float(team.frames_dropped)))
            if team.last_event_at is not None:
                last.append(([team.label], team.last_event_at))
        yield _gauge(
            "gridbot_team_state", "1 for each team's current connection state.", ["team_id", "state"], states
        )
        yield _counter(
            "gridbot_socket_reconnects",
            "Reconnects of the sockets serving a team (Socket Mode: shared by every team of the app token).",
            ["team_id"],
            reconnects,
        )
        yield _counter(
            "gridbot_frames_dropped", "Unusable frames read on a team's sockets.", ["team_id"], dropped
        )
        yield _gauge(
            "gridbot_team_last_event_timestamp_seconds",
            "Unix time of a team's last event.",
            ["team_id"],
            last,
        )
