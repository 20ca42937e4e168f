"""Web API access: one shared aiohttp session, slack_sdk's AsyncWebClient per token.

Slack errors are classified once, here, into what a daemon does about them (protocol notes, H):
:func:`classify` turns an error into a :class:`Verdict`, and :attr:`Verdict.terminal` is the one
place that says which errors end a team and in which state. The supervisor (``auth.test``) and the
links (the connect methods) both act on it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.logs import get_logger
from gridbot.secrets import Secret
from gridbot.team import TeamState

log = get_logger("gridbot.slack")


class Action(Enum):
    STOP = "stop"  # the token is dead: stop this team, no retry
    PAUSE = "pause"  # Grid migration: pause, re-probe every few minutes
    RETRY_AFTER = "retry_after"  # rate limited: wait Retry-After, then retry
    BACKOFF = "backoff"  # transient: jittered exponential backoff
    DISABLE = "disable"  # Socket Mode switched off for the app: stop and alert


# The token itself is dead (revoked, uninstalled, the account deactivated): whichever call hears
# it, the team is over. ``no_permission`` also stops a team at auth.test, but answered to one
# method it says only that this method is not allowed.
TOKEN_DEAD = frozenset({"invalid_auth", "not_authed", "token_revoked", "account_inactive"})
_STOP = TOKEN_DEAD | {"no_permission"}
_PAUSE = {"team_added_to_org", "org_login_required"}
_RATE = {"ratelimited", "rate_limited"}
_BACKOFF_CAP = 300.0
# A Web API call waits out 429s for up to this long in all (and at most this many times) before
# the error surfaces: chat.postMessage allows about one post a second per channel, so a burst of
# replies in one conversation is late, not lost (a handler's own timeout still bounds it).
_RATE_LIMIT_BUDGET = 60.0
_RATE_LIMIT_RETRIES = 60
_RATE_LIMIT_MAX_WAIT = 60.0  # a longer Retry-After surfaces at once: the caller decides what to do


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

    @property
    def token_dead(self) -> bool:
        """Terminal for the team whatever the method: its token is dead."""
        return self.terminal is TeamState.STOPPED and self.error in TOKEN_DEAD


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


def retry_after(headers: dict[str, list[str]] | object) -> float:
    """Seconds a 429's ``Retry-After`` header asks for (1 when it is missing or unreadable).

    Slack sends whole seconds; anything else (a fraction, garbage, a negative) must not turn a
    rate limit into a crash or a tight loop.
    """
    if isinstance(headers, dict):
        for name, value in headers.items():
            if str(name).lower() == "retry-after":
                text = value[0] if isinstance(value, list) and value else value
                try:
                    return max(float(str(text)), 0.0)
                except ValueError:
                    break
    return 1.0


class RateLimitRetry(AsyncRetryHandler):
    """Wait out a ``429`` for as long as its ``Retry-After`` says, within a bounded total wait.

    slack_sdk's own ``AsyncRateLimitErrorRetryHandler`` counts its retries but waits whatever the
    header says (an hour, if asked), fails with a ValueError on a fractional ``Retry-After``, and
    logs nothing at gridbot's levels. Here a wait above ``max_wait`` is not waited: the 429 goes
    back to the caller as a ``ratelimited`` error (:func:`classify` says ``RETRY_AFTER``). Every
    429 is one ``slack.ratelimited`` warning.
    """

    def __init__(
        self,
        max_retry_count: int = _RATE_LIMIT_RETRIES,
        max_wait: float = _RATE_LIMIT_MAX_WAIT,
        budget: float = _RATE_LIMIT_BUDGET,
    ):
        super().__init__(max_retry_count)
        self.max_wait = max_wait
        self.budget = budget

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after(response.headers)
        waited = float((state.custom_values or {}).get("waited", 0.0))
        retrying = (
            state.current_attempt < self.max_retry_count
            and wait <= self.max_wait
            and waited + wait <= self.budget
        )
        log.warning(
            "slack.ratelimited",
            method=request.url.rsplit("/", 1)[-1].split("?", 1)[0],
            retry_after=wait,
            attempt=state.current_attempt + 1,
            retrying=retrying,
        )
        return retrying

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        wait = retry_after(response.headers if response is not None else None) + random.uniform(0, 0.25)
        if state.custom_values is None:
            state.custom_values = {}
        state.custom_values["waited"] = float(state.custom_values.get("waited", 0.0)) + wait
        await asyncio.sleep(wait)  # (with a little jitter: the callers it held back not all at once)
        state.increment_current_attempt()


class DeadTokenWatch(AsyncRetryHandler):
    """Hears every answer of a team's client and reports one that says its token is dead
    (:attr:`Verdict.token_dead`) to ``report``; never retries. A handler's reply, the runtime's
    own calls: all of them go through the client, so none can miss it."""

    def __init__(self, report: Callable[[str], None]) -> None:
        super().__init__(max_retry_count=0)
        self._report = report

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        body = response.body if response is not None else None
        if isinstance(body, dict) and body.get("ok") is False:
            verdict = classify_error(str(body.get("error", "")))
            if verdict.token_dead:
                self._report(verdict.error)
        return False


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

    def web(self, token: Secret, on_dead: Callable[[str], None] | None = None) -> AsyncWebClient:
        """A client that waits out 429s (Retry-After) and retries transient failures;
        ``on_dead`` hears every answer saying the token is dead (:class:`DeadTokenWatch`)."""
        watch: list[AsyncRetryHandler] = [DeadTokenWatch(on_dead)] if on_dead is not None else []
        return AsyncWebClient(
            token=token.get(),
            base_url=self.api_url,
            session=self.session,
            retry_handlers=[
                *watch,
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitRetry(),
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
