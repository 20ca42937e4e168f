"""The Enterprise Grid simulator: Web API, RTM and Socket Mode for one org, on loopback."""

from .model import (
    App,
    AppRequest,
    Conversation,
    Enterprise,
    Installation,
    Team,
    Topology,
    User,
    default_topology,
    load_topology,
    topology_from_dict,
)
from .records import Ack, ApiCall, PostedMessage, Reaction, SentEnvelope
from .server import GridSimulator

__all__ = [
    "Ack",
    "ApiCall",
    "App",
    "AppRequest",
    "Conversation",
    "Enterprise",
    "GridSimulator",
    "Installation",
    "PostedMessage",
    "Reaction",
    "SentEnvelope",
    "Team",
    "Topology",
    "User",
    "default_topology",
    "load_topology",
    "topology_from_dict",
]
