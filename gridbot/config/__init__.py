"""Typed, frozen, validated configuration: what it is (:mod:`~gridbot.config.model`) and how a TOML
file becomes one (:mod:`~gridbot.config.read`)."""

from gridbot.config.model import (
    Config,
    ConfigError,
    EventsConfig,
    HttpConfig,
    LoggingConfig,
    OAuthConfig,
    PluginsConfig,
    RedisConfig,
    RuntimeConfig,
    SlackConfig,
    TeamConfig,
    Transport,
    connection_key,
    error_report,
    replace,
)
from gridbot.config.read import load, parse

__all__ = [
    "Config",
    "ConfigError",
    "EventsConfig",
    "HttpConfig",
    "LoggingConfig",
    "OAuthConfig",
    "PluginsConfig",
    "RedisConfig",
    "RuntimeConfig",
    "SlackConfig",
    "TeamConfig",
    "Transport",
    "connection_key",
    "error_report",
    "load",
    "parse",
    "replace",
]
