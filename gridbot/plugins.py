"""The plugin API: a :class:`Plugin` object with decorators, and how plugins are found and loaded.

A plugin is a module exposing a ``plugin = Plugin("name")`` object (or a ``setup()`` function
returning one). Handler signatures are checked when the plugin loads, so a typo fails the load with
a message naming the plugin, the handler and the problem, not the first matching message in
production.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from gridbot.logs import get_logger

if TYPE_CHECKING:
    from gridbot.context import Context

log = get_logger("gridbot.plugins")

Handler = Callable[..., Awaitable[Any]]
Hook = Callable[["Context"], Awaitable[Any]]
ENTRY_POINT_GROUP = "gridbot.plugins"
BUNDLED_PACKAGE = "gridbot_plugins"


class PluginError(Exception):
    """A plugin that cannot be loaded; the message names the plugin, handler and problem."""


@dataclass(frozen=True)
class Route:
    plugin: str
    name: str  # the handler's function name
    kind: str  # message | command | event | schedule
    fn: Handler
    pattern: re.Pattern[str] | None = None
    command: str | None = None
    event_type: str | None = None
    every: float | None = None
    timeout: float | None = None
    include_bots: bool = False
    doc: str = ""


@dataclass
class Plugin:
    """A named set of handlers. Decorate coroutines; every handler takes ``ctx`` first."""

    name: str
    routes: list[Route] = field(default_factory=list)
    startup: list[Hook] = field(default_factory=list)
    shutdown: list[Hook] = field(default_factory=list)

    def _add(self, fn: Handler, kind: str, allowed: set[str], **route: Any) -> Handler:
        _check_signature(self.name, fn, allowed)
        doc = inspect.getdoc(fn) or ""
        self.routes.append(Route(self.name, fn.__name__, kind, fn, doc=doc, **route))
        return fn

    def message(
        self, pattern: str, *, flags: int = 0, timeout: float | None = None, include_bots: bool = False
    ) -> Callable[[Handler], Handler]:
        """Run on a user message whose text matches ``pattern``; named groups become arguments."""
        try:
            compiled = re.compile(pattern, flags)
        except re.error as exc:
            raise PluginError(f"plugin {self.name}: bad pattern {pattern!r}: {exc}") from None
        groups = set(compiled.groupindex)
        return lambda fn: self._add(
            fn, "message", groups, pattern=compiled, timeout=timeout, include_bots=include_bots
        )

    def command(self, name: str, *, timeout: float | None = None) -> Callable[[Handler], Handler]:
        """Run on ``@bot name args`` or ``<prefix>name args``; ``args`` is the list of words."""
        if not re.fullmatch(r"[\w-]+", name):
            raise PluginError(f"plugin {self.name}: bad command name {name!r}")
        return lambda fn: self._add(fn, "command", {"args"}, command=name.lower(), timeout=timeout)

    def event(self, event_type: str, *, timeout: float | None = None) -> Callable[[Handler], Handler]:
        """Run on any Slack event of that type (``reaction_added``, ``app_requested``, ...)."""
        return lambda fn: self._add(fn, "event", set(), event_type=event_type, timeout=timeout)

    def schedule(self, *, every: float, timeout: float | None = None) -> Callable[[Handler], Handler]:
        """Run every ``every`` seconds, once per interval across all processes sharing the store."""
        if every <= 0:
            raise PluginError(f"plugin {self.name}: schedule(every=...) must be positive")
        return lambda fn: self._add(fn, "schedule", set(), every=float(every), timeout=timeout)

    def on_startup(self, fn: Hook) -> Hook:
        _check_signature(self.name, fn, set())
        self.startup.append(fn)
        return fn

    def on_shutdown(self, fn: Hook) -> Hook:
        _check_signature(self.name, fn, set())
        self.shutdown.append(fn)
        return fn


def _check_signature(plugin: str, fn: Callable[..., Any], allowed: set[str]) -> None:
    where = f"plugin {plugin}, handler {getattr(fn, '__name__', fn)!s}"
    if not inspect.iscoroutinefunction(fn):
        raise PluginError(f"{where}: must be an async def")
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise PluginError(f"{where}: the first parameter must be the context (ctx)")
    for p in params[1:]:
        if p.kind is p.VAR_KEYWORD:
            continue
        if p.kind is p.VAR_POSITIONAL:
            raise PluginError(f"{where}: *{p.name} is not supported")
        if p.name not in allowed and p.default is p.empty:
            offered = ", ".join(sorted(allowed)) or "nothing besides ctx"
            raise PluginError(f"{where}: parameter {p.name!r} is never passed (available: {offered})")


def _resolve(name: str) -> ModuleType | Any:
    """A bundled name, an installed entry point, or a dotted module path."""
    if "." not in name:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                return ep.load()
        return importlib.import_module(f"{BUNDLED_PACKAGE}.{name}")
    return importlib.import_module(name)


def load_plugin(name: str) -> Plugin:
    """Import and set up one plugin, or raise PluginError saying why."""
    try:
        target = _resolve(name)
    except PluginError:
        raise
    except ModuleNotFoundError as exc:
        raise PluginError(f"plugin {name}: not found ({exc})") from exc
    except Exception as exc:
        raise PluginError(f"plugin {name}: import failed: {type(exc).__name__}: {exc}") from exc
    found: Any = target
    if isinstance(target, ModuleType):
        found = getattr(target, "plugin", None)
        if found is None and callable(getattr(target, "setup", None)):
            try:
                found = target.setup()
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin {name}: setup() failed: {type(exc).__name__}: {exc}") from exc
    elif callable(target) and not isinstance(target, Plugin):
        found = target()
    if not isinstance(found, Plugin):
        raise PluginError(f"plugin {name}: exposes no Plugin object (plugin = Plugin(...) or setup())")
    return found


def discover_installed() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_all(names: tuple[str, ...], *, strict: bool) -> list[Plugin]:
    """Load every enabled plugin; a broken one is reported and left out (or stops start-up)."""
    loaded: list[Plugin] = []
    for name in names:
        try:
            plugin = load_plugin(name)
        except PluginError as exc:
            if strict:
                raise
            log.error("plugin.load_failed", plugin=name, error=str(exc))
            continue
        log.info("plugin.loaded", plugin=plugin.name, handlers=[r.name for r in plugin.routes])
        loaded.append(plugin)
    return loaded
