"""The Enterprise Grid simulator: Web API, RTM and Socket Mode for one org, on loopback."""

from .http_delivery import HttpHub, RequestUrlRefused
from .http_policy import HttpAttempt, HttpCounts, HttpDelivery, HttpNotice, HttpPolicy, form_body
from .messages import Message
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
from .ratelimits import Limit, RateLimits
from .records import Ack, ApiCall, Injection, PostedMessage, Reaction, Recent, SentEnvelope
from .server import GridSimulator
from .timing import TimingRule

__all__ = [
    "Ack",
    "ApiCall",
    "App",
    "AppRequest",
    "Conversation",
    "Enterprise",
    "GridSimulator",
    "HttpAttempt",
    "HttpCounts",
    "HttpDelivery",
    "HttpHub",
    "HttpNotice",
    "HttpPolicy",
    "Injection",
    "Installation",
    "Limit",
    "Message",
    "PostedMessage",
    "RateLimits",
    "Reaction",
    "Recent",
    "RequestUrlRefused",
    "SentEnvelope",
    "Team",
    "TimingRule",
    "Topology",
    "User",
    "default_topology",
    "form_body",
    "load_topology",
    "topology_from_dict",
]
