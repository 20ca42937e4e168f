"""From a decided event to its handlers: routing (which handlers) and the worker pool (running them)."""

from gridbot.dispatch.routing import Router
from gridbot.dispatch.workers import Dispatcher

__all__ = ["Dispatcher", "Router"]
