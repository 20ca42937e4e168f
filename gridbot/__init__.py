"""gridbot: a Slack bot runtime for Enterprise Grid.

This module is the public surface for plugin authors, and nothing else.
"""

from gridbot.context import Context, PluginStore
from gridbot.directory import ChannelInfo, Profile, UserNotFound
from gridbot.events import Event
from gridbot.logs import get_logger
from gridbot.plugins import Plugin, PluginError

__all__ = [
    "ChannelInfo",
    "Context",
    "Event",
    "Plugin",
    "PluginError",
    "PluginStore",
    "Profile",
    "UserNotFound",
    "get_logger",
]
