"""What is left of the stand-alone Events API sender: a signer and a payload builder.

The simulator now delivers over HTTP itself (``GridSimulator.http``, simulator/http_delivery.py:
signed requests, Slack's retries, counts), and the tests and the demo use it. These two functions
remain only because ``bench/http_load.py`` (another owner's) builds its load from them; once the
bench has its own minimal signer, this module goes.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import Mapping
from typing import Any

_ids = itertools.count(1)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def event_callback(
    event: Mapping[str, Any],
    *,
    team_id: str,
    app_id: str = "A0GRIDBOT1",
    enterprise_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An ``event_callback`` envelope for one installation (slack-protocol-notes.md, D)."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "enterprise_id": enterprise_id,
        "api_app_id": app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):010d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": "U0BOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
