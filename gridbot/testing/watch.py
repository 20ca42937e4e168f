"""What a test's plugins did wrong: a plugin that did not load, a handler or hook that raised or
timed out. The ``grid`` fixture wraps every handler to see it, because the runtime, as in
production, logs the failure and carries on, and a test must not pass over it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridbot.plugins import Plugin, Route


@dataclasses.dataclass(frozen=True)
class PluginFailure:
    """A plugin's mistake seen during a test: ``kind`` is ``load`` (it did not load), ``error``
    (a handler or hook raised) or ``timeout``; ``exception`` is what it raised, if anything."""

    kind: str
    plugin: str
    handler: str | None
    message: str
    exception: BaseException | None = None


class PluginFailed(AssertionError):
    """A test's plugin did not load, or one of its handlers raised or timed out, unexpectedly."""


Hook = Callable[..., Awaitable[Any]]


class Watch:
    """Wraps every handler and hook of the test's plugins to see what they raise: the runtime
    logs it and carries on (as in production), the test must not."""

    def __init__(self, default_timeout: float) -> None:
        self.failures: list[PluginFailure] = []
        self.reported = 0  # failures already raised, or expected by the call that caused them
        self._timeout = default_timeout

    def plugin(self, plugin: Plugin) -> Plugin:
        return dataclasses.replace(
            plugin,
            routes=[dataclasses.replace(r, fn=self._handler(r)) for r in plugin.routes],
            startup=[self._hook(plugin.name, "startup", hook) for hook in plugin.startup],
            shutdown=[self._hook(plugin.name, "shutdown", hook) for hook in plugin.shutdown],
        )

    def _handler(self, route: Route) -> Callable[..., Awaitable[Any]]:
        fn, limit = route.fn, route.timeout or self._timeout

        async def watched(ctx: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                return await fn(ctx, **kwargs)
            except asyncio.CancelledError:
                if loop.time() - started >= limit - 0.01:  # the deadline, not a drain, cancelled it
                    where = f"plugin {route.plugin}, handler {route.name}"
                    message = f"{where}: timed out after {limit:g} s"
                    self.failures.append(PluginFailure("timeout", route.plugin, route.name, message))
                raise
            except Exception as exc:
                self._raised(route.plugin, route.name, exc)
                raise

        return watched

    def _hook(self, plugin: str, which: str, hook: Hook) -> Hook:
        async def watched(ctx: Any) -> Any:
            try:
                return await hook(ctx)
            except Exception as exc:
                self._raised(plugin, f"{getattr(hook, '__name__', which)} (on_{which})", exc)
                raise

        return watched

    def _raised(self, plugin: str, handler: str, exc: BaseException) -> None:
        message = f"plugin {plugin}, handler {handler}: raised {type(exc).__name__}: {exc}"
        self.failures.append(PluginFailure("error", plugin, handler, message, exc))

    def check(self, expected: bool) -> None:
        """Raise :class:`PluginFailed` for what failed since the last check, unless expected."""
        new, self.reported = self.failures[self.reported :], len(self.failures)
        if new and not expected:
            raise failed(new)


def failed(failures: list[PluginFailure]) -> PluginFailed:
    lines = "\n".join(f"  {f.message}" for f in failures)
    error = PluginFailed(
        f"{len(failures)} plugin failure{'s' if len(failures) > 1 else ''} during the test "
        f"(pass expect_errors=True if the test means it):\n{lines}"
    )
    error.__cause__ = next((f.exception for f in failures if f.exception is not None), None)
    return error
