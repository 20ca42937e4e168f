"""Test support for gridbot and its plugins: a simulated Slack Enterprise Grid org."""

from .simulator import (
    ApiCall,
    GridSimulator,
    Limit,
    PostedMessage,
    RateLimits,
    Topology,
    default_topology,
    load_topology,
)

__all__ = [
    "ApiCall",
    "GridSimulator",
    "Limit",
    "PostedMessage",
    "RateLimits",
    "Topology",
    "default_topology",
    "load_topology",
]
