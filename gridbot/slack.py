"""Web API access: one shared aiohttp session, slack_sdk's AsyncWebClient per token.

Slack errors are classified once, here, into what a daemon does about them (protocol notes, H):
:func:`classify` turns an error into a :class:`Verdict`, and :attr:`Verdict.terminal` is the one
place that says which errors end a team and in which state. The supervisor (``auth.test``) and the
links (the connect methods) both act on it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.secrets import Secret
from gridbot.team import TeamState


class Action(Enum):
    STOP = "stop"  # the token is dead: stop this team, no retry
    PAUSE = "pause"  # Grid migration: pause, re-probe every few minutes
    RETRY_AFTER = "retry_after"  # rate limited: wait Retry-After, then retry
    BACKOFF = "backoff"  # transient: jittered exponential backoff
    DISABLE = "disable"  # Socket Mode switched off for the app: stop and alert


_STOP = {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "no_permission"}
_PAUSE = {"team_added_to_org", "org_login_required"}
_RATE = {"ratelimited", "rate_limited"}
_BACKOFF_CAP = 300.0
_RATE_LIMIT_RETRIES = 3  # a Web API call waits out this many 429s before the error surfaces


# The errors after which no retry helps, and the state they leave a team in.
_TERMINAL = {Action.STOP: TeamState.STOPPED, Action.DISABLE: TeamState.DISABLED}


@dataclass(frozen=True)
class Verdict:
    action: Action
    error: str
    retry_after: float = 0.0

    @property
    def terminal(self) -> TeamState | None:
        """The state this error ends a team in for good, or None when retrying may still help."""
        return _TERMINAL.get(self.action)


def classify(exc: BaseException) -> Verdict:
    """What to do about a failed Web API call."""
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error", "")) or f"http_{exc.response.status_code}"
        if exc.response.status_code == 429 or error in _RATE:
            header = exc.response.headers.get("Retry-After", exc.response.headers.get("retry-after", "1"))
            try:
                retry_after = max(float(header), 0.0)
            except ValueError:
                retry_after = 1.0
            return Verdict(Action.RETRY_AFTER, "ratelimited", retry_after)
        return classify_error(error)
    return Verdict(Action.BACKOFF, type(exc).__name__)


def classify_error(error: str) -> Verdict:
    """What to do about a Slack error code: a Web API error, or a Socket Mode disconnect reason."""
    if error in _STOP:
        return Verdict(Action.STOP, error)
    if error in _PAUSE:
        return Verdict(Action.PAUSE, error)
    if error == "link_disabled":
        return Verdict(Action.DISABLE, error)
    return Verdict(Action.BACKOFF, error)


@dataclass
class Backoff:
    """Capped, jittered exponential backoff: 1 s, 2 s, 4 s ... up to 5 minutes, each drawn from
    the upper half of its range so that many teams failing together do not retry together."""

    attempt: int = 0

    def next(self, at_least: float = 0.0) -> float:
        """Seconds to wait before the next try (at least ``at_least``, a server's Retry-After)."""
        ceiling = min(_BACKOFF_CAP, 2.0**self.attempt)
        self.attempt += 1
        return max(at_least + random.uniform(0, 1), random.uniform(ceiling / 2, ceiling))

    def reset(self) -> None:
        self.attempt = 0


class SlackClients:
    """Owns the shared aiohttp session and hands out clients bound to one token each."""

    def __init__(
        self,
        api_url: str,
        *,
        trace_configs: list[aiohttp.TraceConfig] | None = None,  # metrics: calls and 429s per method
    ) -> None:
        self.api_url = api_url
        # Size the pool for many sockets: aiohttp's default of 100 would queue the 101st team.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), trace_configs=trace_configs
        )

    def web(self, token: Secret) -> AsyncWebClient:
        """A client that waits out 429s (Retry-After) and retries transient failures."""
        return AsyncWebClient(
            token=token.get(),
            base_url=self.api_url,
            session=self.session,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
                AsyncRateLimitErrorRetryHandler(max_retry_count=_RATE_LIMIT_RETRIES),
                AsyncServerErrorRetryHandler(max_retry_count=2),
            ],
        )

    def connector(self, token: Secret) -> AsyncWebClient:
        """A client for the Tier-1 connect methods: a 429 surfaces, so the link backs off itself."""
        return AsyncWebClient(
            token=token.get(),
            base_url=self.api_url,
            session=self.session,
            retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1)],
        )

    async def close(self) -> None:
        await self.session.close()
