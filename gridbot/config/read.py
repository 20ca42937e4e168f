"""Reading a configuration: TOML with ``${ENV}`` interpolation into the sections of
:mod:`gridbot.config.model`, every mistake reported with its key path (``teams[1].app_token:
required when transport = "socket_mode"``), all at once, and never with a secret's value.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from gridbot.config.model import (
    Config,
    ConfigError,
    EventsConfig,
    HttpConfig,
    LoggingConfig,
    PluginsConfig,
    RedisConfig,
    RuntimeConfig,
    SlackConfig,
    TeamConfig,
)
from gridbot.config.oauth import read_oauth
from gridbot.secrets import Secret

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEYS = frozenset({"bot_token", "app_token", "url", "user_token", "signing_secret", "client_secret"})
T = TypeVar("T")


class _Reader:
    """Walks the raw TOML tree, collecting every problem with its key path."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.unset: dict[str, list[str]] = {}  # a missing variable -> the key paths that use it
        self.unknown: set[str] = set()  # key paths whose value needed a missing variable

    def report(self) -> list[str]:
        """Every problem once: one line per missing variable (naming every key that uses it), and
        nothing more about a key whose value is unknown because its variable is missing (its
        "required" or "expected xoxb-" would only repeat the same mistake)."""
        lines = [p for p in self.problems if p.partition(": ")[0] not in self.unknown]
        for name, paths in self.unset.items():
            also = f" (also used by {', '.join(paths[1:])})" if paths[1:] else ""
            lines.append(f"{paths[0]}: environment variable {name} is not set{also}")
        return sorted(set(lines))

    def table(self, raw: Any, path: str, allowed: set[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problems.append(f"{path}: expected a table")
            return {}
        for key in raw.keys() - allowed:
            self.problems.append(f"{path + '.' if path else ''}{key}: unknown key")
        return raw

    def get(self, tbl: Mapping[str, Any], key: str, path: str, kind: type[T], default: T) -> T:
        full = f"{path}.{key}" if path else key
        if key not in tbl:
            return default
        value = tbl[key]
        if isinstance(value, str) and kind is not bool:
            value = self.expand(value, full)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            shown = "a secret" if key in _SECRET_KEYS else repr(value)
            self.problems.append(f"{full}: expected {kind.__name__}, got {shown}")
            return default
        return value

    def expand(self, value: str, path: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                paths = self.unset.setdefault(name, [])
                if path not in paths:
                    paths.append(path)
                self.unknown.add(path)
                return ""
            return self.env[name]

        return _ENV_RE.sub(sub, value)

    def check(self, ok: bool, path: str, message: str) -> None:
        if not ok:
            self.problems.append(f"{path}: {message}")


def _positive(r: _Reader, tbl: Mapping[str, Any], key: str, default: float, kind: type) -> Any:
    value = r.get(tbl, key, "runtime", kind, default)
    r.check(value > 0, f"runtime.{key}", "must be greater than 0")
    return value


# What a token's prefix says it is, for an error that must not show the token itself.
_TOKEN_KINDS = {
    "xoxb": "a bot token",
    "xoxp": "a user token",
    "xapp": "an app-level token",
    "xoxe": "a refresh or rotating token",
    "xoxa": "a workspace app token",
}


def _kind(token: str) -> str:
    prefix = token.partition("-")[0]
    kind = _TOKEN_KINDS.get(prefix)
    return f"got {kind} ({prefix}-)" if kind else "got something else"


def _teams(r: _Reader, raw: Any) -> tuple[TeamConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.problems.append("teams: expected an array of tables ([[teams]])")
        return ()
    teams: list[TeamConfig] = []
    seen_bot: dict[str, int] = {}
    app_connections: dict[str, tuple[int, int]] = {}
    for i, item in enumerate(raw):
        path = f"teams[{i}]"
        tbl = r.table(
            item, path, {"transport", "bot_token", "app_token", "connections", "name", "signing_secret"}
        )
        transport = r.get(tbl, "transport", path, str, "")
        if transport not in ("rtm", "socket_mode", "http"):
            r.problems.append(f'{path}.transport: expected "rtm", "socket_mode" or "http"')
            continue
        bot = r.get(tbl, "bot_token", path, str, "")
        if not bot:
            r.problems.append(f"{path}.bot_token: required")
        elif not bot.startswith("xoxb-"):
            r.problems.append(f"{path}.bot_token: expected a bot token starting with 'xoxb-', {_kind(bot)}")
        elif bot in seen_bot:
            r.problems.append(f"{path}.bot_token: the same token as teams[{seen_bot[bot]}]")
        seen_bot.setdefault(bot, i)
        app = r.get(tbl, "app_token", path, str, "")
        connections = r.get(tbl, "connections", path, int, 1)
        if transport == "socket_mode":
            if not app:
                r.problems.append(f'{path}.app_token: required when transport = "socket_mode"')
            elif not app.startswith("xapp-"):
                r.problems.append(
                    f"{path}.app_token: expected an app-level token starting with 'xapp-', {_kind(app)}"
                )
            r.check(1 <= connections <= 10, f"{path}.connections", "must be between 1 and 10")
            first = app_connections.setdefault(app, (i, connections))
            r.check(
                first[1] == connections,
                f"{path}.connections",
                f"teams[{first[0]}] shares this app token with connections = {first[1]}",
            )
        else:
            r.check(not app, f"{path}.app_token", 'only used when transport = "socket_mode"')
        signing = r.get(tbl, "signing_secret", path, str, "")
        if transport == "http":
            r.check(bool(signing), f"{path}.signing_secret", 'required when transport = "http"')
            r.check(
                "connections" not in tbl, f"{path}.connections", 'only used when transport = "socket_mode"'
            )
        else:
            r.check(not signing, f"{path}.signing_secret", 'only used when transport = "http"')
        teams.append(
            TeamConfig(
                transport=transport,  # type: ignore[arg-type]  # checked above
                bot_token=Secret(bot),
                app_token=Secret(app) if app else None,
                connections=connections,
                name=r.get(tbl, "name", path, str, ""),
                signing_secret=Secret(signing) if signing else None,
            )
        )
    return tuple(teams)


_SECRET_NAME_RE = re.compile(r"(^|_)(token|password|secret)$")


def _plugin_settings(r: _Reader, value: Any, path: str, key: str = "") -> Any:
    """A plugin's own table: ${ENV} expanded everywhere, token/password/secret values as Secret."""
    if isinstance(value, dict):
        return {k: _plugin_settings(r, v, f"{path}.{k}", k) for k, v in value.items()}
    if isinstance(value, list):
        return [_plugin_settings(r, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        expanded = r.expand(value, path)
        return Secret(expanded) if _SECRET_NAME_RE.search(key) else expanded
    return value


def _plugins(r: _Reader, raw: Any) -> PluginsConfig:
    tbl = r.table(raw, "plugins", set(raw or {}))
    enabled = r.get(tbl, "enabled", "plugins", list, ["echo"])
    for i, name in enumerate(enabled):
        r.check(isinstance(name, str) and bool(name), f"plugins.enabled[{i}]", "expected a plugin name")
    settings = {}
    for key, value in tbl.items():
        if key in ("enabled", "strict", "command_prefix"):
            continue
        if isinstance(value, dict):
            settings[key] = _plugin_settings(r, value, f"plugins.{key}")
        else:
            r.problems.append(f"plugins.{key}: unknown key (a plugin's own settings go in [plugins.{key}])")
    return PluginsConfig(
        enabled=tuple(str(n) for n in enabled),
        strict=r.get(tbl, "strict", "plugins", bool, False),
        command_prefix=r.get(tbl, "command_prefix", "plugins", str, "!"),
        settings=settings,
    )


def _runtime(r: _Reader, raw: Any) -> RuntimeConfig:
    defaults = RuntimeConfig()
    names = set(RuntimeConfig.__dataclass_fields__)
    tbl = r.table(raw, "runtime", names)
    values: dict[str, Any] = {}
    for name in names:
        default = getattr(defaults, name)
        values[name] = _positive(r, tbl, name, default, type(default))
    if values["claim_ttl"] < 900:
        r.problems.append("runtime.claim_ttl: must be at least 900 seconds (15 minutes)")
    return RuntimeConfig(**values)


def _http(r: _Reader, raw: Any) -> HttpConfig:
    tbl = r.table(raw, "http", {"host", "port"})
    port = r.get(tbl, "port", "http", int, -1)
    r.check(port == -1 or 0 <= port <= 65535, "http.port", "must be between 0 and 65535")
    return HttpConfig(host=r.get(tbl, "host", "http", str, "127.0.0.1"), port=None if port == -1 else port)


def _logging(r: _Reader, raw: Any) -> LoggingConfig:
    tbl = r.table(raw, "logging", {"handled_events"})
    return LoggingConfig(handled_events=r.get(tbl, "handled_events", "logging", bool, True))


def _events(r: _Reader, raw: Any, teams: tuple[TeamConfig, ...]) -> EventsConfig:
    d = EventsConfig()
    tbl = r.table(raw, "events", set(EventsConfig.__dataclass_fields__))
    port = r.get(tbl, "port", "events", int, -1)
    r.check(port == -1 or 0 <= port <= 65535, "events.port", "must be between 0 and 65535")
    if port == -1 and any(t.transport == "http" for t in teams):
        r.problems.append('events.port: required when a team uses transport = "http"')
    path = r.get(tbl, "path", "events", str, d.path)
    r.check(
        path.startswith("/") and path != "/healthz", "events.path", "a path starting with / (not /healthz)"
    )
    values: dict[str, Any] = {}
    for key in ("ack_timeout", "read_timeout", "idle_timeout", "max_body_bytes", "max_connections"):
        default = getattr(d, key)
        values[key] = r.get(tbl, key, "events", type(default), default)
        r.check(values[key] > 0, f"events.{key}", "must be greater than 0")
    values["batch_window"] = r.get(tbl, "batch_window", "events", float, d.batch_window)
    r.check(0 <= values["batch_window"] <= 0.1, "events.batch_window", "must be between 0 and 0.1 seconds")
    r.check(values["ack_timeout"] < 3, "events.ack_timeout", "must be below 3 seconds (Slack's ack deadline)")
    return EventsConfig(
        host=r.get(tbl, "host", "events", str, d.host), port=None if port == -1 else port, path=path, **values
    )


def parse(raw: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Build a :class:`Config` from a parsed TOML mapping, or raise :class:`ConfigError`."""
    r = _Reader(os.environ if env is None else env)
    sections = {"slack", "redis", "teams", "plugins", "runtime", "http", "logging", "events", "oauth"}
    top = r.table(dict(raw), "", sections)
    slack = r.table(top.get("slack"), "slack", {"api_url"})
    api_url = r.get(slack, "api_url", "slack", str, SlackConfig.api_url)
    r.check(api_url.startswith(("http://", "https://")), "slack.api_url", "expected an http(s) URL")
    if not api_url.endswith("/"):
        api_url += "/"
    redis = r.table(top.get("redis"), "redis", {"url", "key_prefix"})
    url = r.get(redis, "url", "redis", str, "")
    schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "redis+sentinel://")
    r.check(
        not url or url.startswith(schemes),
        "redis.url",
        f"expected a URL starting with one of {', '.join(schemes)}",
    )
    prefix = r.get(redis, "key_prefix", "redis", str, "gridbot")
    r.check(bool(re.fullmatch(r"[A-Za-z0-9_.:-]+", prefix)), "redis.key_prefix", "letters, digits, _.:- only")
    teams = _teams(r, top.get("teams"))
    events = _events(r, top.get("events"), teams)
    config = Config(
        slack=SlackConfig(api_url=api_url),
        redis=RedisConfig(url=Secret(url) if url else None, key_prefix=prefix),
        teams=teams,
        plugins=_plugins(r, top.get("plugins")),
        runtime=_runtime(r, top.get("runtime")),
        http=_http(r, top.get("http")),
        logging=_logging(r, top.get("logging")),
        events=events,
        oauth=read_oauth(r, top.get("oauth"), teams, events.port),
    )
    problems = r.report()
    if problems:
        raise ConfigError(problems, config)
    return config


def _literal_secrets(raw: Any, path: str = "") -> list[str]:
    """Key paths of secrets written into the file itself rather than taken from ${ENV}.
    A file holding only ${VAR} references may be world-readable (a container's mounted config)."""
    found: list[str] = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and (key in _SECRET_KEYS or _SECRET_NAME_RE.search(str(key))):
                plain = _ENV_RE.sub("", value)
                if key == "url":
                    plain = plain if re.search(r"://[^/@]*:[^/@]+@", plain) else ""
                if plain.strip():
                    found.append(where)
            else:
                found += _literal_secrets(value, where)
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            found += _literal_secrets(value, f"{path}[{i}]")
    return found


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file. Adds a warning when others can read the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read ({exc.strerror})"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p}: not valid TOML ({exc})"]) from None
    config = parse(raw, env)
    warnings = []
    literal = _literal_secrets(raw)
    if literal and p.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.append(
            f"{p}: readable by other users and holds secrets in plain text ({', '.join(literal)}); "
            "chmod 600 it, or move them to the environment as ${VARS}"
        )
    return Config(**{**config.__dict__, "warnings": tuple(warnings)})

