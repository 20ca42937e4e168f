"""Token rotation: bot tokens refreshed ahead of expiry, each single-use refresh token spent once.

Slack's refresh tokens are single-use (platform-2026.md, "OAuth and token rotation"): two
replicas refreshing at once spend one token twice and one of them keeps a dead pair
(bolt-python #663, node-slack-sdk #2504). Here a process may spend a refresh token only after
claiming it in the store (``claim_refresh``: the token must still be the stored one and nobody
else's claim on it alive), and its new pair replaces the old only if the spent token is still
the stored one (``commit_refresh``, compare-and-set). Everyone else waits for that result and
reads the new pair from the store. The call to ``oauth.v2.access`` is bounded by half the claim's
lifetime, so a claim cannot lapse while its holder may still be spending it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.installs.model import Install
from gridbot.installs.store import Claim, InstallStore
from gridbot.logs import get_logger
from gridbot.secrets import Secret

T = TypeVar("T")
log = get_logger("gridbot.installs")

# slack_sdk logs every request's form (the refresh token, the code) and every answer's body (the
# new tokens) at debug level on its client's logger. This one never lets a debug line be made.
_http_log = logging.getLogger("gridbot.installs.http")
_http_log.setLevel(logging.INFO)


def oauth_client(base_url: str | None = None) -> AsyncWebClient:
    """The Web API client for ``oauth.v2.access``: no token of its own, a quiet logger."""
    if base_url is None:
        return AsyncWebClient(logger=_http_log)
    return AsyncWebClient(base_url=base_url, logger=_http_log)


class InstallGone(LookupError):
    """The installation is not in the store (uninstalled, or never there)."""

    def __init__(self, install: str) -> None:
        super().__init__(f"installation {install} is not in the store")
        self.install = install


class RotationFailed(Exception):
    """The installation's token cannot be renewed; it stays stopped until the app is reinstalled."""

    def __init__(self, install: str, error: str) -> None:
        super().__init__(
            f"installation {install} stopped: Slack refused its refresh token ({error}); "
            "reinstall the app there to start it again"
        )
        self.install = install
        self.error = error


class RotationError(Exception):
    """A refresh that did not happen this time (network, rate limit, Slack error); retried later."""

    def __init__(self, install: str, error: str) -> None:
        super().__init__(f"installation {install}: token refresh did not happen ({error}), will retry")
        self.install = install
        self.error = error


class Rotator:
    """Keeps the bot tokens in an :class:`InstallStore` fresh, from any number of processes.

    ``ahead``: refresh when a token has less than this many seconds left (Bolt's default, 2 h,
    leaves a 12 h token 10 h of life). ``claim_ttl``: how long a claim on a refresh token keeps
    other processes waiting if its holder dies.
    """

    def __init__(
        self,
        store: InstallStore,
        *,
        client_id: str,
        client_secret: Secret,
        client: AsyncWebClient | None = None,
        holder: str | None = None,
        ahead: float = 7200.0,
        claim_ttl: float = 60.0,
        poll: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client_id = client_id
        self._secret = client_secret
        self.client = client or oauth_client()
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.ahead = ahead
        self.claim_ttl = claim_ttl
        self.call_timeout = claim_ttl / 2
        self.poll = poll
        self.clock = clock
        # What this process did, for /status and the rotation figures: refresh tokens it spent,
        # refreshes Slack refused for good (invalid_refresh_token), and ones to retry.
        self.spent = 0
        self.failed = 0
        self.retried = 0
        self.deferred = 0  # found a refresh token claimed or spent by another process: took its pair

    def __repr__(self) -> str:
        return f"Rotator(client_id={self.client_id!r}, holder={self.holder!r})"

    def due(self, install: Install) -> bool:
        """Whether ``install``'s token should be refreshed now."""
        if install.expires_at is None or install.refresh_token is None or install.failed:
            return False
        return install.expires_at - self.clock() <= self.ahead

    async def current(self, install: str) -> Install:
        found = await self.store.get(install)
        if found is None:
            raise InstallGone(install)
        return found

    async def fresh(self, install: str) -> Install:
        """The installation with a token that is not about to expire (refreshed first if it was)."""
        found = await self.current(install)
        if found.failed:
            raise RotationFailed(install, found.failed)
        return (await self._rotate(found))[0] if self.due(found) else found

    async def refresh(self, install: str, *, used: Secret | None = None) -> Install:
        """Refresh now, unless ``used`` (the token a call was refused with) is no longer the stored
        one: then another process already refreshed and the stored token is the answer."""
        found = await self.current(install)
        if used is not None and found.bot_token != used and not found.failed:
            return found
        return (await self._rotate(found))[0]

    async def call(self, install: str, fn: Callable[[Secret], Awaitable[T]]) -> T:
        """``fn(token)`` with a fresh token; answered ``token_expired``, refresh and retry once."""
        found = await self.fresh(install)
        try:
            return await fn(found.bot_token)
        except SlackApiError as exc:
            if exc.response.get("error") != "token_expired":
                raise
        renewed = await self.refresh(install, used=found.bot_token)
        return await fn(renewed.bot_token)

    async def sweep(self) -> list[str]:
        """Refresh every installation that is due; the ids this process refreshed."""
        refreshed = []
        for install in await self.store.ids():
            found = await self.store.get(install)
            if found is None or not self.due(found):
                continue
            try:
                _, spent = await self._rotate(found)
            except RotationFailed:
                continue  # logged once, where it happened; a failed install is never due again
            except (RotationError, InstallGone) as exc:
                log.warning("install.refresh_retry", install=install, error=str(exc))
                continue
            if spent:
                refreshed.append(install)
        return refreshed

    async def run(self, interval: float = 60.0) -> None:
        """Sweep forever (the caller names and owns the task)."""
        while True:
            await self.sweep()
            await asyncio.sleep(interval)

    async def _rotate(self, found: Install) -> tuple[Install, bool]:
        """The installation after a refresh, and whether this process spent the refresh token."""
        spend = found.refresh_token
        while True:
            if found.failed:
                raise RotationFailed(found.id, found.failed)
            if spend is None:
                raise RotationError(found.id, "no refresh token stored: token rotation is off for this app")
            claim = await self.store.claim_refresh(found.id, spend, self.holder, self.claim_ttl)
            if claim is Claim.WON:
                return await self._spend(found, spend), True
            if claim is Claim.GONE:
                raise InstallGone(found.id)
            if claim is Claim.BUSY:
                await asyncio.sleep(self.poll)  # another process is spending it: wait for its result
            latest = await self.current(found.id)
            if latest.refresh_token != spend or latest.failed:
                if latest.failed:
                    raise RotationFailed(found.id, latest.failed)
                self.deferred += 1
                return latest, False
            # still the same pair: claim again (won once a dead holder's claim lapses)

    async def _spend(self, found: Install, spend: Secret) -> Install:
        try:
            async with asyncio.timeout(self.call_timeout):
                answer = await self.client.oauth_v2_access(
                    client_id=self.client_id,
                    client_secret=self._secret.get(),
                    grant_type="refresh_token",
                    refresh_token=spend.get(),
                )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "unknown_error")
            if error == "invalid_refresh_token":
                self.failed += 1
                await self.store.fail_refresh(found.id, spend, error)
                log.error("install.refresh_failed", install=found.id, error=error)
                raise RotationFailed(found.id, error) from None
            await self.store.release_refresh(found.id, spend, self.holder)  # refused: not spent
            self.retried += 1
            raise RotationError(found.id, error) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Perhaps spent: the claim stays until it lapses, so nobody spends it meanwhile.
            self.retried += 1
            raise RotationError(found.id, type(exc).__name__) from None
        self.spent += 1
        token, refresh = Secret(str(answer["access_token"])), Secret(str(answer["refresh_token"]))
        expires_at = int(self.clock()) + int(answer["expires_in"])
        if not await self.store.commit_refresh(found.id, spend, token, refresh, expires_at):
            return await self.current(found.id)  # reinstalled meanwhile: the stored pair is newer
        log.info("install.token_refreshed", install=found.id, expires_at=expires_at)
        return await self.current(found.id)
