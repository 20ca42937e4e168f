"""Finding and loading the enabled plugins, and saying in one line why one did not load.

A name is looked up as a bundled plugin, an installed entry point (group ``gridbot.plugins``), then
a module path (``pkg.mod[:attr]``, or a bare module name such as ``standup`` for ``standup.py``).
Every enabled plugin is tried, so ``check-config`` and a strict start-up name all broken plugins
at once; an import failure names the file and line it happened at.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from gridbot.logs import get_logger
from gridbot.plugins import Plugin, PluginError
from gridbot.secrets import Secret

log = get_logger("gridbot.plugins")
ENTRY_POINT_GROUP = "gridbot.plugins"
BUNDLED_PACKAGE = "gridbot_plugins"


@dataclass(frozen=True)
class LoadFailure:
    """One enabled plugin that did not load: ``error`` is the one line the runtime logs, ``line``
    what ``check-config`` prints (with its key path), ``exception`` the cause, for a traceback."""

    name: str
    error: str
    line: str
    exception: BaseException


class PluginsFailed(PluginError):
    """``plugins.strict``: every plugin that failed to load, not only the first."""

    def __init__(self, failures: list[LoadFailure]) -> None:
        self.failures = failures
        super().__init__("\n".join(f.error for f in failures))


def _bundled(name: str) -> str | None:
    module = f"{BUNDLED_PACKAGE}.{name}"
    try:
        return module if importlib.util.find_spec(module) is not None else None
    except ModuleNotFoundError:
        return None


def _shown(path: str) -> str:
    """A file as a person reads it: relative to the working directory when it is below it."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def _at(exc: BaseException) -> str:
    """`` at file:line`` of the plugin's code that raised (the innermost frame that is neither
    the import machinery nor this module), or of a syntax error; empty if there is none."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" at {_shown(exc.filename)}:{exc.lineno}"
    found = ""
    for frame, line in traceback.walk_tb(exc.__traceback__):
        file = frame.f_code.co_filename
        if not file.startswith("<") and file != __file__:
            found = f" at {_shown(file)}:{line}"
    return found


def _explain(exc: BaseException) -> str:
    """``Type: message`` on one line (a log line or a check-config line per plugin)."""
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return f"{type(exc).__name__}: {' '.join(text.split())}"


def _not_found(name: str, exc: ModuleNotFoundError | None = None) -> PluginError:
    missing = f"no module named {exc.name!r}" if exc is not None and exc.name else f"no module {name!r}"
    return PluginError(
        f"plugin {name}: not found (not bundled, no installed entry point in group "
        f"{ENTRY_POINT_GROUP!r}, and {missing} on sys.path)"
    )


def _import(module_name: str, name: str) -> ModuleType:
    """Import the plugin's module; a module that is not there at all is "not found", any other
    failure "import failed" with the file and line it happened at."""
    try:
        return importlib.import_module(module_name)
    except PluginError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise _not_found(name, exc) from exc
        raise PluginError(f"plugin {name}: import failed{_at(exc)}: {_explain(exc)}") from exc
    except Exception as exc:
        raise PluginError(f"plugin {name}: import failed{_at(exc)}: {_explain(exc)}") from exc


def _resolve(name: str) -> Any:
    """A bundled name, an installed entry point, or a module path (``pkg.mod[:attr]``, or a
    bare module name importable from ``sys.path``)."""
    if "." in name or ":" in name:
        module_name, _, attr = name.partition(":")
        module = _import(module_name, name)
        if not attr:
            return module
        if not hasattr(module, attr):
            raise PluginError(f"plugin {name}: import failed: module {module_name} has no attribute {attr!r}")
        return getattr(module, attr)
    bundled = _bundled(name)
    if bundled is not None:
        return _import(bundled, name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as exc:
                raise PluginError(f"plugin {name}: import failed{_at(exc)}: {_explain(exc)}") from exc
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise _not_found(name)
    return _import(name, name)


def load_plugin(name: str) -> Plugin:
    """Import and set up one plugin, or raise PluginError saying why."""
    found: Any = _resolve(name)
    if isinstance(found, ModuleType):
        found = getattr(found, "plugin", None) or getattr(found, "setup", None)
    if callable(found) and not isinstance(found, Plugin):
        try:
            found = found()
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {name}: setup() failed{_at(exc)}: {_explain(exc)}") from exc
    if not isinstance(found, Plugin):
        raise PluginError(f"plugin {name}: exposes no Plugin object (plugin = Plugin(...) or setup())")
    return found


def check_settings(plugin: Plugin, table: Mapping[str, Any]) -> str | None:
    """What is wrong with ``plugin``'s ``[plugins.<name>]`` table, in one line; None if nothing.
    Values are never shown (a ``*_token`` setting is a secret)."""
    problems = []
    for key, kind in plugin.settings.items():
        where = f"plugins.{plugin.name}.{key}"
        value = table.get(key)
        if key not in table:
            problems.append(f"{where}: required by plugin {plugin.name} ({kind.__name__})")
        elif kind is str and isinstance(value, Secret):
            continue
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return "; ".join(problems) or None


def load_plugins(
    names: tuple[str, ...], settings: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[list[Plugin], list[LoadFailure]]:
    """Load every enabled plugin and check its settings; nothing is logged. Returns the plugins
    that loaded and, in the order enabled, every one that did not."""
    loaded: list[Plugin] = []
    failures: list[LoadFailure] = []
    for index, name in enumerate(names):
        path = f"plugins.enabled[{index}]"
        try:
            plugin = load_plugin(name)
            if any(p.name == plugin.name for p in loaded):
                raise PluginError(f"plugin {name}: another enabled plugin is already named {plugin.name!r}")
        except PluginError as exc:
            failures.append(LoadFailure(name, str(exc), f"{path}: {exc}", exc))
            continue
        problem = check_settings(plugin, (settings or {}).get(plugin.name, {}))
        if problem is not None:
            failures.append(LoadFailure(name, problem, problem, PluginError(problem)))
            continue
        loaded.append(plugin)
    return loaded, failures


def report_load(loaded: list[Plugin], failures: list[LoadFailure], *, strict: bool) -> None:
    """Log each broken plugin once (``plugin.load_failed``, one line; its traceback only at debug
    level), then each loaded one; when ``strict``, raise :class:`PluginsFailed` naming them all."""
    traced = log.is_enabled_for(logging.DEBUG)
    for failure in failures:
        cause = failure.exception.__cause__  # the plugin's own exception, if one was raised
        exc_info = cause if traced and cause is not None else None
        log.error("plugin.load_failed", plugin=failure.name, error=failure.error, exc_info=exc_info)
    if strict and failures:
        raise PluginsFailed(failures)
    for plugin in loaded:
        log.info("plugin.loaded", plugin=plugin.name, handlers=[r.name for r in plugin.routes])


def load_all(
    names: tuple[str, ...], *, strict: bool, settings: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Plugin]:
    """Load every enabled plugin; a broken one is logged and left out, or, when ``strict``, all
    the broken ones stop start-up (:class:`PluginsFailed`)."""
    loaded, failures = load_plugins(names, settings)
    report_load(loaded, failures, strict=strict)
    return loaded
