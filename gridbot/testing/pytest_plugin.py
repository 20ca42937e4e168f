"""pytest plugin for plugin authors (registered through the ``pytest11`` entry point ``gridbot``).

The ``grid`` fixture starts the Enterprise Grid simulator and the real gridbot runtime, in-process,
on the in-memory store, and waits until every team is connected::

    @pytest.mark.gridbot(plugins=["whois"])
    async def test_whois(grid):
        reply = await grid.ask("bob", "C0SHARED1", f"whois {grid.mention('alice')}")
        assert "Team One" in reply.text

``grid.slash()``, ``grid.click()``, ``grid.shortcut()``, ``grid.message_shortcut()``,
``grid.submit()``, ``grid.suggest()`` and ``grid.close_modal()`` (Socket Mode teams,
``transports={...: "socket_mode"}``, or HTTP teams, ``transports={...: "http"}``: the runtime's
``[events]`` listener on a free port becomes the app's request URL, and each action is POSTed
there, its HTTP response the ack) return an :class:`~gridbot.testing.interact.Answer`: what was
acked, posted, shown to the user alone, updated and opened.

``grid.say()`` returns every bot message posted because of what was said, once the runtime has
processed every copy Slack delivered (shared channels reach several teams) and every handler has
finished: no sleeps, and "exactly one reply" means exactly one.

The ``gridbot`` marker takes ``plugins``, ``settings`` (``{plugin: {key: value}}``),
``transports`` (``{team id: "rtm" | "socket_mode" | "http"}``), ``topology`` (a ``Topology`` or a TOML
path), ``command_prefix``, ``strict``, ``expect_errors``, ``simulator`` (keywords for
``GridSimulator``, e.g. ``{"time_scale": 10}`` or ``{"rate_limits": RateLimits(enabled=False)}``)
and any ``[runtime]`` field.
``grid_factory`` builds more grids in one test, with the same keywords.

A plugin's mistake fails the test with the plugin's own error: a plugin that does not load fails
the fixture, and a handler (or hook) that raises or times out fails the ``say()``, ``ask()`` or
``send_event()`` that caused it (or the test's teardown), the handler's exception chained as the
cause. A test that means it passes ``expect_errors=True`` to the marker or to that one call, and
reads what happened in ``grid.errors``.

An async test that takes ``grid`` or ``grid_factory`` (or carries the marker) runs under
pytest-asyncio whatever its mode: a plugin author's project needs no asyncio configuration.

This module imports nothing heavy until a fixture runs: pytest loads it in every session of an
environment where gridbot is installed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gridbot.testing.interact import Interacting
from gridbot.testing.watch import PluginFailure, Watch

if TYPE_CHECKING:
    from gridbot.config import Config
    from gridbot.runtime import Runtime
    from gridbot.testing.simulator import GridSimulator, PostedMessage, Topology

try:  # strict-mode pytest-asyncio needs its own decorator; without it, plain fixtures
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover
    _async_fixture = pytest.fixture  # type: ignore[assignment]

MARKER = "gridbot"
FIXTURES = ("grid", "grid_factory")
_MARKER_DOC = (
    "gridbot(plugins=[...], settings={plugin: {...}}, transports={team: 'rtm'|'socket_mode'|'http'}, "
    "topology=Topology|path, command_prefix='!', strict=False, expect_errors=False, simulator={...}, "
    "**runtime): how the `grid` fixture configures the simulator and the runtime"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_DOC)


def _uses_grid(collector: pytest.Collector, obj: Any) -> bool:
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    marked = any(m.name == MARKER for m in getattr(obj, "pytestmark", []))
    return marked or any(f in params for f in FIXTURES) or collector.get_closest_marker(MARKER) is not None


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Collector, name: str, obj: object
) -> Generator[None, Any, Any]:
    """Mark a grid test ``asyncio`` before pytest-asyncio looks for the mark, so it runs in the
    default (strict) mode too: without it, pytest says "async def functions are not natively
    supported" and a plugin author's first test fails."""
    if (
        inspect.iscoroutinefunction(obj)
        and collector.config.pluginmanager.hasplugin("asyncio")
        and not any(m.name == "asyncio" for m in getattr(obj, "pytestmark", []))
        and _uses_grid(collector, obj)
    ):
        pytest.mark.asyncio(obj)
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Say what is missing when pytest-asyncio is (pytest's own message names no plugin)."""
    uses_grid = set(FIXTURES) & set(getattr(item, "fixturenames", ()))
    if uses_grid and not item.config.pluginmanager.hasplugin("asyncio"):
        needs = "the grid fixture runs in async tests, which need pytest-asyncio"
        pytest.fail(f"{needs}: pip install pytest-asyncio")


class Grid(Interacting):
    """A running simulator with a runtime serving it: say things, read the bot's replies; run
    slash commands, click buttons, use shortcuts and submit modals (:class:`Answer`)."""

    def __init__(
        self, sim: GridSimulator, runtime: Runtime, config: Config, *, watch: Watch, expect_errors: bool
    ) -> None:
        self.sim = sim
        self.runtime = runtime
        self.config = config
        self._watch = watch
        self._expect_errors = expect_errors

    @property
    def errors(self) -> list[PluginFailure]:
        """Every plugin failure so far (those that did not load, raised or timed out), expected
        or not, in the order they happened."""
        return list(self._watch.failures)

    def check_errors(self, *, expect_errors: bool = False) -> None:
        """Raise :class:`PluginFailed` for plugin failures not reported yet (the fixture calls it
        after each say and at teardown)."""
        self._watch.check(expect_errors or self._expect_errors)

    # -- people and places ---------------------------------------------------------------------

    def user_id(self, who: str) -> str:
        """A user's id from their id or their name (``"bob"`` -> ``"W0BOB0001"``)."""
        topo = self.sim.topology
        if who in topo.user_by_id:
            return who
        for user in topo.users:
            if user.name == who:
                return user.id
        raise ValueError(f"no user {who!r} in the topology")

    def channel_id(self, where: str) -> str:
        """A conversation's id from its id or its name (``"shared-all"`` -> ``"C0SHARED1"``)."""
        topo = self.sim.topology
        if where in topo.conversation_by_id:
            return where
        for conv in topo.conversations:
            if conv.name and conv.name.lstrip("#") == where.lstrip("#"):
                return conv.id
        raise ValueError(f"no conversation {where!r} in the topology")

    def mention(self, who: str) -> str:
        """How Slack writes an @-mention of ``who`` in message text: ``<@W0ALICE01>``."""
        return f"<@{self.user_id(who)}>"

    # -- talking -------------------------------------------------------------------------------

    async def say(
        self,
        user: str,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        timeout: float = 10.0,
        expect_errors: bool = False,
    ) -> list[PostedMessage]:
        """``user`` writes ``text`` in ``channel``; returns the bot messages it caused, in order.

        A handler that raised or timed out fails it (:class:`PluginFailed`, the handler's
        exception as its cause) unless ``expect_errors``."""
        before = len(self.sim.posted)
        await self.sim.post_message(
            user=self.user_id(user), channel=self.channel_id(channel), text=text, thread_ts=thread_ts
        )
        await self.settle(timeout)
        self.check_errors(expect_errors=expect_errors)
        return self._bot_posts(before)

    async def ask(
        self,
        user: str,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        timeout: float = 10.0,
        expect_errors: bool = False,
    ) -> PostedMessage:
        """Like :meth:`say`, and asserts there was exactly one reply, which it returns."""
        replies = await self.say(
            user, channel, text, thread_ts=thread_ts, timeout=timeout, expect_errors=expect_errors
        )
        if len(replies) != 1:
            shown = "\n".join(f"  {r.channel}: {r.text!r}" for r in replies) or "  (none)"
            raise AssertionError(f"expected exactly one reply to {text!r}, got {len(replies)}:\n{shown}")
        return replies[0]

    async def send_event(
        self, event: dict[str, Any], *, team: str, timeout: float = 10.0, expect_errors: bool = False
    ) -> list[PostedMessage]:
        """Deliver any Slack event to ``team``'s connections; returns the bot messages it caused."""
        before = len(self.sim.posted)
        await self.sim.send_event(event, team=team)
        await self.settle(timeout)
        self.check_errors(expect_errors=expect_errors)
        return self._bot_posts(before)

    def _bot_posts(self, since: int) -> list[PostedMessage]:
        return [p for p in self.sim.posted[since:] if p.bot_user_id is not None]

    @property
    def replies(self) -> list[PostedMessage]:
        """Every message a bot has posted so far."""
        return self._bot_posts(0)

    def calls_to(self, method: str) -> list[Any]:
        """The Web API calls made to ``method`` so far (``sim.calls_to``)."""
        return self.sim.calls_to(method)

    # -- waiting -------------------------------------------------------------------------------

    def _progress(self) -> tuple[int, int, bool]:
        rt = self.runtime
        assert rt.dedup is not None and rt.dispatcher is not None
        c = rt.dedup.counters
        # Every copy ends as exactly one of these once its standby hold (if any) is over.
        processed = c.handled + c.duplicate + c.rescued + c.own_message
        # len() of the simulator's logs counts every record ever written (only the newest are
        # kept), so this never stops growing in a long test
        delivered = len(self.sim.deliveries) + len(self.sim.envelopes_sent) + self.sim.http.events_submitted
        if rt.interactions is not None:  # interactions offered to the dedup stage are decided too
            delivered += rt.interactions.offered
        # a copy a timing fault holds back is delivered later: not settled until it is
        idle = (
            rt.dedup.backlog == 0
            and rt.dispatcher.running == 0
            and self.sim.in_flight == 0
            and self.sim.http.in_flight == 0  # an HTTP delivery not answered yet, or awaiting a retry
        )
        return processed, delivered, idle

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every delivered copy was decided and every handler finished."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            processed, delivered, idle = self._progress()
            if idle and processed >= delivered:
                return
            if loop.time() > deadline:
                raise AssertionError(
                    f"gridbot did not settle within {timeout}s: {processed} of {delivered} delivered "
                    f"copies decided, idle={idle}"
                )
            await asyncio.sleep(0.005)


GridFactory = Callable[..., Awaitable[Grid]]


def _checked(grid: Grid) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        await grid.runtime.stop()  # shutdown hooks and handlers still running end here
        grid.check_errors()

    return check


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):  # closest marker wins
        options.update(marker.kwargs)
    return options


def _topology(value: Any) -> Topology | None:
    if value is None or not isinstance(value, str | Path):
        return value
    from gridbot.testing.simulator import load_topology

    return load_topology(value)


async def _start(
    stack: list[Callable[[], Awaitable[None]]],
    *,
    plugins: tuple[str, ...] | list[str] = ("echo",),
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    transports: Mapping[str, str] | None = None,
    topology: Any = None,
    command_prefix: str = "!",
    strict: bool = False,
    expect_errors: bool = False,
    seed: int = 0,
    connect_timeout: float = 10.0,
    simulator: Mapping[str, Any] | None = None,
    **runtime: Any,
) -> Grid:
    from gridbot.config import replace
    from gridbot.loading import load_plugins, report_load
    from gridbot.runtime import Runtime
    from gridbot.testing.harness import config_for, subscribe_http
    from gridbot.testing.simulator import GridSimulator

    sim = GridSimulator(_topology(topology), seed=seed, **dict(simulator or {}))
    await sim.start()
    stack.append(sim.stop)
    config = config_for(
        sim,
        transports,  # type: ignore[arg-type]  # config_for checks the names
        plugins=tuple(plugins),
        plugin_settings=settings,
        **runtime,
    )
    config = replace(
        config,
        plugins=dataclasses.replace(config.plugins, command_prefix=command_prefix, strict=strict),
    )
    # The plugins are loaded here, as the runtime would, so that one that does not load fails the
    # test with its own error instead of showing up later as "got 0 replies".
    loaded, failures = load_plugins(config.plugins.enabled, config.plugins.settings)
    report_load(loaded, failures, strict=strict and expect_errors)  # logs, as at start-up
    watch = Watch(config.runtime.handler_timeout)
    watch.failures += [PluginFailure("load", f.name, None, f.error, f.exception) for f in failures]
    if not expect_errors:
        watch.check(False)
    rt = Runtime(config, plugins=[watch.plugin(p) for p in loaded])
    await rt.start()
    stack.append(rt.stop)
    grid = Grid(sim, rt, config, watch=watch, expect_errors=expect_errors)
    stack.append(_checked(grid))  # runs first at teardown: the runtime stops after it
    supervisor = rt.supervisor
    assert supervisor is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + connect_timeout
    while len(supervisor.connected()) < len(config.teams):
        if loop.time() > deadline:
            raise AssertionError(f"only {supervisor.connected()} of {len(config.teams)} teams connected")
        await asyncio.sleep(0.01)
    await subscribe_http(sim, rt, config)  # "http" teams: the app's request URL is the listener
    await grid.settle()
    grid.check_errors()  # an on_startup hook that raised
    return grid


@_async_fixture
async def grid_factory(request: pytest.FixtureRequest) -> AsyncIterator[GridFactory]:
    """``await grid_factory(plugins=[...], ...)`` -> a started :class:`Grid`, stopped after the test.

    Keywords default to the test's ``gridbot`` marker."""
    stack: list[Callable[[], Awaitable[None]]] = []
    defaults = _marker_options(request)

    async def make(**options: Any) -> Grid:
        return await _start(stack, **{**defaults, **options})

    try:
        yield make
    finally:
        errors: list[BaseException] = []
        for close in reversed(stack):  # the runtime first, then its simulator
            try:
                await close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


@_async_fixture
async def grid(grid_factory: GridFactory) -> Grid:
    """The simulator and a runtime serving it, configured by the test's ``gridbot`` marker."""
    return await grid_factory()
