"""The grid playground: the simulator and the real runtime behind a local web page.

``gridbot playground`` shows the org, lets you type as any user into any conversation, and shows
live, for each message, the copy each team's socket got, the decision about each copy, the
elected team and the reply, with buttons that inject the simulator's faults.

The root imports nothing heavy: ``gridbot --help`` loads :mod:`.command` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Playground, PlaygroundError

__all__ = ["Playground", "PlaygroundError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
