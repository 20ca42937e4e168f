"""Run the real runtime against the simulator: the config that connects them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from gridbot.config import (
    Config,
    EventsConfig,
    PluginsConfig,
    RedisConfig,
    RuntimeConfig,
    SlackConfig,
    TeamConfig,
)
from gridbot.secrets import Secret
from gridbot.testing.simulator import GridSimulator

if TYPE_CHECKING:
    from gridbot.runtime import Runtime

Transport = Literal["rtm", "socket_mode", "http"]

# Timings that make failover observable in seconds rather than minutes (tests, the demo).
FAST_RUNTIME: Mapping[str, float] = {
    "standby_grace": 0.5,
    "lease_ttl": 1.5,
    "ping_interval": 2.0,
    "pong_timeout": 1.0,
    "hello_timeout": 2.0,
    "shutdown_timeout": 5.0,
    "handler_timeout": 5.0,
}


def signing_secret(app_id: str) -> str:
    """The signing secret the simulator's app ``app_id`` signs its HTTP requests with (a test
    secret of Slack's shape: 32 hex digits)."""
    return hashlib.sha256(f"sim-signing-secret-{app_id}".encode()).hexdigest()[:32]


def config_for(
    sim: GridSimulator,
    transports: Mapping[str, Transport] | None = None,
    *,
    redis_url: str | None = None,
    key_prefix: str = "gridbot",
    plugins: tuple[str, ...] = ("echo",),
    plugin_settings: Mapping[str, Mapping[str, Any]] | None = None,
    **runtime: Any,
) -> Config:
    """A config serving the simulator's installations.

    ``transports`` maps team ids to "rtm", "socket_mode" or "http"; by default every installed
    team is served over RTM. An "http" team is served by the ``[events]`` listener (an ephemeral
    port on loopback), its app signing with :func:`signing_secret`: :func:`subscribe_http` then
    gives the app that request URL in the simulator, for its events and interactions. Timings
    are :data:`FAST_RUNTIME`'s; ``runtime`` overrides any :class:`RuntimeConfig` field.
    """
    teams = []
    for app in sim.topology.apps:
        for inst in app.installations:
            kind = (transports or {}).get(inst.team, "rtm" if transports is None else None)
            if kind is None:
                continue
            teams.append(
                TeamConfig(
                    transport=kind,
                    bot_token=Secret(inst.bot_token),
                    app_token=Secret(app.app_token) if kind == "socket_mode" and app.app_token else None,
                    signing_secret=Secret(signing_secret(app.id)) if kind == "http" else None,
                    name=inst.team,
                )
            )
    timings = {**FAST_RUNTIME, **runtime}
    return Config(
        slack=SlackConfig(api_url=sim.api_url),
        redis=RedisConfig(url=Secret(redis_url) if redis_url else None, key_prefix=key_prefix),
        teams=tuple(teams),
        plugins=PluginsConfig(enabled=plugins, settings=dict(plugin_settings or {})),
        runtime=RuntimeConfig(**timings),
        events=EventsConfig(port=0) if any(t.transport == "http" for t in teams) else EventsConfig(),
    )


async def subscribe_http(sim: GridSimulator, runtime: Runtime, config: Config) -> list[str]:
    """Give every app with a team over "http" the runtime's ``[events]`` listener as its request
    URL (the simulator checks it with ``url_verification``): its events and its users' slash
    commands and interactions are POSTed there. Returns the apps subscribed."""
    if runtime.events is None:
        return []
    url = f"http://{config.events.host}:{runtime.events.port}{config.events.path}"
    http_teams = {t.bot_token.get() for t in config.teams if t.transport == "http"}
    socket_teams = {t.bot_token.get() for t in config.teams if t.transport == "socket_mode"}
    apps = [a for a in sim.topology.apps if any(i.bot_token in http_teams for i in a.installations)]
    for app in apps:
        if any(i.bot_token in socket_teams for i in app.installations):
            # an app has Socket Mode or a request URL, not both: its other teams would hear nothing
            raise ValueError(f"app {app.id} has teams over both http and socket_mode: pick one")
        await sim.http.subscribe(app.id, url, signing_secret(app.id))
    return [a.id for a in apps]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(config: Config) -> str:
    """The TOML text of ``config`` (with its tokens: for test files, written mode 600)."""
    lines = ["[slack]", f"api_url = {_toml_value(config.slack.api_url)}", ""]
    if config.redis.url is not None:
        lines += [
            "[redis]",
            f"url = {_toml_value(config.redis.url.get())}",
            f"key_prefix = {_toml_value(config.redis.key_prefix)}",
            "",
        ]
    for team in config.teams:
        lines += [
            "[[teams]]",
            f"transport = {_toml_value(team.transport)}",
            f"bot_token = {_toml_value(team.bot_token.get())}",
        ]
        if team.app_token is not None:
            lines += [f"app_token = {_toml_value(team.app_token.get())}", f"connections = {team.connections}"]
        if team.signing_secret is not None:
            lines.append(f"signing_secret = {_toml_value(team.signing_secret.get())}")
        if team.name:
            lines.append(f"name = {_toml_value(team.name)}")
        lines.append("")
    plugins = config.plugins
    lines += [
        "[plugins]",
        f"enabled = {_toml_value(list(plugins.enabled))}",
        f"strict = {_toml_value(plugins.strict)}",
        f"command_prefix = {_toml_value(plugins.command_prefix)}",
        "",
    ]
    for name, settings in plugins.settings.items():
        lines.append(f"[plugins.{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
        lines.append("")
    lines.append("[runtime]")
    lines += [f"{key} = {_toml_value(value)}" for key, value in vars(config.runtime).items()]
    if config.http.port is not None:
        lines += ["", "[http]", f"host = {_toml_value(config.http.host)}", f"port = {config.http.port}"]
    if config.events.port is not None:
        lines += ["", "[events]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in vars(config.events).items()]
    return "\n".join(lines) + "\n"
