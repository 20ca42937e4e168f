"""gridbot: a Slack bot runtime for Enterprise Grid.

This module is the public surface for plugin authors, and nothing else.
"""

from gridbot.context import Context, PluginStore
from gridbot.events import Event
from gridbot.plugins import Plugin, PluginError

__all__ = ["Context", "Event", "Plugin", "PluginError", "PluginStore"]
