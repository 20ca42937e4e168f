"""gridbot: a Slack bot runtime for Enterprise Grid.

This module is the public surface for plugin authors, and nothing else.
"""

from gridbot.context import Context, PluginStore
from gridbot.directory import ChannelInfo, Profile, UserNotFound
from gridbot.events import Event
from gridbot.interactive.ack import TriggerExpired
from gridbot.interactive.context import InteractiveContext
from gridbot.interactive.payload import Interaction
from gridbot.interactive.respond import RespondFailed
from gridbot.logs import get_logger
from gridbot.plugins import Plugin, PluginError

__all__ = [
    "ChannelInfo",
    "Context",
    "Event",
    "Interaction",
    "InteractiveContext",
    "Plugin",
    "PluginError",
    "PluginStore",
    "Profile",
    "RespondFailed",
    "TriggerExpired",
    "UserNotFound",
    "get_logger",
]
