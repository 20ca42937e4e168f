"""Posting to a payload's ``response_url`` (platform-2026.md, "Interactivity": up to 5 posts within
30 minutes; ``response_type`` ``ephemeral`` / ``in_channel``, ``replace_original``,
``delete_original``). The URL itself is the credential: no token is sent, and the URL is never
logged (it would let anyone answer in the user's name for half an hour)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from gridbot.logs import get_logger

log = get_logger("gridbot.interactive")
TIMEOUT = aiohttp.ClientTimeout(total=10.0)


class RespondFailed(Exception):
    """Slack refused a ``response_url`` post (``error`` is its reason, or ``http_<status>``)."""

    def __init__(self, error: str) -> None:
        super().__init__(f"response_url refused the message: {error}")
        self.error = error


async def respond(session: aiohttp.ClientSession | None, url: str, body: dict[str, Any]) -> None:
    """POST ``body`` as JSON to ``url``; :class:`RespondFailed` unless Slack accepts it."""
    own = session is None or session.closed
    http = aiohttp.ClientSession() if own else session
    assert http is not None
    try:
        async with http.post(
            url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}, timeout=TIMEOUT
        ) as response:
            answer = await response.read()
    finally:
        if own:
            await http.close()
    if response.status != 200:
        raise RespondFailed(f"http_{response.status}")
    try:
        parsed = orjson.loads(answer) if answer.strip().startswith(b"{") else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("ok") is False:
        raise RespondFailed(str(parsed.get("error") or "unknown"))
