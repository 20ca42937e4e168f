"""The plugin API: a :class:`Plugin` object with decorators (finding and loading: ``gridbot.loading``).

A plugin is a module exposing a ``plugin = Plugin("name")`` object (or a ``setup()`` function
returning one). Handler signatures are checked when the plugin loads, so a typo fails the load with
a message naming the plugin, the handler and the problem, not the first matching message in
production.

Interactive handlers (``slash``, ``action``, ``shortcut``, ``message_shortcut``,
``view_submission``, ``view_closed``, ``options``) are chosen by a :class:`Selector`: ids matched
exactly (a string) or by a pattern (an ``re.Pattern``, fully matched under the same time budget).
One payload runs one handler: it has one ack.

Message patterns are compiled with the ``regex`` module and matched under a time budget: matching
runs on the event loop, and a pattern that backtracks catastrophically must cost a bounded few
milliseconds, not stall every other handler.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import regex  # type: ignore[import-untyped, unused-ignore]

from gridbot.interactive.ack import acking
from gridbot.interactive.payload import SLASH
from gridbot.triggers import Cron, CronError, Every, Trigger

Handler = Callable[..., Awaitable[Any]]
Hook = Callable[..., Awaitable[Any]]
MATCH_TIMEOUT = 0.05  # seconds one pattern may spend on one message
_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
# re's flag values are what plugin authors pass; regex numbers two of them differently.
_FLAGS = {
    re.IGNORECASE: regex.IGNORECASE,
    re.MULTILINE: regex.MULTILINE,
    re.DOTALL: regex.DOTALL,
    re.VERBOSE: regex.VERBOSE,
    re.ASCII: regex.ASCII,
    re.UNICODE: regex.UNICODE,
}


class PluginError(Exception):
    """A plugin that cannot be loaded; the message names the plugin, handler and problem."""


IdMatch = Union[str, "re.Pattern[str]", None]  # how a decorator names an id: exactly, or a pattern

# What each kind of interactive handler may declare besides ctx (also on ctx.interaction).
_OFFERED: Mapping[str, set[str]] = {
    SLASH: {"text", "args"},
    "block_actions": {"value", "action"},
    "shortcut": set(),
    "message_action": {"message"},
    "view_submission": {"values", "metadata"},
    "view_closed": {"values", "metadata"},
    "block_suggestion": {"value"},
}


@dataclass(frozen=True)
class Selector:
    """Which interactive payloads a handler answers: the payload's kind, and its ``name`` (the
    slash command, the ``callback_id``, or the ``action_id``) and ``block_id``, each None (any),
    a string (exactly) or a compiled ``regex`` pattern (fully matched)."""

    interaction: str
    name: Any = None
    block_id: Any = None

    @property
    def exact(self) -> bool:
        """Both ids exact (or absent): two plugins declaring it conflict, as commands do."""
        return not any(hasattr(v, "fullmatch") for v in (self.name, self.block_id))

    def label(self) -> str:
        shown = [getattr(v, "pattern", v) for v in (self.name, self.block_id) if v is not None]
        return " ".join([self.interaction, *map(str, shown)])


@dataclass(frozen=True)
class Route:
    """One handler and what it answers to. Built by the decorators; read by the dispatcher."""

    plugin: str
    name: str  # the handler's function name
    kind: str  # message | command | event | schedule | interactive
    fn: Handler
    pattern: Any = None  # a compiled ``regex`` pattern
    command: str | None = None
    event_type: str | None = None
    trigger: Trigger | None = None
    selector: Selector | None = None  # kind "interactive"
    timeout: float | None = None
    match_timeout: float = MATCH_TIMEOUT
    include_bots: bool = False
    doc: str = ""
    usage: str = ""
    # The keyword arguments the handler declares (None: it takes **kwargs) and those it requires.
    params: frozenset[str] | None = frozenset()
    required: frozenset[str] = frozenset()

    @property
    def summary(self) -> str:
        """The first line of the docstring."""
        return self.doc.splitlines()[0] if self.doc else ""


@dataclass
class Plugin:
    """A named set of handlers. Decorate coroutines; every handler takes ``ctx`` first.

    ``settings`` names the keys the plugin needs in its ``[plugins.<name>]`` table and their types
    (``{"channel": str}``); a table without them fails the load, so ``check-config`` and start-up
    say so rather than the first handler that reads ``ctx.config``.
    """

    name: str
    routes: list[Route] = field(default_factory=list)
    startup: list[Hook] = field(default_factory=list)
    shutdown: list[Hook] = field(default_factory=list)
    settings: Mapping[str, type] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise PluginError(f"plugin {self.name!r}: a name is letters, digits, _ and - only")

    def _add(self, fn: Handler, kind: str, offered: set[str], **route: Any) -> Handler:
        params, required = _check_signature(self.name, fn, offered)
        if kind == "command" and any(r.command == route["command"] for r in self.routes):
            where = f"plugin {self.name}, handler {fn.__name__}"
            raise PluginError(f"{where}: command {route['command']!r} is declared twice")
        selector = route.get("selector")
        if selector is not None and selector.exact and any(r.selector == selector for r in self.routes):
            where = f"plugin {self.name}, handler {fn.__name__}"
            raise PluginError(f"{where}: {selector.label()} is declared twice")
        doc = inspect.getdoc(fn) or ""
        # An interactive handler runs wrapped: it acks with its return value if it has not acked.
        run = acking(fn) if kind == "interactive" else fn
        self.routes.append(
            Route(self.name, fn.__name__, kind, run, doc=doc, params=params, required=required, **route)
        )
        return fn

    def message(
        self,
        pattern: str,
        *,
        flags: int = 0,
        timeout: float | None = None,
        match_timeout: float = MATCH_TIMEOUT,
        include_bots: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Run on a user message whose text matches ``pattern`` (searched, as ``re.search`` does).

        Named groups become keyword arguments. ``flags`` are ``re`` flags. ``timeout`` bounds the
        handler (default: ``runtime.handler_timeout``); ``match_timeout`` bounds the matching.
        """
        compiled = _compile(self.name, pattern, flags)
        groups = set(compiled.groupindex)
        return lambda fn: self._add(
            fn,
            "message",
            groups,
            pattern=compiled,
            timeout=timeout,
            match_timeout=match_timeout,
            include_bots=include_bots,
            usage=pattern,
        )

    def command(
        self, name: str, *, usage: str = "", timeout: float | None = None
    ) -> Callable[[Handler], Handler]:
        """Run on ``@bot name args`` or ``<prefix>name args`` (in a DM, ``name args`` alone).

        The handler may take ``args`` (the words after the name, quotes respected) and ``text``
        (everything after the name, as typed).
        """
        if not _NAME_RE.fullmatch(name):
            raise PluginError(f"plugin {self.name}: bad command name {name!r}")
        return lambda fn: self._add(
            fn, "command", {"args", "text"}, command=name.lower(), timeout=timeout, usage=usage
        )

    def event(self, event_type: str, *, timeout: float | None = None) -> Callable[[Handler], Handler]:
        """Run on any Slack event of that type (``reaction_added``, ``app_requested``, ...)."""
        if not event_type or not event_type.replace("_", "").isalnum():
            raise PluginError(f"plugin {self.name}: bad event type {event_type!r}")
        return lambda fn: self._add(fn, "event", set(), event_type=event_type, timeout=timeout)

    def schedule(
        self, *, every: float | None = None, cron: str | None = None, timeout: float | None = None
    ) -> Callable[[Handler], Handler]:
        """Run every ``every`` seconds, or on a five-field ``cron`` expression (UTC).

        Each slot runs once across all processes sharing the store, not once per process.
        """
        if (every is None) == (cron is None):
            raise PluginError(f"plugin {self.name}: schedule() takes exactly one of every= or cron=")
        trigger: Trigger
        if every is not None:
            if every <= 0:
                raise PluginError(f"plugin {self.name}: schedule(every=...) must be positive")
            trigger = Every(float(every))
        else:
            assert cron is not None
            try:
                trigger = Cron.parse(cron)
            except CronError as exc:
                raise PluginError(f"plugin {self.name}: schedule(cron={cron!r}): {exc}") from None
        return lambda fn: self._add(fn, "schedule", set(), trigger=trigger, timeout=timeout)

    # -- interactivity ---------------------------------------------------------------------------

    def _interactive(
        self, interaction: str, name: IdMatch, block_id: IdMatch, timeout: float | None, usage: str = ""
    ) -> Callable[[Handler], Handler]:
        selector = Selector(interaction, self._id(name), self._id(block_id))
        offered = _OFFERED[interaction]

        def decorate(fn: Handler) -> Handler:
            self._add(fn, "interactive", offered, selector=selector, timeout=timeout, usage=usage)
            return fn  # the plugin module keeps the function as written

        return decorate

    def _id(self, value: IdMatch) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, re.Pattern):
            return _compile(self.name, value.pattern, value.flags & ~re.UNICODE)
        raise PluginError(f"plugin {self.name}: an id is a str or an re.Pattern, not {type(value).__name__}")

    def slash(self, command: str, *, timeout: float | None = None) -> Callable[[Handler], Handler]:
        """Run on the slash command ``command`` (``"/deploy"``). The handler may take ``text``
        (as typed after the command) and ``args`` (its words); what it returns is the immediate
        answer (a str: an ephemeral message; a dict: the ack's body), or it calls ``ctx.ack()``."""
        if not re.fullmatch(r"/[a-z0-9_-]+", command.lower()):
            raise PluginError(f"plugin {self.name}: a slash command is '/name', not {command!r}")
        return self._interactive(SLASH, command.lower(), None, timeout, usage=command.lower())

    def action(
        self, action_id: IdMatch = None, *, block_id: IdMatch = None, timeout: float | None = None
    ) -> Callable[[Handler], Handler]:
        """Run on a click or selection (``block_actions``) whose ``action_id`` and/or ``block_id``
        match (a str exactly, an ``re.Pattern`` fully). The handler may take ``value`` (the
        button's value, or the chosen option's) and ``action`` (the whole action object)."""
        if action_id is None and block_id is None:
            raise PluginError(f"plugin {self.name}: action() needs an action_id or a block_id")
        return self._interactive("block_actions", action_id, block_id, timeout)

    def shortcut(self, callback_id: IdMatch, *, timeout: float | None = None) -> Callable[[Handler], Handler]:
        """Run on the global shortcut ``callback_id`` (typically opens a modal: ``ctx.open_modal``)."""
        return self._interactive("shortcut", callback_id, None, timeout)

    def message_shortcut(
        self, callback_id: IdMatch, *, timeout: float | None = None
    ) -> Callable[[Handler], Handler]:
        """Run on the message shortcut ``callback_id``; ``message`` is the message it was used on."""
        return self._interactive("message_action", callback_id, None, timeout)

    def view_submission(
        self, callback_id: IdMatch, *, timeout: float | None = None
    ) -> Callable[[Handler], Handler]:
        """Run when a modal with ``callback_id`` is submitted. ``values`` is its state as
        ``{block_id: {action_id: value}}``, ``metadata`` its ``private_metadata``. Return
        ``{"errors": {block_id: message}}`` (or call ``ctx.ack(errors=...)``) to keep it open."""
        return self._interactive("view_submission", callback_id, None, timeout)

    def view_closed(
        self, callback_id: IdMatch, *, timeout: float | None = None
    ) -> Callable[[Handler], Handler]:
        """Run when a modal with ``callback_id`` (opened with ``notify_on_close``) is closed."""
        return self._interactive("view_closed", callback_id, None, timeout)

    def options(
        self, action_id: IdMatch = None, *, block_id: IdMatch = None, timeout: float | None = None
    ) -> Callable[[Handler], Handler]:
        """Answer an external select's options request (``block_suggestion``); ``value`` is what
        the user typed. Return the options (``ctx.ack(options=[(label, value), ...])``)."""
        if action_id is None and block_id is None:
            raise PluginError(f"plugin {self.name}: options() needs an action_id or a block_id")
        return self._interactive("block_suggestion", action_id, block_id, timeout)

    def on_startup(self, fn: Hook) -> Hook:
        """Run once when the runtime starts; the hook gets a context with ``store`` and ``config``."""
        _check_signature(self.name, fn, set())
        self.startup.append(fn)
        return fn

    def on_shutdown(self, fn: Hook) -> Hook:
        """Run once when the runtime stops, after the last handler finished."""
        _check_signature(self.name, fn, set())
        self.shutdown.append(fn)
        return fn


def _compile(plugin: str, pattern: str, flags: int) -> Any:
    unknown = flags & ~sum(_FLAGS)
    if unknown:
        raise PluginError(f"plugin {plugin}: unsupported regex flags {unknown:#x} in {pattern!r}")
    translated = sum(new for old, new in _FLAGS.items() if flags & old)
    try:
        return regex.compile(pattern, translated | regex.VERSION0)
    except regex.error as exc:
        raise PluginError(f"plugin {plugin}: bad pattern {pattern!r}: {exc}") from None


def _check_signature(
    plugin: str, fn: Callable[..., Any], offered: set[str]
) -> tuple[frozenset[str] | None, frozenset[str]]:
    """Reject handlers the dispatcher could not call; return (declared, required) parameters."""
    where = f"plugin {plugin}, handler {getattr(fn, '__name__', fn)!s}"
    if not inspect.iscoroutinefunction(fn):
        raise PluginError(f"{where}: must be an async def")
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise PluginError(f"{where}: the first parameter must be the context (ctx)")
    declared: set[str] = set()
    required: set[str] = set()
    takes_any = False
    for p in params[1:]:
        if p.kind is p.VAR_KEYWORD:
            takes_any = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            raise PluginError(f"{where}: *{p.name} is not supported")
        if p.kind is p.POSITIONAL_ONLY:
            raise PluginError(f"{where}: {p.name} is positional-only; arguments are passed by name")
        if p.name not in offered:  # with a default too: a misspelt `nots: str = ""` never gets the note
            available = ", ".join(sorted(offered)) or "nothing besides ctx"
            raise PluginError(f"{where}: parameter {p.name!r} is never passed (available: {available})")
        declared.add(p.name)
        if p.default is p.empty:
            required.add(p.name)
    return (None if takes_any else frozenset(declared)), frozenset(required)
