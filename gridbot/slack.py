"""Web API access: one shared aiohttp session, slack_sdk's AsyncWebClient per token.

Slack errors are classified once, here, into what a daemon does about them (protocol notes, H).
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


class Action(Enum):
    STOP = "stop"  # the token is dead: stop this team, no retry
    PAUSE = "pause"  # Grid migration: pause, re-probe auth.test every few minutes
    RETRY_AFTER = "retry_after"  # rate limited: wait Retry-After, then retry
    BACKOFF = "backoff"  # transient: jittered exponential backoff
    DISABLE = "disable"  # Socket Mode switched off for the app: stop and alert


_STOP = {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "no_permission"}
_PAUSE = {"team_added_to_org", "org_login_required"}
_RATE = {"ratelimited", "rate_limited"}


@dataclass(frozen=True)
class Verdict:
    action: Action
    error: str
    retry_after: float = 0.0


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
        if error in _STOP:
            return Verdict(Action.STOP, error)
        if error in _PAUSE:
            return Verdict(Action.PAUSE, error)
        if error == "link_disabled":
            return Verdict(Action.DISABLE, error)
        return Verdict(Action.BACKOFF, error)
    return Verdict(Action.BACKOFF, type(exc).__name__)


@dataclass
class Backoff:
    """Capped, fully jittered exponential backoff. ``rng`` is injectable for tests."""

    base: float = 1.0
    cap: float = 300.0
    attempt: int = 0
    rng: random.Random | None = None

    def next(self, at_least: float = 0.0) -> float:
        rng = self.rng or random
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return max(at_least + rng.uniform(0, 1), rng.uniform(ceiling / 2, ceiling))

    def reset(self) -> None:
        self.attempt = 0


class SlackClients:
    """Owns the shared aiohttp session and hands out clients bound to one token each."""

    def __init__(
        self,
        api_url: str,
        *,
        rate_limit_retries: int = 3,
        trace_configs: list[aiohttp.TraceConfig] | None = None,  # metrics: calls and 429s per method
    ) -> None:
        self.api_url = api_url
        self._retries = rate_limit_retries
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
                AsyncRateLimitErrorRetryHandler(max_retry_count=self._retries),
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
