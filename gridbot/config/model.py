"""What a configuration is: the typed, frozen sections and the error that names every mistake."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from gridbot.secrets import Secret

Transport = Literal["rtm", "socket_mode", "http"]


class ConfigError(Exception):
    """One or more configuration mistakes, each as ``key.path: what was expected``.

    ``partial`` is the config as far as it could be read (None if the file itself could not be):
    ``check-config`` still loads its plugins, to report every problem in one run."""

    def __init__(self, problems: list[str], partial: Config | None = None) -> None:
        self.problems = problems
        self.partial = partial
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
    # An org-wide installation's granted workspace (gridbot.installs.org): the team id is this,
    # whatever auth.test says, and every Web API call is sent with team_id= it.
    workspace: str | None = None


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
class LoggingConfig:
    # One ``event.handled`` info line per handled event (receiving team, handling team, decision).
    # Off for floods: the line costs a few microseconds per event (README, "Performance").
    handled_events: bool = True


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
class OAuthConfig:
    """Installs made through Slack's OAuth flow (``[oauth]``): the install routes, how the installed
    teams' events arrive, and token rotation. The installations themselves live in the store."""

    client_id: str
    client_secret: Secret
    scopes: tuple[str, ...]
    redirect_url: str  # https://<public host>/slack/oauth_redirect, as registered with the app
    transport: Transport  # "socket_mode" (app_token) or "http" (signing_secret, [events])
    app_token: Secret | None = None
    signing_secret: Secret | None = None
    connections: int = 1
    user_scopes: tuple[str, ...] = ()
    install_path: str = "/slack/install"
    host: str = "127.0.0.1"
    port: int | None = None  # the install routes' listener; None: no routes (installs made elsewhere)
    token_rotation: bool = False
    refresh_ahead: float = 7200.0  # refresh a token this many seconds before it expires
    watch_interval: float = 1.0  # how often every process looks for installs gained or lost
    state_ttl: float = 600.0  # how long an install link stays good

    @property
    def redirect_path(self) -> str:
        """The path part of :attr:`redirect_url`: where the redirect route is served."""
        return urlsplit(self.redirect_url).path or "/"

    def team_config(self, bot_token: Secret, name: str) -> TeamConfig:
        """How one stored installation is served: the app's transport, the install's bot token."""
        return TeamConfig(
            transport=self.transport,
            bot_token=bot_token,
            app_token=self.app_token,
            connections=self.connections,
            name=name,
            signing_secret=self.signing_secret,
        )


@dataclass(frozen=True)
class Config:
    slack: SlackConfig = field(default_factory=SlackConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    teams: tuple[TeamConfig, ...] = ()
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    oauth: OAuthConfig | None = None  # None: static [[teams]] only
    warnings: tuple[str, ...] = ()


def replace(config: Config, **changes: Any) -> Config:
    """A copy of ``config`` with top-level sections replaced (config reload, tests, the grid fixture)."""
    return Config(**{**config.__dict__, **changes})
