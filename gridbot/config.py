"""Typed, frozen, validated configuration read from TOML with ``${ENV}`` interpolation.

Every mistake is reported with its key path (``teams[1].app_token: required when transport =
"socket_mode"``), all at once, and never with a secret's value.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from gridbot.secrets import Secret

Transport = Literal["rtm", "socket_mode", "http"]
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEYS = frozenset({"bot_token", "app_token", "url", "user_token", "signing_secret"})
T = TypeVar("T")


class ConfigError(Exception):
    """One or more configuration mistakes, each as ``key.path: what was expected``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def error_report(path: str | Path, exc: ConfigError) -> str:
    """A rejected config as every command prints it: ``<path>: invalid``, then one indented line
    per problem (a daemon reloading logs the same problems as ``config.reload_rejected``)."""
    return "\n".join([f"{path}: invalid", *(f"  {problem}" for problem in exc.problems)])


@dataclass(frozen=True)
class SlackConfig:
    api_url: str = "https://slack.com/api/"


@dataclass(frozen=True)
class RedisConfig:
    url: Secret | None = None  # None: the embedded in-memory store (one process only)
    key_prefix: str = "gridbot"


@dataclass(frozen=True)
class TeamConfig:
    transport: Transport
    bot_token: Secret
    app_token: Secret | None = None
    connections: int = 1  # Socket Mode sockets for this app token (1..10)
    name: str = ""  # an operator's label; the team id itself comes from auth.test
    signing_secret: Secret | None = None  # transport = "http": the app's request signing secret


def connection_key(team: TeamConfig) -> str:
    """The key of the connection that serves ``team``: ``rtm:<digest>`` for an RTM team (its bot
    token), ``socket_mode:<digest>`` for a Socket Mode team (its app token, which every team
    installed through that app shares), ``http:<digest>`` for an Events API team (its app's
    signing secret, shared the same way). Secret-free; part of Redis keys, so its format is fixed."""
    token = team.app_token if team.transport == "socket_mode" and team.app_token else team.bot_token
    if team.transport == "http" and team.signing_secret is not None:
        token = team.signing_secret
    return f"{team.transport}:{token.digest()}"


@dataclass(frozen=True)
class PluginsConfig:
    enabled: tuple[str, ...] = ("echo",)
    strict: bool = False
    command_prefix: str = "!"
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeConfig:
    handler_timeout: float = 30.0
    max_concurrent_handlers: int = 256
    shutdown_timeout: float = 10.0
    # A standby team holds a delivery this long before handling it itself, so the responsible
    # team's own copy (normally milliseconds behind) gets there first.
    standby_grace: float = 2.0
    # The TTL of a connected team's heartbeat (an election moves within this after its socket
    # dies) and of each connection's ownership lease (several processes); both renewed every third.
    lease_ttl: float = 6.0
    claim_ttl: int = 900  # seconds a handled event is remembered (>= 15 min)
    ping_interval: float = 6.0
    pong_timeout: float = 4.0
    hello_timeout: float = 10.0
    auth_poll_interval: float = 3600.0  # re-run auth.test to notice a team moved into an enterprise
    paused_probe_interval: float = 180.0  # re-probe a team paused by a Grid migration
    # The daemon's youngest-generation garbage collection threshold (Python's default is 700):
    # with the default, collections took a quarter of the hot path under a flood (bench/).
    gc_threshold: int = 10_000


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int | None = None  # None: the health/metrics endpoint is off


@dataclass(frozen=True)
class EventsConfig:
    """The Events API request URL's listener (teams with ``transport = "http"``), apart from
    the ops endpoint so that one can stay on loopback while this one faces a load balancer."""

    host: str = "127.0.0.1"
    port: int | None = None  # None: no listener (required once a team uses transport = "http")
    path: str = "/slack/events"
    # How long a delivery waits for the store's decision before it is answered 503 (Slack wants
    # a 2xx within 3 s, and retries what it did not get one for).
    ack_timeout: float = 2.5
    # Deliveries arriving within this window are offered together, so they share one store round
    # trip (0: each alone). On the 2-core development VM a round trip's wake-up cost more CPU than
    # the rest of a delivery: 2 ms took 420 to 230 us per event at 1,000 requests/s (bench/).
    batch_window: float = 0.002
    read_timeout: float = 5.0  # a request must arrive whole within this of its first byte
    idle_timeout: float = 75.0  # an idle keep-alive connection is closed after this
    max_body_bytes: int = 1 << 20
    max_connections: int = 1024


@dataclass(frozen=True)
class Config:
    slack: SlackConfig = field(default_factory=SlackConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    teams: tuple[TeamConfig, ...] = ()
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    warnings: tuple[str, ...] = ()


class _Reader:
    """Walks the raw TOML tree, collecting every problem with its key path."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

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
                self.problems.append(f"{path}: environment variable {name} is not set")
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
        elif not bot.startswith(("xoxb-", "xoxp-")):
            r.problems.append(f"{path}.bot_token: expected a bot token starting with 'xoxb-'")
        elif bot in seen_bot:
            r.problems.append(f"{path}.bot_token: the same token as teams[{seen_bot[bot]}]")
        seen_bot.setdefault(bot, i)
        app = r.get(tbl, "app_token", path, str, "")
        connections = r.get(tbl, "connections", path, int, 1)
        if transport == "socket_mode":
            if not app:
                r.problems.append(f'{path}.app_token: required when transport = "socket_mode"')
            elif not app.startswith("xapp-"):
                r.problems.append(f"{path}.app_token: expected an app-level token starting with 'xapp-'")
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
    top = r.table(dict(raw), "", {"slack", "redis", "teams", "plugins", "runtime", "http", "events"})
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
    config = Config(
        slack=SlackConfig(api_url=api_url),
        redis=RedisConfig(url=Secret(url) if url else None, key_prefix=prefix),
        teams=teams,
        plugins=_plugins(r, top.get("plugins")),
        runtime=_runtime(r, top.get("runtime")),
        http=_http(r, top.get("http")),
        events=_events(r, top.get("events"), teams),
    )
    if r.problems:
        raise ConfigError(sorted(set(r.problems)))
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


def replace(config: Config, **changes: Any) -> Config:
    """A copy of ``config`` with top-level sections replaced (config reload, tests, the grid fixture)."""
    return Config(**{**config.__dict__, **changes})
