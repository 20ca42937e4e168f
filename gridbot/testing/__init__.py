"""Test support for gridbot and its plugins: a simulated Slack Enterprise Grid org."""

from .simulator import (
    ApiCall,
    GridSimulator,
    PostedMessage,
    Topology,
    default_topology,
    load_topology,
)

__all__ = [
    "ApiCall",
    "GridSimulator",
    "PostedMessage",
    "Topology",
    "default_topology",
    "load_topology",
]
