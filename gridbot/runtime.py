"""The composition root: builds every part from a Config, starts them in order, stops in reverse.

    link -> Intake.offer -> Decider (one store question per batch) -> Dispatcher -> plugin handler

Every stage gets what it needs in its constructor; nothing is connected after construction.

The Events API listener (``[events]``), when configured, is one more transport: it is built
with the intake, started before the supervisor (requests for teams not authenticated yet are
answered 503) and drained first on shutdown (stop accepting, answer what is in flight).

Shutdown (SIGTERM): stop reading (close sockets), let the dedup stage and the running handlers
finish within ``runtime.shutdown_timeout`` (one budget for both: they run side by side), run plugin
shutdown hooks, release leases, close. What could not finish is counted in the last log lines:
``gridbot.backlog_abandoned`` (deliveries left undecided, say with Redis unreachable throughout)
and ``gridbot.stopped`` (handlers that finished during the drain, and those cancelled).
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import time
import uuid
from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from gridbot.bots import Bots
from gridbot.config import Config, TeamConfig
from gridbot.context import Contexts
from gridbot.dedup import Decider, Intake
from gridbot.directory import Directory
from gridbot.dispatch import Dispatcher, Router
from gridbot.election import Elector
from gridbot.http import OpsServer
from gridbot.installs.service import InstallService
from gridbot.installs.store import InstallStore
from gridbot.interactive.context import InteractiveContexts
from gridbot.interactive.intake import Interactions
from gridbot.interactive.metrics import InteractiveCollector
from gridbot.loading import load_all
from gridbot.logs import get_logger
from gridbot.metrics import Metrics
from gridbot.plugins import Plugin
from gridbot.schedule import Scheduler
from gridbot.slack import SlackClients
from gridbot.status.publisher import StatusPublisher
from gridbot.status.view import RuntimeView
from gridbot.store import MemoryStore, RedisStore, Store, StoreUnavailable
from gridbot.storecheck import StoreCheck
from gridbot.supervisor import Supervisor
from gridbot.tasks import cancel_and_wait
from gridbot.team import Team
from gridbot.transport.http import EventsReceiver
from gridbot.transport.http_metrics import EventsCollector

log = get_logger("gridbot.runtime")


def tune_gc(threshold: int) -> None:
    """Set the daemon's garbage collector thresholds (``runtime.gc_threshold``).

    Every delivery allocates a few container objects that reference counting frees at once; with
    Python's default young threshold (700) they still triggered a collection every few hundred
    deliveries, and each older-generation pass walked the dedup memory. Process-wide, so only
    the daemon and the benchmarks call it, never a library user of :class:`Runtime`.
    """
    gc.set_threshold(threshold, 20, 10)


def make_store(config: Config) -> Store:
    if config.redis.url is None:
        return MemoryStore(claim_ttl=config.runtime.claim_ttl)
    return RedisStore.from_url(
        config.redis.url.get(), key_prefix=config.redis.key_prefix, claim_ttl=config.runtime.claim_ttl
    )


class Runtime:
    """One gridbot process. ``async with Runtime(config) as rt:`` serves until the block ends."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        plugins: list[Plugin] | None = None,
        instance_id: str | None = None,
        install_store: InstallStore | None = None,
        install_clock: Callable[[], float] = time.time,
        install_clock_rate: float = 1.0,
    ) -> None:
        self.config = config
        self._install_store = install_store  # [oauth]: the deployment's Redis when None
        self._install_clock = (install_clock, install_clock_rate)  # token expiry (tests: scaled)
        self.instance_id = instance_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.store = store or make_store(config)
        self._owns_store = store is None
        self.plugins = (
            plugins
            if plugins is not None
            else load_all(
                config.plugins.enabled, strict=config.plugins.strict, settings=config.plugins.settings
            )
        )
        self.bots = Bots(self.store)
        self.users = Directory()
        self.contexts: Contexts | None = None
        self.clients: SlackClients | None = None
        self.supervisor: Supervisor | None = None
        self.dedup: Decider | None = None
        self.dispatcher: Dispatcher | None = None
        self.elector: Elector | None = None
        self.installs: InstallService | None = None  # [oauth]: the installation store, served
        self.interactions: Interactions | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._scheduler: asyncio.Task[None] | None = None
        self._store_wait: asyncio.Task[None] | None = None  # start-up: waiting for the store
        self._started = False
        # Operations (health, metrics, status): read-only views of the parts above.
        self.metrics = Metrics()
        self.http: OpsServer | None = None
        self.events: EventsReceiver | None = None  # the Events API listener ([events])
        self.started_at: float | None = None
        self.stopping = False

    # -- wiring --------------------------------------------------------------------------------

    async def _team_ready(self, team: Team) -> None:
        """Register the team for every process sharing the store, then let its socket connect."""
        self.bots.add(team.bot_user_id, team.bot_id, team.team_id)
        info = {"bot_user_id": team.bot_user_id, "bot_id": team.bot_id, "enterprise_id": team.enterprise_id}
        try:
            await self.store.roster_add(team.team_id, info)
        except StoreUnavailable:
            log.warning("roster.add_failed", team_id=team.team_id, reason="store_unavailable")

    async def start(self) -> None:
        cfg = self.config
        self.started_at = time.time()
        self.clients = SlackClients(
            cfg.slack.api_url, trace_configs=[self.metrics.trace_config(cfg.slack.api_url)]
        )
        # The dedup stage's intake, which every link hands its deliveries to. Links call it
        # directly (it counts deliveries for the metrics): this runs once per delivery, and a
        # forwarding call cost about 1 us each.
        intake = Intake(self.bots, received=self.metrics.events)
        # Slash commands and interactive payloads: their acks, then the same intake.
        self.interactions = Interactions(intake, store=self.store)
        self.metrics.registry.register(InteractiveCollector(self.interactions.counters))
        if cfg.events.port is not None:
            self.events = EventsReceiver(cfg.events, self.interactions)
            self.metrics.registry.register(EventsCollector(self.events.counts))
        # The supervisor (connections and their links) comes next: the elector asks it which
        # teams exist, and the contexts ask it for a team and its client.
        self.supervisor = Supervisor(
            self.clients,
            self.store,
            self.interactions,  # the intake, and the entry of Socket Mode's interactive envelopes
            cfg.runtime,
            instance_id=self.instance_id,
            on_team_ready=self._team_ready,
            events=self.events,
            web_client=self._web_client,
        )
        self.elector = Elector(
            self.store,
            installed=self.supervisor.installed,
            stopped=self.supervisor.stopped,
            client_for=self.supervisor.client_for,
            retire=self._retire,
            granted=self._granted,
            authenticated=self.supervisor.authenticated_at,
        )
        if cfg.oauth is not None:
            self.installs = InstallService(
                cfg,
                cfg.oauth,
                self.supervisor,
                instance_id=self.instance_id,
                store=self._install_store,
                clock=self._install_clock[0],
                rate=self._install_clock[1],
            )
        router = Router(
            self.plugins,
            command_prefix=cfg.plugins.command_prefix,
            bot_user_ids=self.bots.user_ids,
            interactions=self.interactions,
        )
        self.contexts = Contexts(
            self.supervisor,
            self.store,
            cfg.plugins.settings,
            self.users,
            router.routes,
            router.command_prefix,
            InteractiveContexts(self.interactions),
        )
        self.dispatcher = Dispatcher(
            router,
            self.contexts.make,
            max_concurrent=cfg.runtime.max_concurrent_handlers,
            default_timeout=cfg.runtime.handler_timeout,
            observer=self.metrics.observe_handler,
            log_handled=cfg.logging.handled_events,
        )
        # The decider asks the store about what the intake queued and hands the chosen copy on.
        self.dedup = Decider(
            intake,
            self.store,
            self.elector,
            self.dispatcher.dispatch,
            bots=self.bots,
            standby_grace=cfg.runtime.standby_grace,
            capacity=self.dispatcher.capacity,
            room=self.dispatcher.room,
        )
        self._tasks.append(asyncio.create_task(self.dedup.run(), name="dedup:worker"))
        if self.events is not None:  # answers 503 (Slack retries) until the store decides
            await self.events.start()
        # Redis at start-up: leases, heartbeats and the status document need it, so the teams
        # start once it answers; until then store.unreachable says why, at a calm interval.
        check = None
        if self.store.shared:
            check = StoreCheck(self.store, cfg.redis.url.get() if cfg.redis.url else "")
            if await check.answers():
                check = None
        if check is None:
            self._serve_teams()
        scheduler = Scheduler(self.plugins, self.store, self.dispatcher, self.supervisor, self.instance_id)
        self._scheduler = asyncio.create_task(scheduler.run(), name="scheduler")
        self._tasks.append(self._scheduler)
        await self._hooks("startup")
        view = RuntimeView(
            instance_id=self.instance_id,
            store=self.store,
            lifecycle=self,
            connections=self.supervisor.connections.values,
            decisions=self.dedup,
            elector=self.elector,
            handlers=self.dispatcher,
            installs=self.installs.live if self.installs is not None else None,
        )
        self.metrics.collect_runtime(view)
        if cfg.http.port is not None:
            self.http = OpsServer(view, self.metrics, cfg.http.host, cfg.http.port)
        publisher = StatusPublisher(view, self.metrics, min(5.0, cfg.runtime.lease_ttl), http=self.http)
        if check is None:
            self._tasks.append(asyncio.create_task(publisher.run(), name="status:publisher"))
        else:
            self._store_wait = asyncio.create_task(self._serve_once(check, publisher), name="store:startup")
        if self.http is not None:
            await self.http.start()
        if self.installs is not None:
            await self.installs.start_routes()
        self._started = True
        log.info(
            "gridbot.started",
            instance=self.instance_id,
            teams=len(cfg.teams),
            plugins=[p.name for p in self.plugins],
        )

    async def _serve_once(self, check: StoreCheck, publisher: StatusPublisher) -> None:
        """Wait for the store, then start the teams and the status publisher."""
        await check.wait()
        self._serve_teams()
        self._tasks.append(asyncio.create_task(publisher.run(), name="status:publisher"))

    def _web_client(self, config: TeamConfig, plain: AsyncWebClient) -> AsyncWebClient:
        """A team's Web API client: an installation's refreshes an expired token once."""
        return self.installs.live.client(config, plain) if self.installs is not None else plain

    def _serve_teams(self) -> None:
        """Both sources of installations: the config's [[teams]], then the installation store."""
        assert self.supervisor is not None
        self.supervisor.start(self.config.teams)
        if self.installs is not None:
            self.installs.start()

    async def _retire(self, team_id: str, reason: str) -> None:
        """Slack says ``team_id``'s tokens are dead: stop it; an installation from the store also
        leaves the store, so every process drops it."""
        assert self.supervisor is not None
        await self.supervisor.retire(team_id, reason)
        if self.installs is not None:
            await self.installs.live.dead(team_id, reason)

    def _granted(self, enterprise_id: str | None, team_ids: frozenset[str]) -> None:
        """An org admin granted workspaces: the org install (if we hold it) lists them now."""
        if self.installs is not None:
            self.installs.live.granted(enterprise_id, team_ids)

    async def _hooks(self, which: str) -> None:
        assert self.contexts is not None
        for plugin in self.plugins:
            for hook in plugin.startup if which == "startup" else plugin.shutdown:
                try:
                    await asyncio.wait_for(
                        hook(self.contexts.hook(plugin.name)), self.config.runtime.handler_timeout
                    )
                except Exception:
                    log.exception(
                        f"plugin.{which}_failed", plugin=plugin.name, hook=getattr(hook, "__name__", "?")
                    )

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.stopping = True  # /readyz answers 503 from here on
        assert self.supervisor and self.dedup and self.dispatcher and self.clients
        loop = asyncio.get_running_loop()
        # One line for the whole shutdown: the sockets it closes are not logged as "reconnecting".
        log.info(
            "gridbot.stopping",
            teams=len(self.supervisor.connected()),
            in_flight=self.dispatcher.running,
            backlog=self.dedup.backlog,
            store_ok=self.dedup.store_ok,
        )
        # No team starts now that was waiting for the store, and no new scheduled runs.
        await cancel_and_wait([t for t in (self._store_wait, self._scheduler) if t is not None])
        if self.events is not None:  # stop accepting, answer the requests in flight
            await self.events.stop()
        if self.installs is not None:  # no install gained or lost while the sockets close
            await self.installs.stop()
        await self.supervisor.stop()  # stop reading first: nothing new comes in
        # One budget for the dedup stage and the handlers: the handlers run while it drains.
        deadline = loop.time() + self.config.runtime.shutdown_timeout
        started = self.dispatcher.counters.started
        running = self.dispatcher.running
        abandoned = 0
        if not await self.dedup.wait_idle(deadline - loop.time()):
            # e.g. Redis unreachable for the whole drain: say how much is left undecided
            abandoned = self.dedup.backlog
            log.error("gridbot.backlog_abandoned", backlog=abandoned, store_ok=self.dedup.store_ok)
        cancelled = await self.dispatcher.drain(max(0.0, deadline - loop.time()))
        begun = running + self.dispatcher.counters.started - started  # running then, or since
        await self._hooks("shutdown")
        if self.interactions is not None:
            await self.interactions.close()  # the empty acks in flight (sockets are closed by now)
        await cancel_and_wait(reversed(self._tasks))
        if self.http is not None:
            await self.http.stop()
        await self.clients.close()
        if self.installs is not None:
            await self.installs.close()
        if self._owns_store:
            await self.store.close()
        log.info(
            "gridbot.stopped",
            handlers_finished=max(0, begun - cancelled),
            handlers_cancelled=cancelled,
            backlog_abandoned=abandoned,
        )

    @property
    def started(self) -> bool:
        return self._started

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
